/**
 * PostgreSQL for a test file: its own database in the run's private cluster (test/helpers/pg-global.ts starts
 * the cluster at the first request), or a whole private cluster of its own for tests that kill the server.
 * Skipped with the reason when PostgreSQL is absent, except under FLEET_REQUIRE_POSTGRES=1 (CI): then a failure.
 */
import { createConnection } from 'node:net';
import { afterAll, beforeAll, describe, inject, it } from 'vitest';
import {
  createDatabase,
  postgresRequired,
  postgresUnavailableReason,
  startCluster,
  type PgCluster,
} from '../../src/dev/pg-cluster.js';

export { startCluster, type PgCluster } from '../../src/dev/pg-cluster.js';

export interface PgTestDb {
  /** A DSN for this file's own database. */
  dsn: string;
  database: string;
  socketDir: string;
}

/** Ask the globalSetup for the run's cluster (starting it if this is the first file that needs it). */
function sharedCluster(): Promise<{ socketDir: string }> {
  const path = inject('fleetPostgresControl');
  return new Promise((resolve, reject) => {
    const conn = createConnection(path);
    let text = '';
    conn.on('data', (d) => (text += d.toString()));
    conn.on('error', reject);
    conn.on('end', () => {
      const reply = JSON.parse(text) as { socketDir?: string; error?: string };
      if (reply.socketDir !== undefined) resolve({ socketDir: reply.socketDir });
      else reject(new Error(reply.error ?? 'no reply from the PostgreSQL globalSetup'));
    });
    conn.write('start\n');
  });
}

let counter = 0;

/** A new database of its own in the run's cluster. */
export async function freshDatabase(): Promise<PgTestDb> {
  const { socketDir } = await sharedCluster();
  const database = `t_${process.pid}_${Date.now().toString(36)}_${counter++}`;
  await createDatabase(socketDir, database);
  return {
    database,
    socketDir,
    dsn: `postgresql://fleet@/${database}?host=${encodeURIComponent(socketDir)}&port=5432`,
  };
}

/** A new database in a cluster of the test's own (one it may stop and kill). */
export async function databaseIn(cluster: PgCluster): Promise<PgTestDb> {
  const database = `t_${counter++}`;
  await createDatabase(cluster.socketDir, database);
  return { database, socketDir: cluster.socketDir, dsn: cluster.dsn(database) };
}

/** A describe block that needs PostgreSQL: skipped with the reason when it is absent (failed on CI). */
export function describePostgres(name: string, fn: () => void): void {
  const reason = postgresUnavailableReason();
  if (reason === null) {
    describe(name, fn);
  } else if (postgresRequired()) {
    describe(name, () => {
      it('PostgreSQL is available (FLEET_REQUIRE_POSTGRES=1)', () => {
        throw new Error(`PostgreSQL required but unavailable: ${reason}`);
      });
    });
  } else {
    describe.skip(`${name} (skipped: ${reason})`, fn);
  }
}

/** This file's own database in the shared cluster, made in beforeAll. */
export function useDatabase(): () => PgTestDb {
  let db: PgTestDb | undefined;
  beforeAll(async () => {
    db = await freshDatabase();
  });
  return () => {
    if (db === undefined) throw new Error('database not made (beforeAll failed)');
    return db;
  };
}

/** A cluster of the file's own, started in beforeAll and removed in afterAll. */
export function useOwnCluster(): () => PgCluster {
  let cluster: PgCluster | undefined;
  beforeAll(async () => {
    cluster = await startCluster();
  });
  afterAll(async () => {
    await cluster?.destroy();
  });
  return () => {
    if (cluster === undefined) throw new Error('cluster not started (beforeAll failed)');
    return cluster;
  };
}
