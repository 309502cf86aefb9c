/**
 * One alerts step, after a cycle's apply and under its lock (every reconcile, timer run and watch cycle): judge
 * what holds (judge.ts), move the episodes on (episodes.ts), remember them in the state file, deliver what is due
 * (deliver.ts) and journal each firing and its delivery result. It costs nothing when no rule exists and no
 * episode is remembered. The state file is read afresh here: the apply before may have changed it.
 *
 * A one-shot run (reconcile, the timer) delivers before it exits, after its apply. Watch mode hands the delivery
 * to a queue (background.ts) and records the results when they come (`recordDeliveries`), so no cycle waits for
 * a sink.
 */
import { appendJournal, type JournalAction, type JournalEntry } from '../apply/journal.js';
import { writeState } from '../apply/state.js';
import type { Runner } from '../exec.js';
import type { DesiredFleet } from '../model/desired.js';
import type { AlertEpisode, Observed, ReconcilerState } from '../model/observed.js';
import { readState } from '../observe/files.js';
import type { AgentStatus } from '../plan/health.js';
import { deliverAll, DEFAULT_LIMITS, type DeliveryLimits, type DeliveryReport } from './deliver.js';
import type { DeliveryQueue } from './background.js';
import { dueDeliveries, episodesChanged, nextAlertWakeMs, stepEpisodes, withDeliveries } from './episodes.js';
import { judgeAlerts, type BudgetVerdict, type Judgment } from './judge.js';

export interface AlertsInput {
  desired: DesiredFleet;
  observed: Observed;
  stateDir: string;
  runner: Runner;
  /** The command journaled as the run's (`fleet reconcile --watch`, ...). */
  command: string;
  /** Since when each restart has been deferred, from this run's plan. */
  restartPending?: Record<string, number>;
  statuses?: readonly AgentStatus[];
  /** The spend issue's budget verdicts, where budgets exist (pending). */
  budgets?: Record<string, BudgetVerdict>;
  env?: NodeJS.ProcessEnv;
  limits?: DeliveryLimits;
  /** Watch mode: deliver in the background (background.ts); absent: deliver now, before returning. */
  queue?: DeliveryQueue;
}

export interface AlertsOutcome {
  judgments: Judgment[];
  episodes: AlertEpisode[];
  deliveries: DeliveryReport[];
  /** Unix ms at which time alone changes the alerts next (a condition reaching `after`, a retry); null = none. */
  wakeAtMs: number | null;
}

const NOTHING: AlertsOutcome = { judgments: [], episodes: [], deliveries: [], wakeAtMs: null };

function journalAction(r: DeliveryReport): JournalAction {
  const m = r.message;
  const what = m.resolved ? `resolved ${m.condition}` : m.condition;
  const gaveUp = r.delivery.status === 'failed' ? ` (given up after ${r.delivery.attempts} attempts)` : '';
  return {
    kind: m.resolved ? 'alert-resolved' : 'alert-fired',
    target: `${m.agent}/${m.condition}`,
    message: r.result.ok
      ? `sent ${what} alert for ${m.agent} (rule ${m.rule}) to ${r.sink}`
      : `could not send ${what} alert for ${m.agent} (rule ${m.rule}) to ${r.sink}${gaveUp}`,
    reason: m.detail,
    outcome: r.result.ok ? 'done' : 'failed',
    ...(r.result.ok ? {} : { error: r.result.message }),
  };
}

export async function runAlerts(input: AlertsInput): Promise<AlertsOutcome> {
  const rules = input.desired.alerts ?? [];
  // No rule and no episode when observed (episodes are written only under the lock this run holds): nothing to
  // read, judge or send, so a fleet without alerts pays nothing for them.
  if (rules.length === 0 && (input.observed.state.alerts ?? []).length === 0) return NOTHING;
  const state = await readState(input.stateDir);
  const before = state.alerts ?? [];
  const nowMs = input.observed.nowMs;
  const judgments = judgeAlerts({
    desired: input.desired,
    observed: input.observed,
    ...(input.statuses ? { statuses: input.statuses } : {}),
    ...(input.restartPending ? { restartPending: input.restartPending } : {}),
    ...(input.budgets ? { budgets: input.budgets } : {}),
  });
  let episodes = stepEpisodes(before, judgments, new Set(rules.map((r) => r.name)), nowMs);
  // Remembered before anything is sent: a watcher killed mid-delivery then retries the message, never re-fires.
  if (episodesChanged(before, episodes)) await saveEpisodes(input.stateDir, state, episodes);
  const queue = input.queue;
  const due = dueDeliveries(episodes, Date.now()).filter((d) => queue === undefined || !queue.sending(d));
  let deliveries: DeliveryReport[] = [];
  if (due.length > 0) {
    const send = (): Promise<DeliveryReport[]> =>
      deliverAll(
        due,
        input.desired,
        input.observed.hostname,
        input.runner,
        input.env ?? process.env,
        input.limits ?? DEFAULT_LIMITS,
      );
    if (queue !== undefined) queue.send(due, send);
    else {
      const started = new Date();
      deliveries = await send();
      episodes = withDeliveries(episodes, deliveries);
      await saveEpisodes(input.stateDir, state, episodes);
      await journal(input, started, deliveries);
    }
  }
  return { judgments, episodes, deliveries, wakeAtMs: nextAlertWakeMs(episodes, judgments, Date.now()) };
}

async function saveEpisodes(stateDir: string, state: ReconcilerState, list: AlertEpisode[]): Promise<void> {
  const next = { ...state };
  if (list.length > 0) next.alerts = list;
  else delete next.alerts;
  await writeState(stateDir, next);
}

/**
 * Watch mode, when a background batch has its answers (the caller holds the lock): put them into the episodes
 * as the state file has them now, and journal them. The episodes after it.
 */
export async function recordDeliveries(
  input: Pick<AlertsInput, 'stateDir' | 'command'>,
  started: Date,
  reports: readonly DeliveryReport[],
): Promise<AlertEpisode[]> {
  const state = await readState(input.stateDir);
  const before = state.alerts ?? [];
  const episodes = withDeliveries(before, reports);
  if (episodesChanged(before, episodes)) await saveEpisodes(input.stateDir, state, episodes);
  await journal(input, started, reports);
  return episodes;
}

async function journal(
  input: Pick<AlertsInput, 'stateDir' | 'command'>,
  started: Date,
  reports: readonly DeliveryReport[],
): Promise<void> {
  const actions = reports.filter((r) => r.attempts > 0).map(journalAction);
  if (actions.length === 0) return;
  const failed = actions.filter((a) => a.outcome === 'failed').length;
  const entry: JournalEntry = {
    format_version: 1,
    started_at: started.toISOString(),
    finished_at: new Date().toISOString(),
    command: `${input.command} (alerts)`,
    pid: process.pid,
    result: failed > 0 ? 'failed' : 'ok',
    summary: { done: actions.length - failed, failed, not_run: 0 },
    actions,
  };
  await appendJournal(input.stateDir, entry);
}
