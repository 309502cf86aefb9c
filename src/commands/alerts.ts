/**
 * `fleet alerts [--json]`: the open alert episodes remembered in the state file (docs/alerts.md), and resolved
 * ones whose message is still owed to a sink. Read-only: it reads the state file and nothing else, so it shows
 * what the last reconcile, timer run or watch cycle judged.
 */
import type { GlobalOptions } from '../options.js';
import type { AlertDelivery, AlertEpisode } from '../model/observed.js';
import { rememberedAlerts } from '../engine/alert-report.js';
import { resolvePaths } from '../paths.js';
import { duration } from '../render/ps.js';

export const ALERTS_FORMAT_VERSION = 1;

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

function deliveryJson(d: AlertDelivery | null): unknown {
  return d === null
    ? null
    : {
        status: d.status,
        attempts: d.attempts,
        last_attempt_at: iso(d.lastAttemptMs),
        ...(d.error !== undefined ? { error: d.error } : {}),
      };
}

export function alertsToJson(episodes: readonly AlertEpisode[], nowMs: number): unknown {
  return {
    format_version: ALERTS_FORMAT_VERSION,
    generated_at: new Date(nowMs).toISOString(),
    alerts: episodes.map((e) => ({
      rule: e.rule,
      agent: e.agent,
      condition: e.condition,
      since: new Date(e.sinceMs).toISOString(),
      for_seconds: Math.max(0, Math.floor((nowMs - e.sinceMs) / 1000)),
      fired_at: iso(e.firedAtMs),
      resolved_at: iso(e.resolvedAtMs),
      state: e.state,
      detail: e.detail,
      fire: deliveryJson(e.fire),
      resolve: deliveryJson(e.resolve),
    })),
  };
}

function deliveryText(d: AlertDelivery | null): string {
  if (d === null) return '-';
  if (d.status === 'pending') return d.attempts === 0 ? 'pending' : `retrying (${d.attempts} tried)`;
  return d.status === 'failed' ? `failed after ${d.attempts}` : 'delivered';
}

export function renderAlertsText(episodes: readonly AlertEpisode[], nowMs: number): string {
  const open = episodes.filter((e) => e.firedAtMs !== null);
  if (open.length === 0) return 'No open alerts.\n';
  const rows = open.map((e) => [
    e.condition,
    e.agent,
    e.rule,
    `${duration((nowMs - e.sinceMs) / 1000)}`,
    e.resolvedAtMs === null ? deliveryText(e.fire) : `resolved, ${deliveryText(e.resolve)}`,
    e.detail,
  ]);
  const head = ['CONDITION', 'AGENT', 'RULE', 'FOR', 'DELIVERY', 'DETAIL'];
  const widths = head.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? '').length)));
  const line = (r: string[]): string =>
    r
      .map((t, c) => (c === r.length - 1 ? t : t.padEnd(widths[c] ?? 0)))
      .join('  ')
      .trimEnd();
  return `${[line(head), ...rows.map(line)].join('\n')}\n`;
}

export async function alertsCommand(o: GlobalOptions & { json: boolean }): Promise<number> {
  const paths = resolvePaths(o);
  const episodes = await rememberedAlerts(paths);
  const nowMs = Date.now();
  process.stdout.write(
    o.json
      ? `${JSON.stringify(
          alertsToJson(
            episodes.filter((e) => e.firedAtMs !== null),
            nowMs,
          ),
          null,
          2,
        )}\n`
      : renderAlertsText(episodes, nowMs),
  );
  return 0;
}
