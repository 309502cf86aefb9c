/**
 * A private PostgreSQL cluster in a short temp dir (DOMAIN.md section 11): initdb as the `postgres` user when we
 * are root, a unix socket only, `setpriv --pdeathsig SIGINT` so a killed test runner does not leave it running,
 * stopped with SIGINT and waited for until postmaster.pid is gone. Never the system cluster.
 *
 * Test and demo infrastructure, not part of the reconciler (like src/dev/sandbox.ts). Used by the vitest globalSetup (test/helpers/pg-global.ts: one cluster per test run, started only when a test
 * file asks for it) and by tests that kill and restart their own cluster (the register outage tests).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  rmSync,
  closeSync,
} from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';

export interface PgCluster {
  dir: string;
  /** The unix socket directory (`host=` of a DSN). */
  socketDir: string;
  /** The postmaster's pid, while it runs. */
  pid(): number | undefined;
  /** A DSN for a database of this cluster, as role `fleet`. */
  dsn(database: string): string;
  /** Start the server again after stop() or kill() (same data). */
  start(): Promise<void>;
  /** Fast shutdown (SIGINT), waiting until postmaster.pid is gone. */
  stop(): Promise<void>;
  /** SIGKILL the postmaster (a crash), waiting for it to exit. */
  kill(): Promise<void>;
  /** Stop and remove the directory. */
  destroy(): Promise<void>;
}

/** The directory holding `initdb` and `postgres`, or null when PostgreSQL is not installed. */
export function postgresBinDir(): string | null {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return null;
  const versions = readdirSync(root)
    .filter((v) => existsSync(join(root, v, 'bin', 'postgres')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] === undefined ? null : join(root, versions[0], 'bin');
}

/** Why a private cluster cannot run here (null when it can). */
export function postgresUnavailableReason(): string | null {
  if (postgresBinDir() === null) return 'PostgreSQL is not installed (/usr/lib/postgresql/*/bin/postgres)';
  if (spawnSync('setpriv', ['--version']).status !== 0) return 'setpriv (util-linux) is not installed';
  if (process.getuid?.() === 0 && postgresIds() === null) return 'no `postgres` user to run initdb as';
  return null;
}

/** `FLEET_REQUIRE_POSTGRES=1` (CI): a missing PostgreSQL is a failure, not a skip. */
export function postgresRequired(): boolean {
  return process.env.FLEET_REQUIRE_POSTGRES === '1';
}

function postgresIds(): { uid: number; gid: number } | null {
  const r = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
  const g = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
  if (r.status !== 0 || g.status !== 0) return null;
  return { uid: Number(r.stdout.trim()), gid: Number(g.stdout.trim()) };
}

/** As root, run PostgreSQL as `postgres` (initdb refuses root); otherwise as ourselves. */
function runAs(): { uid: number; gid: number } | Record<string, never> {
  return process.getuid?.() === 0 ? (postgresIds() ?? {}) : {};
}

const SERVER_SETTINGS = [
  '-p',
  '5432',
  '-c',
  'listen_addresses=',
  '-c',
  'fsync=off',
  '-c',
  'synchronous_commit=off',
  '-c',
  'full_page_writes=off',
  '-c',
  'shared_buffers=16MB',
  '-c',
  'max_connections=60',
];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function startCluster(): Promise<PgCluster> {
  const bin = postgresBinDir();
  if (bin === null) throw new Error('PostgreSQL is not installed');
  // Short: the socket path must stay under 107 bytes.
  const dir = mkdtempSync('/tmp/fpg-');
  const data = join(dir, 'data');
  const socketDir = join(dir, 's');
  mkdirSync(socketDir);
  const ids = runAs();
  if ('uid' in ids) {
    chownSync(dir, ids.uid, ids.gid);
    chownSync(socketDir, ids.uid, ids.gid);
  }
  const env = { PATH: '/usr/bin:/bin', LANG: 'C.UTF-8', LC_ALL: 'C.UTF-8' };
  const init = spawnSync(
    join(bin, 'initdb'),
    ['-D', data, '--no-sync', '-A', 'trust', '-U', 'fleet', '-E', 'UTF8', '--locale=C.UTF-8'],
    { ...ids, env, encoding: 'utf8', cwd: dir },
  );
  if (init.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`initdb failed: ${init.stderr}`);
  }
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();

  const start = async (): Promise<void> => {
    for (let attempt = 0; ; attempt++) {
      const log = openSync(join(dir, 'server.log'), 'a');
      if ('uid' in ids) chownSync(join(dir, 'server.log'), ids.uid, ids.gid);
      const c = spawn(
        'setpriv',
        [
          '--pdeathsig',
          'SIGINT',
          '--',
          join(bin, 'postgres'),
          '-D',
          data,
          '-k',
          socketDir,
          ...SERVER_SETTINGS,
        ],
        { ...ids, env, cwd: dir, stdio: ['ignore', log, log] },
      );
      closeSync(log);
      let gone = false;
      exited = new Promise((r) => c.once('exit', () => ((gone = true), r())));
      child = c;
      if (await ready(socketDir, () => gone)) return;
      // A restart right after a SIGKILL can meet the old postmaster's lock or shared memory: retry a few times.
      if (attempt >= 20) throw new Error(`postgres did not start; see ${join(dir, 'server.log')}`);
      if (!gone) c.kill('SIGKILL');
      await exited;
      await sleep(250);
    }
  };

  const waitPidFileGone = async (): Promise<void> => {
    for (let i = 0; i < 200 && existsSync(join(data, 'postmaster.pid')); i++) await sleep(50);
  };

  const cluster: PgCluster = {
    dir,
    socketDir,
    pid: () => (child?.exitCode === null && child.signalCode === null ? child.pid : undefined),
    dsn: (database) =>
      `postgresql://fleet@/${encodeURIComponent(database)}?host=${encodeURIComponent(socketDir)}&port=5432`,
    start,
    async stop() {
      if (cluster.pid() === undefined) return;
      child?.kill('SIGINT');
      await exited;
      await waitPidFileGone();
    },
    async kill() {
      if (cluster.pid() === undefined) return;
      child?.kill('SIGKILL');
      await exited;
    },
    async destroy() {
      await cluster.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await start();
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  return cluster;
}

/** Wait until the server takes a connection (or its process exited). */
async function ready(socketDir: string, gone: () => boolean): Promise<boolean> {
  for (let i = 0; i < 300; i++) {
    if (gone()) return false;
    const c = new pg.Client({ host: socketDir, port: 5432, user: 'fleet', database: 'postgres' });
    c.on('error', () => undefined);
    try {
      await c.connect();
      await c.end();
      return true;
    } catch {
      await c.end().catch(() => undefined);
      await sleep(50);
    }
  }
  return false;
}

/** A fresh database in a cluster, made from template1 (60–85 ms). */
export async function createDatabase(socketDir: string, name: string): Promise<void> {
  const c = new pg.Client({ host: socketDir, port: 5432, user: 'fleet', database: 'postgres' });
  c.on('error', () => undefined);
  await c.connect();
  try {
    await c.query(`CREATE DATABASE "${name}" TEMPLATE template1`);
  } finally {
    await c.end();
  }
}
