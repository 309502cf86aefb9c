/**
 * Watch mode with a register, against a real sandbox and a private PostgreSQL of this file's own: the start of a
 * claimed agent follows the claim at once (not at the next resync); with the server killed (SIGKILL) a killed
 * pane of an agent this host held is still healed, "register unreachable" is said once, and when the server is
 * back the journal entries of the outage reach the register exactly once.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { withRegister } from '../../src/register/connect.js';
import { migrate } from '../../src/register/schema.js';
import { FLEET_BIN, REPO } from '../helpers/cli.js';
import { databaseIn, describePostgres, useOwnCluster, type PgTestDb } from '../helpers/postgres.js';
import { sandboxRequired, sandboxUnavailableReason, startSandbox, type Sandbox } from '../sandbox.js';

const SOCKET = 'regwatch';

async function panes(sb: Sandbox): Promise<Map<string, { pid: number; dead: boolean }>> {
  const r = await sb.run(
    ['tmux', '-L', SOCKET, 'list-panes', '-a', '-F', '#{session_name} #{pane_pid} #{pane_dead}'],
    {
      reject: false,
    },
  );
  const out = new Map<string, { pid: number; dead: boolean }>();
  if (r.exitCode !== 0) return out;
  for (const line of r.stdout.split('\n').filter(Boolean)) {
    const [name, pid, dead] = line.split(' ');
    out.set(name ?? '', { pid: Number(pid), dead: dead === '1' });
  }
  return out;
}

async function waitFor<T>(
  what: string,
  probe: () => Promise<T | null>,
  ms: number,
  output: () => string,
): Promise<T> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const v = await probe();
    if (v !== null) return v;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}\n--- watcher ---\n${output().slice(-4000)}`);
}

describePostgres('watch mode with a register', () => {
  const cluster = useOwnCluster();
  let db: PgTestDb;
  let sb: Sandbox | undefined;
  let reason: string | null = null;

  beforeAll(async () => {
    reason = await sandboxUnavailableReason();
    if (reason !== null) {
      if (sandboxRequired()) throw new Error(`sandbox required but unavailable: ${reason}`);
      return;
    }
    db = await databaseIn(cluster());
    await withRegister(db.dsn, migrate);
    sb = await startSandbox({ env: { MOSAIC_HOST: 'h1', FLEET_REGISTER_URL: db.dsn } });
    const dir = join(sb.paths.mosaicHome, 'fleet');
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      join(dir, 'roster.yaml'),
      [
        'version: 1',
        `tmux: {socket_name: ${SOCKET}}`,
        'register: {url_env: FLEET_REGISTER_URL}',
        'agents:',
        '  - {name: w1, runtime: stub, host: h1}',
        '',
      ].join('\n'),
    );
  });
  afterAll(async () => {
    await sb?.stop();
  });

  it('starts a claimed agent at once, heals it with the register killed, and publishes the outage once', async (ctx) => {
    if (reason !== null || sb === undefined) return ctx.skip();
    const box = sb;
    let out = '';
    const child: ChildProcess = spawn(
      process.execPath,
      [FLEET_BIN, 'reconcile', '--watch', '--interval', '600'],
      {
        env: box.env,
        cwd: REPO,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    child.stdout?.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr?.on('data', (c: Buffer) => (out += c.toString()));
    const output = () => out;
    try {
      // The first cycle claims w1; the claim wakes the next cycle, which starts it (the resync is 10 min away).
      const first = await waitFor(
        'w1 running',
        async () => {
          const p = (await panes(box)).get('w1');
          return p !== undefined && !p.dead ? p : null;
        },
        30_000,
        output,
      );
      await cluster().kill();
      expect(first.pid).toBeGreaterThan(1); // never kill(0)
      process.kill(first.pid, 'SIGKILL');
      await waitFor(
        'w1 healed with the register down',
        async () => {
          const p = (await panes(box)).get('w1');
          return p !== undefined && !p.dead && p.pid !== first.pid ? p : null;
        },
        30_000,
        output,
      );
      await waitFor(
        '"register unreachable" said',
        () => Promise.resolve(/register unreachable/.test(out) ? true : null),
        20_000,
        output,
      );
      expect(out.match(/register unreachable/g)).toHaveLength(1);
      await cluster().start();
      // A manifest touch wakes a cycle, which publishes what the register missed.
      const roster = join(box.paths.mosaicHome, 'fleet', 'roster.yaml');
      writeFileSync(roster, `${readFileSync(roster, 'utf8')}# touched\n`);
      await waitFor(
        'register reachable again',
        () => Promise.resolve(/reachable again/.test(out) ? true : null),
        30_000,
        output,
      );
      const c = new pg.Client({ connectionString: db.dsn });
      c.on('error', () => undefined);
      await c.connect();
      try {
        const rows = await c.query<{ seq: string; n: string }>(
          "SELECT seq::text, count(*)::text AS n FROM fleet.journal WHERE host = 'h1' GROUP BY seq ORDER BY seq::bigint",
        );
        const respawns = await c.query<{ n: string }>(
          "SELECT count(*)::text AS n FROM fleet.journal WHERE host = 'h1' AND entry::text LIKE '%w1%' AND entry->'actions' @> '[{\"kind\":\"respawn\"}]'",
        );
        expect(rows.rows.every((r) => r.n === '1')).toBe(true);
        expect(rows.rows.map((r) => Number(r.seq))).toEqual(rows.rows.map((_, i) => i + 1));
        expect(Number(respawns.rows[0]?.n)).toBeGreaterThanOrEqual(1);
      } finally {
        await c.end();
      }
    } finally {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
    }
  });
});
