/**
 * Watch mode with a register, two hosts (h1, h2: a sandbox and a watcher each) and a private PostgreSQL of this
 * file's own: the start of a claimed agent follows the claim at once (not at the next resync); with the server
 * killed (SIGKILL) each host still heals a killed pane of the agent it held and says "register unreachable" once;
 * when the server is back, each host's journal entries of the outage reach the register exactly once, and its
 * status rows show the healed panes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { withRegister } from '../../src/register/connect.js';
import { migrate } from '../../src/register/schema.js';
import { FLEET_BIN, REPO } from '../helpers/cli.js';
import { panesOf, waitFor } from '../helpers/fleet.js';
import { databaseIn, describePostgres, useOwnCluster, type PgTestDb } from '../helpers/postgres.js';
import { sandboxRequired, sandboxUnavailableReason, startSandbox, type Sandbox } from '../sandbox.js';

const SOCKET = 'regwatch';

interface Host {
  name: string;
  agent: string;
  sb: Sandbox;
  child?: ChildProcess;
  out: string;
}

describePostgres('watch mode with a register, two hosts', () => {
  const cluster = useOwnCluster();
  let db: PgTestDb;
  const hosts: Host[] = [];
  let reason: string | null = null;

  beforeAll(async () => {
    reason = await sandboxUnavailableReason();
    if (reason !== null) {
      if (sandboxRequired()) throw new Error(`sandbox required but unavailable: ${reason}`);
      return;
    }
    db = await databaseIn(cluster());
    await withRegister(db.dsn, migrate);
    for (const [name, agent] of [
      ['h1', 'w1'],
      ['h2', 'w2'],
    ] as const) {
      const sb = await startSandbox({ env: { MOSAIC_HOST: name, FLEET_REGISTER_URL: db.dsn } });
      hosts.push({ name, agent, sb, out: '' });
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
          '  - {name: w2, runtime: stub, host: h2}',
          '',
        ].join('\n'),
      );
    }
  });
  afterAll(async () => {
    for (const h of hosts) {
      if (h.child !== undefined && h.child.exitCode === null) {
        const exited = new Promise((r) => h.child?.once('exit', r));
        h.child.kill('SIGTERM');
        await exited;
      }
    }
    await Promise.all(hosts.map((h) => h.sb.stop()));
  });

  const watch = (h: Host): void => {
    const child = spawn(process.execPath, [FLEET_BIN, 'reconcile', '--watch', '--interval', '600'], {
      env: h.sb.env,
      cwd: REPO,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout?.on('data', (c: Buffer) => (h.out += c.toString()));
    child.stderr?.on('data', (c: Buffer) => (h.out += c.toString()));
    h.child = child;
  };
  const output = () => hosts.map((h) => `--- ${h.name} ---\n${h.out.slice(-3000)}`).join('\n');
  const pane = async (h: Host) => (await panesOf(h.sb, SOCKET)).get(h.agent);

  it('each host heals its agent with the register killed, and publishes its outage once', async (ctx) => {
    if (reason !== null || hosts.length !== 2) return ctx.skip();
    for (const h of hosts) watch(h);
    // The first cycle claims the agent; the claim wakes the next cycle, which starts it (the resync is 10 min away).
    const first = await Promise.all(
      hosts.map((h) =>
        waitFor(
          `${h.agent} running on ${h.name}`,
          async () => {
            const p = await pane(h);
            return p !== undefined && !p.dead ? p : null;
          },
          30_000,
          output,
        ),
      ),
    );
    await cluster().kill();
    for (const p of first) {
      expect(p.pid).toBeGreaterThan(1); // never kill(0)
      process.kill(p.pid, 'SIGKILL');
    }
    const healed = await Promise.all(
      hosts.map((h, i) =>
        waitFor(
          `${h.agent} healed on ${h.name} with the register down`,
          async () => {
            const p = await pane(h);
            return p !== undefined && !p.dead && p.pid !== first[i]?.pid ? p : null;
          },
          30_000,
          output,
        ),
      ),
    );
    for (const h of hosts) {
      await waitFor(
        `"register unreachable" said on ${h.name}`,
        () => Promise.resolve(/register unreachable/.test(h.out) ? true : null),
        20_000,
        output,
      );
      expect(h.out.match(/register unreachable/g), h.name).toHaveLength(1);
    }
    await cluster().start();
    // A manifest touch wakes a cycle, which publishes what the register missed.
    for (const h of hosts) {
      const roster = join(h.sb.paths.mosaicHome, 'fleet', 'roster.yaml');
      writeFileSync(roster, `${readFileSync(roster, 'utf8')}# touched\n`);
    }
    for (const h of hosts)
      await waitFor(
        `register reachable again on ${h.name}`,
        () => Promise.resolve(/reachable again/.test(h.out) ? true : null),
        30_000,
        output,
      );
    const c = new pg.Client({ connectionString: db.dsn });
    c.on('error', () => undefined);
    await c.connect();
    try {
      for (const [i, h] of hosts.entries()) {
        const rows = await c.query<{ seq: string; n: string }>(
          'SELECT seq::text, count(*)::text AS n FROM fleet.journal WHERE host = $1 GROUP BY seq ORDER BY seq::bigint',
          [h.name],
        );
        const respawns = await c.query<{ n: string }>(
          `SELECT count(*)::text AS n FROM fleet.journal WHERE host = $1 AND entry::text LIKE $2 AND entry->'actions' @> '[{"kind":"respawn"}]'`,
          [h.name, `%${h.agent}%`],
        );
        // Every entry of the host's journal, once, none missing: the outage's too.
        expect(
          rows.rows.every((r) => r.n === '1'),
          h.name,
        ).toBe(true);
        expect(
          rows.rows.map((r) => Number(r.seq)),
          h.name,
        ).toEqual(rows.rows.map((_, k) => k + 1));
        expect(Number(respawns.rows[0]?.n), h.name).toBeGreaterThanOrEqual(1);
        // The status of the outage: the healed pane, not the killed one.
        const status = await c.query<{ agent: string; pid: number | null }>(
          'SELECT agent, pid FROM fleet.agent_status WHERE host = $1 ORDER BY agent',
          [h.name],
        );
        expect(status.rows, h.name).toEqual([{ agent: h.agent, pid: healed[i]?.pid }]);
      }
    } finally {
      await c.end();
    }
  }, 150_000);
});
