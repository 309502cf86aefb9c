/**
 * Ownership in the register: read at the start of a cycle (a RegisterSnapshot for the pure decider,
 * src/plan/deciders/ownership.ts), and changed after apply, in the publish transaction, only by compare-and-set
 * on the epoch: `UPDATE … WHERE epoch = $old`. Of two hosts claiming the same agent from the same epoch, exactly
 * one updates the row; the other's UPDATE finds no row and it keeps waiting. The epoch only grows, so a host that
 * lost an agent can never act on its old claim (a fencing token).
 */
import type { Client } from 'pg';
import type { OwnershipDecision, OwnershipRow, RegisterSnapshot } from '../plan/deciders/ownership.js';

export async function readSnapshot(client: Client): Promise<RegisterSnapshot> {
  const now = await client.query<{ now: Date }>('SELECT now() AS now');
  const rows = await client.query<{ agent: string; holder: string; epoch: string; released: boolean }>(
    'SELECT agent, holder, epoch::text AS epoch, released FROM fleet.ownership',
  );
  const leases = await client.query<{ host: string; valid_until: Date }>(
    'SELECT host, valid_until FROM fleet.hosts',
  );
  const ownership: Record<string, OwnershipRow> = {};
  for (const r of rows.rows)
    ownership[r.agent] = { agent: r.agent, holder: r.holder, epoch: Number(r.epoch), released: r.released };
  const leaseEnds: Record<string, number> = {};
  for (const l of leases.rows) leaseEnds[l.host] = l.valid_until.getTime();
  return { nowMs: (now.rows[0]?.now ?? new Date()).getTime(), ownership, leaseEnds };
}

/** Take an agent from epoch `epoch` (0: nobody held it). True when this host won it. */
export async function claim(client: Client, host: string, agent: string, epoch: number): Promise<boolean> {
  const r =
    epoch === 0
      ? await client.query(
          `INSERT INTO fleet.ownership (agent, holder, epoch, released, changed_at) VALUES ($1, $2, 1, false, now())
           ON CONFLICT (agent) DO NOTHING`,
          [agent, host],
        )
      : await client.query(
          `UPDATE fleet.ownership SET holder = $2, epoch = epoch + 1, released = false, changed_at = now()
           WHERE agent = $1 AND epoch = $3`,
          [agent, host, epoch],
        );
  return r.rowCount === 1;
}

/**
 * Record that this host stopped agents it held (so their new host may start them): only rows this host holds
 * and has not released yet, so a no-op cycle writes nothing. Returns the agents released now.
 */
export async function release(client: Client, host: string, agents: readonly string[]): Promise<string[]> {
  if (agents.length === 0) return [];
  const r = await client.query<{ agent: string }>(
    `UPDATE fleet.ownership SET released = true, changed_at = now()
     WHERE agent = ANY($1::text[]) AND holder = $2 AND NOT released RETURNING agent`,
    [agents, host],
  );
  return r.rows.map((x) => x.agent);
}

/** What the publish transaction does about ownership: the claims the plan asked for, the releases now due. */
export interface OwnershipChanges {
  claims: { agent: string; epoch: number }[];
  /** Agents moved away that no longer run here. */
  releases: string[];
}

export function claimsOf(decisions: readonly OwnershipDecision[]): OwnershipChanges['claims'] {
  return decisions.flatMap((d) => (d.kind === 'claim' ? [{ agent: d.agent, epoch: d.epoch }] : []));
}
