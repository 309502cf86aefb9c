/**
 * Reading the register: every host's agents (`fleet ps --all-hosts`, `--host NAME`) and every host's journal
 * (`fleet history --all-hosts`). A host whose lease ran out (by the register's own clock, so the hosts' clocks
 * need not agree) is stale: what it last said may no longer be true.
 */
import type { Client } from 'pg';

export interface RegisterHost {
  host: string;
  seenAt: string;
  validUntil: string;
  stale: boolean;
  version: string;
  commit: string | null;
}

export interface RegisterAgent {
  host: string;
  agent: string;
  tenantId: string | null;
  state: string;
  stateSince: string;
  flags: string[];
  pid: number | null;
  unit: string | null;
  session: string | null;
  spendUsd: number | null;
}

export interface RegisterView {
  /** The register's clock when read (unix ms). */
  nowMs: number;
  hosts: RegisterHost[];
  agents: RegisterAgent[];
}

export interface RegisterJournalEntry {
  host: string;
  seq: number;
  entry: unknown;
}

const iso = (d: Date | string): string => (d instanceof Date ? d.toISOString() : d);

export async function readView(client: Client, host: string | null): Promise<RegisterView> {
  const now = await client.query<{ now: Date }>('SELECT now() AS now');
  const hosts = await client.query<{
    host: string;
    seen_at: Date;
    valid_until: Date;
    stale: boolean;
    version: string;
    commit: string | null;
  }>(
    `SELECT host, seen_at, valid_until, valid_until < now() AS stale, version, commit FROM fleet.hosts
     WHERE $1::text IS NULL OR host = $1 ORDER BY host`,
    [host],
  );
  const agents = await client.query<{
    host: string;
    agent: string;
    tenant_id: string | null;
    state: string;
    state_since: Date;
    flags: string[];
    pid: number | null;
    unit: string | null;
    session: string | null;
    spend_usd: string | null;
  }>(
    `SELECT host, agent, tenant_id, state, state_since, flags, pid, unit, session, spend_usd FROM fleet.agent_status
     WHERE $1::text IS NULL OR host = $1 ORDER BY host, agent`,
    [host],
  );
  return {
    nowMs: (now.rows[0]?.now ?? new Date()).getTime(),
    hosts: hosts.rows.map((h) => ({
      host: h.host,
      seenAt: iso(h.seen_at),
      validUntil: iso(h.valid_until),
      stale: h.stale,
      version: h.version,
      commit: h.commit,
    })),
    agents: agents.rows.map((a) => ({
      host: a.host,
      agent: a.agent,
      tenantId: a.tenant_id,
      state: a.state,
      stateSince: iso(a.state_since),
      flags: a.flags,
      pid: a.pid,
      unit: a.unit,
      session: a.session,
      spendUsd: a.spend_usd === null ? null : Number(a.spend_usd),
    })),
  };
}

export async function readHistory(
  client: Client,
  host: string | null,
  limit: number,
): Promise<RegisterJournalEntry[]> {
  const r = await client.query<{ host: string; seq: string; entry: unknown }>(
    `SELECT host, seq::text AS seq, entry FROM fleet.journal WHERE $1::text IS NULL OR host = $1
     ORDER BY started_at DESC, host, seq DESC LIMIT $2`,
    [host, limit],
  );
  return r.rows.map((x) => ({ host: x.host, seq: Number(x.seq), entry: x.entry }));
}
