/**
 * Journal entries with who ran them: the one writer of a run's entry for the engine (converge, the git source,
 * the budget journal) and the verbs. Apart from agent-control.ts so that session-level modules can journal
 * without importing the verbs (which import the session).
 */
import { userInfo } from 'node:os';
import { appendJournal, journalEntry, type JournalAction, type JournalEntry } from '../apply/journal.js';
import { readFile } from '../fs-async.js';
import type { FleetPaths } from '../paths.js';
import { ranBy, type RanBy } from './verbs.js';

/** Who runs this process (for the journal): read once per process. */
export async function currentRanBy(command: string): Promise<RanBy> {
  const cgroup = await readFile('/proc/self/cgroup', 'utf8').catch(() => '');
  let user = process.env.USER ?? '';
  try {
    user = userInfo().username;
  } catch {
    // No passwd entry (a container's arbitrary uid): $USER or nothing.
  }
  return ranBy(process.env, command, cgroup, user || `uid ${process.getuid?.() ?? '?'}`);
}

/**
 * Journal a run: an apply (src/engine/converge.ts) or a verb that acts (reset, send), in the one format, with who
 * ran it (a person, the timer, watch mode: `fleet history` shows it) and what else the run has to say (`extra`).
 */
export async function writeJournal(
  paths: FleetPaths,
  command: string,
  startedAt: Date,
  actions: JournalAction[],
  extra: Record<string, unknown> = {},
): Promise<void> {
  const entry: JournalEntry & { ran_by: RanBy } = {
    ...journalEntry(command, startedAt, new Date(), process.pid, actions),
    ran_by: await currentRanBy(command),
    ...extra,
  };
  await appendJournal(paths.stateDir, entry);
}
