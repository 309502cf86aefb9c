/**
 * Vitest globalSetup: one private PostgreSQL cluster per test run, started only when a test file asks for it.
 * The main process listens on a unix socket (its path is provided to the workers as `fleetPostgresControl`); the
 * first `start` request starts the cluster (src/dev/pg-cluster.ts) and every request gets its socket dir.
 * A run with no register test starts nothing and costs one listening socket. The cluster lives in this process,
 * so it outlives the workers that use it (its `setpriv --pdeathsig` ties it to this process, not to a worker).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { postgresUnavailableReason, startCluster, type PgCluster } from '../../src/dev/pg-cluster.js';

declare module 'vitest' {
  export interface ProvidedContext {
    fleetPostgresControl: string;
  }
}

export default function setup(project: TestProject): () => Promise<void> {
  const dir = mkdtempSync('/tmp/fpgc-');
  const path = join(dir, 'ctl');
  let cluster: Promise<PgCluster> | undefined;
  const server = createServer((conn) => {
    conn.once('data', () => {
      const reason = postgresUnavailableReason();
      if (reason !== null) {
        conn.end(JSON.stringify({ error: reason }));
        return;
      }
      cluster ??= startCluster();
      cluster.then(
        (c) => conn.end(JSON.stringify({ socketDir: c.socketDir })),
        (error: unknown) => conn.end(JSON.stringify({ error: String(error) })),
      );
    });
  });
  server.listen(path);
  project.provide('fleetPostgresControl', path);
  return async () => {
    server.close();
    if (cluster) await (await cluster.catch(() => undefined))?.destroy();
    rmSync(dir, { recursive: true, force: true });
  };
}
