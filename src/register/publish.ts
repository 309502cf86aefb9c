/**
 * One cycle's publication, in ONE transaction: the host's lease, a status row per agent of its share, and the
 * journal entries the register does not have yet. Only what changed is written: the lease every time (that is
 * what a lease is), an agent row only when something in it differs (`IS DISTINCT FROM`), a journal entry only
 * once (the key is (host, seq), seq being the entry's place in the host's journal; `ON CONFLICT DO NOTHING`).
 * So a cycle that failed half-way, or ran while the register was down, is simply published by the next one.
 */
import type { Client } from 'pg';
import type { JournalEntry } from '../apply/journal.js';
import { claim, release, type OwnershipChanges } from './ownership.js';
import type { StatusRow } from './rows.js';

export interface HostLease {
  host: string;
  bootId: string;
  /** This fleet's version. */
  version: string;
  /** The manifest commit converged (git source), when known. */
  commit: string | null;
  tenantId: string | null;
  leaseSeconds: number;
}

export interface Publication {
  lease: HostLease;
  agents: readonly StatusRow[];
  /** The host's whole journal, oldest first: entry i has seq i + 1. */
  journal: readonly JournalEntry[];
  /** Ownership claims (compare-and-set on the epoch) and releases; absent: none. */
  ownership?: OwnershipChanges;
}

export interface Published {
  /** Rows inserted, updated or deleted (the lease counts one). */
  rowsWritten: number;
  /** Journal entries the register did not have before. */
  journalPublished: number;
  /** Agents this host claimed and won in this transaction. */
  claimed?: string[];
  /** Agents whose stop this host recorded in this transaction. */
  released?: string[];
}

const LEASE_SQL = `
  INSERT INTO fleet.hosts AS h (host, boot_id, version, commit, tenant_id, seen_at, valid_until)
  VALUES ($1, $2, $3, $4, $5, now(), now() + make_interval(secs => $6))
  ON CONFLICT (host) DO UPDATE SET boot_id = EXCLUDED.boot_id, version = EXCLUDED.version,
    commit = EXCLUDED.commit, tenant_id = EXCLUDED.tenant_id, seen_at = EXCLUDED.seen_at,
    valid_until = EXCLUDED.valid_until`;

const STATUS_SQL = `
  INSERT INTO fleet.agent_status AS a (host, agent, tenant_id, state, state_since, flags, pid, unit, session,
    env_digest, unit_digest, spend_usd, updated_at)
  SELECT $1, x.agent, x.tenant_id, x.state, x.state_since, x.flags, x.pid, x.unit, x.session, x.env_digest,
    x.unit_digest, x.spend_usd, now()
  FROM jsonb_to_recordset($2::jsonb) AS x(agent text, tenant_id text, state text, state_since timestamptz,
    flags text[], pid integer, unit text, session text, env_digest text, unit_digest text, spend_usd numeric)
  ON CONFLICT (host, agent) DO UPDATE SET tenant_id = EXCLUDED.tenant_id, state = EXCLUDED.state,
    state_since = CASE WHEN a.state IS DISTINCT FROM EXCLUDED.state THEN EXCLUDED.state_since ELSE a.state_since END,
    flags = EXCLUDED.flags, pid = EXCLUDED.pid, unit = EXCLUDED.unit, session = EXCLUDED.session,
    env_digest = EXCLUDED.env_digest, unit_digest = EXCLUDED.unit_digest, spend_usd = EXCLUDED.spend_usd,
    updated_at = EXCLUDED.updated_at
  WHERE (a.tenant_id, a.state, a.flags, a.pid, a.unit, a.session, a.env_digest, a.unit_digest, a.spend_usd)
    IS DISTINCT FROM (EXCLUDED.tenant_id, EXCLUDED.state, EXCLUDED.flags, EXCLUDED.pid, EXCLUDED.unit,
      EXCLUDED.session, EXCLUDED.env_digest, EXCLUDED.unit_digest, EXCLUDED.spend_usd)`;

const JOURNAL_SQL = `
  INSERT INTO fleet.journal (host, seq, started_at, command, result, entry)
  SELECT $1, x.seq, x.started_at, x.command, x.result, x.entry
  FROM jsonb_to_recordset($2::jsonb) AS x(seq bigint, started_at timestamptz, command text, result text, entry jsonb)
  ON CONFLICT (host, seq) DO NOTHING`;

export async function publish(client: Client, p: Publication): Promise<Published> {
  const host = p.lease.host;
  await client.query('BEGIN');
  try {
    let rows = 0;
    const l = p.lease;
    rows +=
      (await client.query(LEASE_SQL, [host, l.bootId, l.version, l.commit, l.tenantId, l.leaseSeconds]))
        .rowCount ?? 0;
    if (p.agents.length > 0)
      rows += (await client.query(STATUS_SQL, [host, JSON.stringify(p.agents)])).rowCount ?? 0;
    // Agents that left this host's share (moved, removed): their rows go.
    rows +=
      (
        await client.query(
          'DELETE FROM fleet.agent_status WHERE host = $1 AND NOT (agent = ANY($2::text[]))',
          [host, p.agents.map((a) => a.agent)],
        )
      ).rowCount ?? 0;
    const last = await client.query<{ seq: string | null }>(
      'SELECT max(seq)::text AS seq FROM fleet.journal WHERE host = $1',
      [host],
    );
    const after = Number(last.rows[0]?.seq ?? 0);
    const missing = p.journal.slice(after).map((entry, i) => ({
      seq: after + i + 1,
      started_at: entry.started_at,
      command: entry.command,
      result: entry.result,
      entry,
    }));
    let journalPublished = 0;
    if (missing.length > 0) {
      journalPublished = (await client.query(JOURNAL_SQL, [host, JSON.stringify(missing)])).rowCount ?? 0;
      rows += journalPublished;
    }
    const claimed: string[] = [];
    for (const c of p.ownership?.claims ?? [])
      if (await claim(client, host, c.agent, c.epoch)) claimed.push(c.agent);
    const released = await release(client, host, p.ownership?.releases ?? []);
    rows += claimed.length + released.length;
    await client.query('COMMIT');
    return {
      rowsWritten: rows,
      journalPublished,
      ...(claimed.length > 0 ? { claimed } : {}),
      ...(released.length > 0 ? { released } : {}),
    };
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}
