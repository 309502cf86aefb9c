/**
 * The `warn` step's journal entry (docs/spend.md, "The ladder"): after each converging run (`fleet reconcile`, watch
 * mode, the timer: `converge`), an agent over a `warn` budget is journaled once per window, with its figures; the state file
 * remembers when, so the next runs of the same window say nothing more. The other steps are journaled as the
 * actions they are (a pause's stop, a downgrade's restart).
 */
import type { JournalAction } from '../apply/journal.js';
import { writeState } from '../apply/state.js';
import type { DesiredFleet } from '../model/desired.js';
import type { Observed } from '../model/observed.js';
import { readState } from '../observe/files.js';
import type { FleetPaths } from '../paths.js';
import { judgeBudgets } from '../plan/deciders/budget-judge.js';
import { budgetWarnsDue } from '../plan/deciders/budget-warn.js';
import { writeJournal } from './journal-write.js';

/** Journal what is due and remember it; the agents journaled. Nothing read or written without a budget or record. */
export async function journalBudgetWarnings(
  s: { desired: DesiredFleet; observed: Observed; paths: FleetPaths },
  command: string,
): Promise<string[]> {
  const before = s.observed.state.budgetWarned;
  if (s.observed.spend === undefined && before === undefined) return [];
  const started = new Date();
  const judged = judgeBudgets(s.desired, s.observed);
  const { due, warned } = budgetWarnsDue(judged, before, s.observed.nowMs);
  if (due.length === 0 && JSON.stringify(warned) === JSON.stringify(before ?? {})) return [];
  // Remembered first: a run killed between the two writes misses one entry rather than repeating it every run.
  // The state file is read afresh: the apply before may have changed it.
  const state = await readState(s.paths.stateDir);
  if (Object.keys(warned).length > 0) state.budgetWarned = warned;
  else delete state.budgetWarned;
  await writeState(s.paths.stateDir, state);
  if (due.length === 0) return [];
  const actions: JournalAction[] = due.map((d) => ({
    kind: 'budget-warn',
    target: d.agent,
    message: `${d.agent}: OVER-BUDGET`,
    reason: d.reason,
    outcome: 'done',
  }));
  await writeJournal(s.paths, `${command} (budgets)`, started, actions);
  return due.map((d) => d.agent);
}
