/**
 * Budgets for the verbs and `fleet spend` (docs/spend.md, "Budgets"): judged by the planner's own rule
 * (src/plan/deciders/budget-judge.ts) on the ledger as last metered.
 */
import type { GlobalOptions } from '../options.js';
import type { DesiredFleet } from '../model/desired.js';
import type { Observed } from '../model/observed.js';
import { resolvePaths } from '../paths.js';
import { budgetSummary, judgeBudgets, pausedBy } from '../plan/deciders/budget-judge.js';
import type { LedgerEntry } from '../spend/ledger.js';
import type { AgentSpend } from '../spend/report.js';
import { loadFleet } from './session.js';
import { hasBudgets, observeSpend, spendBuckets } from './spend-observe.js';

/** The budget's reason when it pauses the agent (stopped, or to be stopped at its next idle moment); else null. */
export async function budgetPause(o: GlobalOptions, agentName: string): Promise<string | null> {
  const paths = resolvePaths(o);
  const { desired } = await loadFleet(paths);
  const agent = desired.agents.find((a) => a.name === agentName);
  const nowMs = Date.now();
  const spend = agent === undefined ? undefined : observeSpend(desired, paths.stateDir, nowMs);
  if (agent === undefined || spend === undefined) return null;
  return pausedBy(agent, judgeBudgets(desired, { nowMs, spend }), nowMs);
}

/**
 * Each agent's budget beside its spend. Whether a paused agent has stopped yet is not observed here: over a
 * pausing budget reads `paused` (stopped, or to be stopped at its next idle moment); `fleet ps` tells them apart.
 */
export function withBudgets(
  agents: AgentSpend[],
  desired: DesiredFleet,
  entries: readonly LedgerEntry[],
  nowMs: number,
): AgentSpend[] {
  if (!hasBudgets(desired)) return agents;
  const observed: Pick<Observed, 'nowMs' | 'spend'> = { nowMs, spend: spendBuckets(entries, desired, nowMs) };
  const judged = judgeBudgets(desired, observed);
  return agents.map((a) => ({ ...a, budget: budgetSummary(judged[a.name], false, nowMs) }));
}
