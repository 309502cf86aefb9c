/**
 * The effectful half of convergence: apply a plan's actions, journal the run, and keep the back-off bookkeeping.
 * Every caller (`fleet reconcile`, `fleet apply`, watch mode, the timer's runs) holds the lock before calling.
 * Prints nothing: progress goes to the caller's `onResult`, the outcome comes back as data.
 */
import { applyPlan, type ActionResult, type ApplyResult } from '../apply/executor.js';
import type { JournalAction } from '../apply/journal.js';
import { removeLeftoverTemps, type TempRemoval } from '../apply/temp-files.js';
import { leftoverTemps } from '../base/temp-files.js';
import { writeState } from '../apply/state.js';
import type { Observed } from '../model/observed.js';
import type { Plan } from '../model/plan.js';
import { actionTarget } from '../render/plan-text.js';
import { backoffPolicy, type Session } from './session.js';
import { writeJournal } from './journal-write.js';
import { meterFleet } from './meter.js';
import { journalBudgetWarnings } from './budget-journal.js';
import { runAlerts, type AlertsOutcome } from '../alerts/run.js';
import type { DeliveryQueue } from '../alerts/background.js';
import { rememberDesired, type LoadedDesired } from '../manifest/cache.js';
import type { BudgetVerdict } from '../alerts/judge.js';
import type { DesiredFleet } from '../model/desired.js';
import { judgeBudgets, overText, worstOver } from '../plan/deciders/budget-judge.js';

export interface ConvergeHooks {
  /** Called once per action, as it finishes (done, failed or not run), in plan order. */
  onResult?: (result: ActionResult) => void;
  /** Called with each metering warning (a skipped usage record, src/spend/): once per record. */
  onWarning?: (line: string) => void;
  /** Called after the apply with the alerts step's outcome (src/alerts/run.ts), or its error (never fatal). */
  onAlerts?: (outcome: AlertsOutcome | null, error?: Error) => void;
  /** Watch mode: alerts are delivered by this queue, in the background (src/alerts/background.ts). */
  deliveries?: DeliveryQueue;
}

/** How many actions ended each way. */
export interface OutcomeCounts {
  done: number;
  failed: number;
  notRun: number;
}

export function outcomeCounts(result: ApplyResult): OutcomeCounts {
  return {
    done: result.results.filter((r) => r.outcome === 'done').length,
    failed: result.results.filter((r) => r.outcome === 'failed').length,
    notRun: result.results.filter((r) => r.outcome === 'not-run').length,
  };
}

/**
 * Converge under the lock (taken by the caller): apply the plan's actions, journal them, and persist back-off
 * bookkeeping even when there is nothing to apply (a healthy agent's back-off record expiring is not an action).
 * Null when there was nothing to apply.
 */
export async function converge(
  s: Session,
  command: string,
  hooks: ConvergeHooks = {},
): Promise<ApplyResult | null> {
  // Spend is metered on every run, so the ledger stays current without anyone running `fleet spend`: here,
  // unless the session metered already, before planning (planFor's `meter`, for the budgets).
  const warnings =
    s.meterWarnings ?? (await meterFleet(s.desired, s.paths, s.runner, s.observed.nowMs)).warnings;
  for (const w of warnings) hooks.onWarning?.(w);
  const result = await applyOrSettle(s, command, hooks);
  await budgetWarningsAfter(s, command, hooks);
  // Alerts come after the apply, so no sink delays this run's convergence; watch mode also sends them in the
  // background, so none delays the next cycle either (docs/alerts.md).
  await alertsAfter(s, command, hooks);
  return result;
}

/**
 * `fleet reconcile`'s convergence: converge, then remember the manifests it was made from, so the next run (the
 * timer's, `fleet ps`) need not parse them again (src/manifest/cache.ts).
 */
export async function convergeAndRemember(
  s: Session,
  command: string,
  hooks: ConvergeHooks,
  loaded: LoadedDesired,
): Promise<ApplyResult | null> {
  const result = await converge(s, command, hooks);
  await rememberDesired(s.paths.stateDir, s.paths.mosaicHome, loaded);
  return result;
}

async function applyOrSettle(s: Session, command: string, hooks: ConvergeHooks): Promise<ApplyResult | null> {
  if (s.plan.actions.length > 0) return applyAndJournal(s, s.plan, command, hooks);
  await sweepTemps(s);
  if (
    s.plan.backoffResets.length > 0 ||
    restartPendingChanged(s.observed, s.plan) ||
    worktreesChanged(s.observed, s.plan)
  )
    await writeState(s.paths.stateDir, stateAfterResets(s.observed, s.plan));
  return null;
}

/** A `warn` budget's journal entry, once per window (src/engine/budget-journal.ts): a failure is one warning. */
async function budgetWarningsAfter(s: Session, command: string, hooks: ConvergeHooks): Promise<void> {
  try {
    await journalBudgetWarnings(s, command);
  } catch (error) {
    const first = error instanceof Error ? (error.message.split('\n')[0] ?? '') : String(error);
    hooks.onWarning?.(`budgets: could not journal a budget warning: ${first}`);
  }
}

/** The alerts step (src/alerts/run.ts): a failure there is reported to the caller, never a failed convergence. */
async function alertsAfter(s: Session, command: string, hooks: ConvergeHooks): Promise<void> {
  try {
    const outcome = await runAlerts({
      desired: s.desired,
      observed: s.observed,
      stateDir: s.paths.stateDir,
      runner: s.runner,
      command,
      restartPending: s.plan.restartPending,
      budgets: budgetVerdicts(s.desired, s.observed),
      ...(hooks.deliveries ? { queue: hooks.deliveries } : {}),
    });
    hooks.onAlerts?.(outcome);
  } catch (error) {
    hooks.onAlerts?.(null, error instanceof Error ? error : new Error(String(error)));
  }
}

/** The alerts' `over-budget` verdict per agent with a budget (src/plan/deciders/budget-judge.ts). */
export function budgetVerdicts(desired: DesiredFleet, observed: Observed): Record<string, BudgetVerdict> {
  const out: Record<string, BudgetVerdict> = {};
  for (const [agent, list] of Object.entries(judgeBudgets(desired, observed))) {
    const w = worstOver(list);
    out[agent] = { over: w !== null, sinceMs: null, detail: w === null ? '' : overText(w, observed.nowMs) };
  }
  return out;
}

/** The state file's content once the plan's expired back-off records are dropped (the observed state is kept). */
export function stateAfterResets(observed: Observed, plan: Plan): Observed['state'] {
  const state = structuredClone(observed.state);
  for (const name of plan.backoffResets) delete state.backoff[name];
  // Since when each deferred restart waits (for max_defer and the plan's "since"); done ones are forgotten.
  if (Object.keys(plan.restartPending).length > 0) state.restartPending = { ...plan.restartPending };
  else delete state.restartPending;
  // The fleet's worktrees (docs/workspaces.md): recorded from what git lists and the manifests ask for.
  if (plan.worktrees !== undefined) state.worktrees = structuredClone(plan.worktrees);
  else delete state.worktrees;
  return state;
}

function worktreesChanged(observed: Observed, plan: Plan): boolean {
  return JSON.stringify(observed.state.worktrees ?? {}) !== JSON.stringify(plan.worktrees ?? {});
}

function restartPendingChanged(observed: Observed, plan: Plan): boolean {
  const before = observed.state.restartPending ?? {};
  const after = plan.restartPending;
  const keys = new Set([...Object.keys(before), ...Object.keys(after)]);
  return [...keys].some((k) => before[k] !== after[k]);
}

/**
 * Remove the temp files a killed run (or a killed heartbeat writer) left in the fleet's directories: under the
 * lock, so no reconciler is writing them; the rule for the agents' own writers is in src/base/temp-files.ts.
 */
async function sweepTemps(s: Pick<Session, 'paths' | 'observed'>): Promise<TempRemoval[]> {
  const leftovers = leftoverTemps(s.observed);
  return leftovers.length === 0 ? [] : removeLeftoverTemps(s.paths, leftovers);
}

/** Apply under the lock (taken by the caller) and journal the run. */
export async function applyAndJournal(
  session: Pick<Session, 'paths' | 'runner' | 'observed' | 'desired' | 'source'>,
  plan: Plan,
  command: string,
  hooks: ConvergeHooks = {},
): Promise<ApplyResult> {
  const started = new Date();
  const removedTemps = await sweepTemps(session);
  const state = stateAfterResets(session.observed, plan);
  const result = await applyPlan(plan.actions, {
    runner: session.runner,
    backoff: backoffPolicy(process.env, session.desired),
    stateDir: session.paths.stateDir,
    state,
    nowMs: session.observed.nowMs,
    onResult: hooks.onResult,
  });
  const actions: JournalAction[] = result.results.map((r) => ({
    kind: r.action.kind,
    target: actionTarget(r.action),
    message: r.message,
    reason: r.action.reason,
    outcome: r.outcome,
    ...(r.error ? { error: r.error } : {}),
  }));
  await writeJournal(session.paths, command, started, actions, {
    ...(removedTemps.length > 0 ? { temp_files: removedTemps } : {}),
    // The git source's commit this apply converged to (docs/hosts.md): `fleet history` shows it.
    ...(session.source !== undefined ? { source: session.source } : {}),
  });
  return result;
}
