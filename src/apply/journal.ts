/**
 * The apply journal: one JSON line per run of apply (what, when, result), so an operator can see what the
 * reconciler did while nobody watched. Appended with O_APPEND; a torn last line is skipped on read.
 */
import { appendFile, mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

export type ActionOutcome = 'done' | 'failed' | 'not-run';

export interface JournalAction {
  kind: string;
  target: string;
  /** Past-tense sentence: "started mosaic-agent@a.service". */
  message: string;
  reason: string;
  outcome: ActionOutcome;
  error?: string;
}

export interface JournalEntry {
  format_version: 1;
  started_at: string;
  finished_at: string;
  command: string;
  pid: number;
  result: 'ok' | 'failed';
  summary: { done: number; failed: number; not_run: number };
  actions: JournalAction[];
}

export function journalPath(stateDir: string): string {
  return join(stateDir, 'journal.jsonl');
}

export async function appendJournal(stateDir: string, entry: JournalEntry): Promise<void> {
  await mkdir(stateDir, { recursive: true });
  await appendFile(journalPath(stateDir), `${JSON.stringify(entry)}\n`, { mode: 0o644 });
}

export async function readJournal(stateDir: string): Promise<JournalEntry[]> {
  let text: string;
  try {
    text = await readFile(journalPath(stateDir), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  const entries: JournalEntry[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    try {
      entries.push(JSON.parse(line) as JournalEntry);
    } catch {
      // A torn line from a crash mid-append: skip it rather than refuse the whole history.
    }
  }
  return entries;
}
