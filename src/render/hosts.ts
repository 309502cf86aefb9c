/**
 * The register's view of the fleet as a table (`fleet ps --all-hosts`) or JSON. Pure. A host whose lease ran out
 * marks each of its agents HOST-STALE: the row is what that host last said, not what runs now.
 */
import type { RegisterView } from '../register/read.js';
import { duration } from './ps.js';

export const HOSTS_FORMAT_VERSION = 1;

function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i] ?? 0))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

export function renderHostsTable(view: RegisterView): string {
  const stale = new Set(view.hosts.filter((h) => h.stale).map((h) => h.host));
  const since = (at: string) => duration(Math.max(0, Math.round((view.nowMs - Date.parse(at)) / 1000)));
  const rows = [
    ['HOST', 'AGENT', 'STATE', 'SINCE', 'PID', 'UNIT', 'TENANT', 'FLAGS'],
    ...view.agents.map((a) => [
      a.host,
      a.agent,
      a.state,
      since(a.stateSince),
      a.pid === null ? '-' : String(a.pid),
      a.unit ?? '-',
      a.tenantId ?? '-',
      [...(stale.has(a.host) ? ['HOST-STALE'] : []), ...a.flags].join(',') || 'ok',
    ]),
  ];
  const hosts = view.hosts.map(
    (h) =>
      `  ${h.host}: ${h.stale ? `HOST-STALE, lease ran out ${since(h.validUntil)} ago` : `seen ${since(h.seenAt)} ago`}` +
      ` (fleet ${h.version}${h.commit === null ? '' : `, manifests ${h.commit.slice(0, 12)}`})`,
  );
  return `${table(rows)}\n\nHosts (${view.hosts.length}):\n${hosts.join('\n')}\n`;
}

export function hostsToJson(view: RegisterView): unknown {
  const stale = new Set(view.hosts.filter((h) => h.stale).map((h) => h.host));
  return {
    format_version: HOSTS_FORMAT_VERSION,
    now: new Date(view.nowMs).toISOString(),
    hosts: view.hosts.map((h) => ({
      host: h.host,
      seen_at: h.seenAt,
      valid_until: h.validUntil,
      stale: h.stale,
      version: h.version,
      commit: h.commit,
    })),
    agents: view.agents.map((a) => ({
      host: a.host,
      agent: a.agent,
      tenant_id: a.tenantId,
      state: a.state,
      state_since: a.stateSince,
      flags: [...(stale.has(a.host) ? ['HOST-STALE'] : []), ...a.flags],
      pid: a.pid,
      unit: a.unit,
      session: a.session,
      spend_usd: a.spendUsd,
    })),
  };
}
