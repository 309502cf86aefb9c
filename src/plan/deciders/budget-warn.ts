/**
 * A `warn` budget's journal entry (docs/spend.md, "The ladder"): an agent over a budget whose step is `warn` is
 * journaled once per window, not on every run. Which agents are due, and the state file's record after this run
 * (agent -> unix ms of its last such entry). Pure; the engine writes the journal and the record
 * (src/engine/budget-journal.ts).
 */
import { budgetWindowMs, overText, worstOver, type BudgetJudgment } from './budget-judge.js';

/** The longest budget window: a record older than this suppresses nothing. */
const LONGEST_WINDOW_MS = budgetWindowMs('7d');

export interface BudgetWarnsDue {
  /** The agents to journal now, with the reason (`over budget (…)`), in name order. */
  due: { agent: string; reason: string }[];
  /** The state file's `budgetWarned` after this run. */
  warned: Record<string, number>;
}

/**
 * Due: the agent's worst budget says `warn` and no entry was journaled for it since that budget's window
 * started (a rolling window: in the last window length; a fixed one: since its start).
 */
export function budgetWarnsDue(
  judged: Record<string, BudgetJudgment[]>,
  warned: Readonly<Record<string, number>> | undefined,
  nowMs: number,
): BudgetWarnsDue {
  const next: Record<string, number> = {};
  // Records still able to suppress an entry, of agents that still have a budget.
  for (const [agent, at] of Object.entries(warned ?? {}))
    if (Object.hasOwn(judged, agent) && at > nowMs - LONGEST_WINDOW_MS && at <= nowMs) next[agent] = at;
  const due: BudgetWarnsDue['due'] = [];
  for (const agent of Object.keys(judged).sort()) {
    const over = worstOver(judged[agent]);
    if (over === null || over.budget.onExceed !== 'warn') continue;
    const last = next[agent];
    if (last !== undefined && last >= over.windowStartMs) continue;
    due.push({ agent, reason: overText(over, nowMs) });
    next[agent] = nowMs;
  }
  return { due, warned: next };
}
