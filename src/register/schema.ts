/**
 * The register's `fleet` schema and its versioned migrations. `fleet register migrate` applies the ones a
 * register lacks, in one transaction under an advisory lock (two hosts migrating at once wait for each other).
 * A register of a newer schema version than this build knows is refused, and nothing is written.
 */
import type { Client } from 'pg';
import { RegisterError } from './connect.js';

/** Migration N brings the schema from version N-1 to N. Never edit a released one: add the next. */
const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE fleet.hosts (
    host text PRIMARY KEY,
    boot_id text NOT NULL,
    version text NOT NULL,
    commit text,
    tenant_id text,
    seen_at timestamptz NOT NULL,
    valid_until timestamptz NOT NULL
  );
  CREATE TABLE fleet.agent_status (
    host text NOT NULL,
    agent text NOT NULL,
    tenant_id text,
    state text NOT NULL,
    state_since timestamptz NOT NULL,
    flags text[] NOT NULL DEFAULT '{}',
    pid integer,
    unit text,
    session text,
    env_digest text,
    unit_digest text,
    spend_usd numeric,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (host, agent)
  );
  CREATE TABLE fleet.journal (
    host text NOT NULL,
    seq bigint NOT NULL,
    started_at timestamptz NOT NULL,
    command text NOT NULL,
    result text NOT NULL,
    entry jsonb NOT NULL,
    PRIMARY KEY (host, seq)
  );
  CREATE INDEX journal_started_at ON fleet.journal (started_at DESC);
  CREATE TABLE fleet.ownership (
    agent text PRIMARY KEY,
    holder text NOT NULL,
    epoch bigint NOT NULL CHECK (epoch > 0),
    released boolean NOT NULL DEFAULT false,
    changed_at timestamptz NOT NULL
  );
  `,
];

/** The schema version this build reads and writes. */
export const SCHEMA_VERSION = MIGRATIONS.length;

/** The register's schema version; 0 when it has none yet. */
export async function schemaVersion(client: Client): Promise<number> {
  const exists = await client.query<{ t: string | null }>(
    "SELECT to_regclass('fleet.schema_version')::text AS t",
  );
  if (exists.rows[0]?.t == null) return 0;
  const r = await client.query<{ v: number | null }>('SELECT max(version) AS v FROM fleet.schema_version');
  return r.rows[0]?.v ?? 0;
}

function newerError(found: number): RegisterError {
  return new RegisterError(
    `register schema version ${found} is newer than this fleet knows (${SCHEMA_VERSION}): upgrade fleet on this host`,
    'refused',
  );
}

/** Refuse a register this build cannot publish to: no schema yet, an older one, or a newer one. */
export async function requireSchema(client: Client): Promise<void> {
  const found = await schemaVersion(client);
  if (found > SCHEMA_VERSION) throw newerError(found);
  if (found < SCHEMA_VERSION)
    throw new RegisterError(
      `register schema version ${found} is older than this fleet's (${SCHEMA_VERSION}): run \`fleet register migrate\``,
      'refused',
    );
}

/** Create or upgrade the schema. Returns the versions before and after. */
export async function migrate(client: Client): Promise<{ from: number; to: number }> {
  await client.query('BEGIN');
  try {
    // One migrator at a time, across hosts; released with the transaction.
    await client.query("SELECT pg_advisory_xact_lock(hashtext('mosaic-fleet register migrate'))");
    const from = await schemaVersion(client);
    if (from > SCHEMA_VERSION) throw newerError(from);
    if (from === 0) {
      await client.query('CREATE SCHEMA IF NOT EXISTS fleet');
      await client.query(
        'CREATE TABLE fleet.schema_version (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())',
      );
    }
    for (let v = from + 1; v <= SCHEMA_VERSION; v++) {
      await client.query(MIGRATIONS[v - 1] ?? '');
      await client.query('INSERT INTO fleet.schema_version (version) VALUES ($1)', [v]);
    }
    await client.query('COMMIT');
    return { from, to: SCHEMA_VERSION };
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}
