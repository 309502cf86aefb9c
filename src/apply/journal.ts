/**
 * The apply journal: one JSON line per run of apply (what, when, result), so an operator can see what the
 * reconciler did while nobody watched. Appended with O_APPEND; a torn last line is skipped on read.
 */
import { join } from 'node:path';
import { appendNoFollow, homeOfStateDir, readFileNoFollow } from '../base/safe-path.js';

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

/**
 * The one shape of a journal entry, for every apply and every verb that acts (reset, send): the result and the
 * summary follow from the actions' outcomes (an action is not run only after an earlier one failed).
 */
export function journalEntry(
  command: string,
  startedAt: Date,
  finishedAt: Date,
  pid: number,
  actions: JournalAction[],
): JournalEntry {
  const count = (o: ActionOutcome): number => actions.filter((a) => a.outcome === o).length;
  const failed = count('failed');
  return {
    format_version: 1,
    started_at: startedAt.toISOString(),
    finished_at: finishedAt.toISOString(),
    command,
    pid,
    result: failed > 0 ? 'failed' : 'ok',
    summary: { done: count('done'), failed, not_run: count('not-run') },
    actions,
  };
}

export function journalPath(stateDir: string): string {
  return join(stateDir, 'journal.jsonl');
}

export async function appendJournal(stateDir: string, entry: JournalEntry): Promise<void> {
  // O_APPEND, and never through a link (journal.jsonl, fleet/reconciler/ or fleet/ as a link is refused).
  await appendNoFollow(homeOfStateDir(stateDir), journalPath(stateDir), `${JSON.stringify(entry)}\n`, 0o644);
}

export async function readJournal(stateDir: string): Promise<JournalEntry[]> {
  // A link is refused, not read: the journal is printed, and a link could make it print any file.
  const text = await readFileNoFollow(journalPath(stateDir));
  if (text === null) return [];
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
