/**
 * What watch mode needs from the alerts (src/commands/watch.ts): which agents' heartbeat state changes are news
 * (an agent starting to wait, or to be busy, starts a condition's clock), when time alone makes an alert due,
 * and one log line per delivery.
 */
import type { DesiredFleet } from '../model/desired.js';
import type { Observed } from '../model/observed.js';
import { ruleCovers } from './judge.js';
import type { AlertsOutcome } from './run.js';

/** A deadline is acted on this long after it passes, so the judge sees it past, not on the edge. */
const MARGIN_MS = 250;

/**
 * Agents covered by a rule on a condition their runtime's own state report starts (waiting, wedged), and that
 * report a state at all: their runtime speaks it, or their heartbeat carries one. Watching the run directory
 * costs a wake-up per heartbeat write, so agents that can never be waiting or busy (a stub's bare `ts=`) add none.
 */
export function stateAlertAgents(desired: DesiredFleet | null, observed: Observed): Set<string> {
  const out = new Set<string>();
  const rules = (desired?.alerts ?? []).filter((r) => r.when.some((c) => c === 'waiting' || c === 'wedged'));
  if (rules.length === 0) return out;
  for (const a of desired?.agents ?? []) {
    const speaks = (desired?.runtimes[a.runtime]?.state ?? 'none') !== 'none' && a.command === null;
    const reports = observed.heartbeats[a.name]?.keys.state !== undefined;
    if ((speaks || reports) && rules.some((r) => ruleCovers(r, a.name))) out.add(a.name);
  }
  return out;
}

export function alertWakeMs(outcome: AlertsOutcome | null): number | null {
  return outcome?.wakeAtMs == null ? null : outcome.wakeAtMs + MARGIN_MS;
}

export function earliest(a: number | null, b: number | null): number | null {
  return a === null ? b : b === null ? a : Math.min(a, b);
}

type Log = (
  event: string,
  fields?: Record<string, string | number | boolean | null | undefined>,
  text?: string,
) => void;

export function logAlerts(log: Log, outcome: AlertsOutcome | null, error?: Error): void {
  if (error !== undefined) {
    log('alerts-failed', { error: error.message.split('\n')[0] });
    return;
  }
  for (const d of outcome?.deliveries ?? []) {
    const m = d.message;
    log(
      'alert',
      {
        rule: m.rule,
        agent: m.agent,
        condition: m.condition,
        resolved: m.resolved,
        outcome: d.result.ok ? 'delivered' : d.delivery.status === 'failed' ? 'given-up' : 'retrying',
        attempts: d.delivery.attempts,
        error: d.result.ok ? undefined : d.result.message,
      },
      `alert ${m.resolved ? 'resolved' : 'fired'}: ${m.condition} ${m.agent} → ${d.sink}`,
    );
  }
}

/** For `fleet reconcile`'s text output: one line per delivery attempt of this run, or the step's error. */
export function alertLines(outcome: AlertsOutcome | null, error?: Error): string[] {
  if (error !== undefined) return [`\nAlerts: ${error.message.split('\n')[0] ?? ''}\n`];
  const reports = (outcome?.deliveries ?? []).filter((d) => d.attempts > 0);
  if (reports.length === 0) return [];
  return [
    '\nAlerts:\n',
    ...reports.map((d) => {
      const m = d.message;
      const what = `${m.resolved ? 'resolved ' : ''}${m.condition} for ${m.agent} (rule ${m.rule}) to ${d.sink}`;
      return d.result.ok ? `  sent ${what}\n` : `  ! could not send ${what}: ${d.result.message}\n`;
    }),
  ];
}
