/**
 * Claude Code's transcript: a JSONL file whose path the hooks write into the heartbeat (`transcript=`). Pure: the
 * caller reads the file (`fleet tail`).
 */
import type { TranscriptMessage, TranscriptReader } from '../adapter.js';

function textOf(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content
    .map((part: unknown) =>
      typeof part === 'object' &&
      part !== null &&
      (part as { type?: unknown }).type === 'text' &&
      typeof (part as { text?: unknown }).text === 'string'
        ? (part as { text: string }).text
        : '',
    )
    .filter((t) => t !== '')
    .join('\n');
}

/**
 * The user and assistant text messages of a Claude Code transcript (JSONL, one entry a line), oldest first.
 * Tool calls, tool results, meta entries and torn lines carry no conversation text and are skipped.
 */
export function transcriptMessages(jsonl: string): TranscriptMessage[] {
  const out: TranscriptMessage[] = [];
  for (const line of jsonl.split('\n')) {
    if (line.trim() === '') continue;
    let entry: unknown;
    try {
      entry = JSON.parse(line);
    } catch {
      continue;
    }
    if (typeof entry !== 'object' || entry === null) continue;
    const e = entry as { type?: unknown; isMeta?: unknown; message?: { role?: unknown; content?: unknown } };
    if ((e.type !== 'user' && e.type !== 'assistant') || e.isMeta === true) continue;
    const text = textOf(e.message?.content).trim();
    if (text === '') continue;
    out.push({ role: e.type, text });
  }
  return out;
}

export const claudeTranscript: TranscriptReader = {
  locate: (heartbeat) => {
    const path = heartbeat.transcript ?? '';
    return path === '' ? null : path;
  },
  messages: transcriptMessages,
};
