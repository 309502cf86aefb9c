/**
 * Issue 24's move, with a real runtime: a real Claude Code agent on h1, busy (our model server holds its turn),
 * has its `host:` changed to h2. Two hosts simulated on one machine (two sandboxes, each with its own systemd user
 * manager, tmux directory, home and host name), one model server, one register in a private PostgreSQL, one roster
 * (the agent's working directory is shared, as it would be on a shared disk). Sampled every 50 ms across both
 * hosts' tmux servers for the whole move, the agent never runs on both; h1 does not stop it mid-turn (same pane
 * pid while busy), stops it once idle and records that in the register; h2 then claims and starts it.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { withRegister } from '../../src/register/connect.js';
import { migrate } from '../../src/register/schema.js';
import { startModelServer, type ModelServer } from '../fixtures/model-server.js';
import { uniqueSocket, waitFor } from '../helpers/fleet.js';
import { copyRoster, hostOf, psAllHosts, type Host, type Pane } from '../helpers/hosts.js';
import { describePostgres, useDatabase } from '../helpers/postgres.js';
import { sandboxRequired, sandboxUnavailableReason } from '../sandbox.js';
import { runtimesRequired, runtimesUnavailableReason, startBed, type Bed } from '../runtimes/bed.js';

/** The model server holds the turn this long at most; the test ends it (releaseHolds) once its checks are done. */
const HOLD_MS = 60_000;
const PROMPT = 'fleet-move-hold: think for a while';
// A long lease: h2 must wait for h1's record of the stop, never take the agent over because h1 fell silent.
const REGISTER = 'register: {url_env: FLEET_REGISTER_URL, lease: 60s, takeover_after: 5m}';

interface Sample {
  atMs: number;
  h1: Pane | undefined;
  h2: Pane | undefined;
}

describePostgres('a busy real agent moving from h1 to h2 (claude)', () => {
  const db = useDatabase();
  const beds: { bed: Bed; stop: () => Promise<void> }[] = [];
  const hosts: Host[] = [];
  let server: ModelServer | undefined;
  let workRoot: string | undefined;
  let reason: string | null = null;

  beforeAll(async () => {
    reason = (await sandboxUnavailableReason()) ?? runtimesUnavailableReason(['claude']);
    if (reason !== null) {
      if (sandboxRequired() || runtimesRequired()) throw new Error(`required but unavailable: ${reason}`);
      return;
    }
    await withRegister(db().dsn, migrate);
    server = await startModelServer();
    workRoot = mkdtempSync(join(tmpdir(), 'fleet-move-work-'));
    const socket = uniqueSocket('fleet-move');
    for (const name of ['h1', 'h2']) {
      const made = await startBed(['claude'], {
        server,
        socket,
        workRoot,
        env: { MOSAIC_HOST: name, FLEET_REGISTER_URL: db().dsn },
      });
      beds.push(made);
      hosts.push(hostOf(name, made.bed.sb, socket));
    }
  }, 120_000);
  afterAll(async () => {
    await Promise.all(beds.map((b) => b.stop()));
    await server?.close();
    if (workRoot !== undefined) rmSync(workRoot, { recursive: true, force: true });
  }, 60_000);

  it('never runs on both, is not stopped mid-turn, moves once idle', async (ctx) => {
    if (reason !== null || server === undefined) return ctx.skip();
    const [b1, b2] = beds.map((b) => b.bed);
    const [h1, h2] = hosts;
    if (b1 === undefined || b2 === undefined || h1 === undefined || h2 === undefined)
      throw new Error('no beds');
    const reconcile = async (h: Host) => {
      const r = await h.fleet('reconcile', '--yes');
      expect(r.code, `${h.name}\n${r.stdout}\n${r.stderr}`).toBe(0);
      return r;
    };
    // The same roster on both hosts (each bed also writes its own operator env file and trusts the workdir).
    for (const b of [b1, b2]) await b.setup([{ name: 'cc', runtime: 'claude', host: 'h1' }], REGISTER);
    const roster = readFileSync(join(b1.sb.paths.manifests, 'roster.yaml'), 'utf8');
    expect(readFileSync(join(b2.sb.paths.manifests, 'roster.yaml'), 'utf8')).toBe(roster);
    // h1 claims, then starts; h2 publishes its lease and starts nothing.
    await reconcile(h1);
    await reconcile(h1);
    await reconcile(h2);
    await b1.waitState('cc', 'idle', 90_000);
    expect(await h2.sessions()).toEqual([]);

    // A turn the model server holds open: busy.
    server.on({ match: 'fleet-move-hold', holdMs: HOLD_MS, text: 'done holding' });
    const typedAt = Date.now();
    await b1.type('cc', PROMPT);
    const turn = await server.waitFor((r) => r.text.includes('fleet-move-hold') && r.atMs >= typedAt, 30_000);
    await b1.waitState('cc', 'busy', 20_000);
    const pid = (await h1.panes()).get('cc')?.pid;
    expect(pid).toBeGreaterThan(1);

    // Both tmux servers, every 50 ms, from before the move until it is over.
    const samples: Sample[] = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const [p1, p2] = await Promise.all([h1.panes(), h2.panes()]);
        samples.push({ atMs: Date.now(), h1: p1.get('cc'), h2: p2.get('cc') });
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    try {
      copyRoster(hosts, roster.replace('host: h1', 'host: h2'));
      // While the turn is held: h1 keeps it running and says why; h2 holds its start and says what it waits for.
      const busy = await reconcile(h1);
      expect(busy.stdout).toMatch(/cc: moved to h2: stopped here once it is idle/);
      expect(busy.mutating.filter((c) => c.argv.some((a) => a.includes('mosaic-agent@cc')))).toEqual([]);
      const waiting = await h2.fleet('reconcile', '--dry-run');
      expect(waiting.stdout).toMatch(/cc.*waits for h1 to stop it and record that/);
      await reconcile(h2);
      expect(turn.endedAtMs, 'the turn was still held during these runs').toBeUndefined();
      expect((await h1.panes()).get('cc')?.pid).toBe(pid);
      expect(await h2.sessions()).toEqual([]);
      expect(b1.heartbeat('cc').state).toBe('busy');
      // The register shows where it runs meanwhile: on h1, busy, moving (h2's row says it is not up there yet).
      const view = await psAllHosts(h2);
      expect(view.agents.map((a) => `${a.host}/${a.agent} ${a.state} ${a.flags.join(',')}`)).toEqual([
        'h1/cc busy MOVING',
        'h2/cc down MISSING',
      ]);
      expect(view.agents[0]?.pid).toBe(pid);
      // The turn ends (the model server completes its reply): the agent goes idle by its own hooks.
      server.releaseHolds();

      // Idle by its own hooks: h1's next run stops it (its restart policy) and records that in the register.
      await waitFor('cc idle on h1', () => b1.heartbeat('cc').state === 'idle', 30_000);
      const stop = await reconcile(h1);
      expect(stop.stdout).toMatch(/stopped mosaic-agent@cc\.service/);
      expect(stop.stdout).toMatch(/moved to h2: stopped here while idle/);
      expect((await h1.panes()).get('cc')).toBeUndefined();
      // h2 claims it from h1's record, then starts it (a run each).
      const claim = await h2.fleet('reconcile', '--dry-run');
      expect(claim.stdout).toMatch(/cc.*claims it first: h1 recorded that it stopped it \(epoch 1\)/);
      await waitFor(
        'cc running on h2',
        async () => {
          await reconcile(h2);
          return (await h2.panes()).get('cc')?.dead === false;
        },
        30_000,
      );
    } finally {
      sampling = false;
      await sampler;
    }

    // Never on both; never restarted on h1; gone from h1 only after the held turn ended.
    expect(samples.length).toBeGreaterThan(20);
    const both = samples.filter((s) => s.h1?.dead === false && s.h2?.dead === false);
    expect(both).toEqual([]);
    expect(new Set(samples.flatMap((s) => (s.h1 === undefined ? [] : [s.h1.pid])))).toEqual(new Set([pid]));
    const goneFromH1 = samples.find((s) => s.h1 === undefined);
    expect(goneFromH1).toBeDefined();
    expect(turn.endedAtMs).toBeDefined();
    expect(goneFromH1?.atMs).toBeGreaterThan(turn.endedAtMs ?? Infinity);
    const onH2 = samples.find((s) => s.h2 !== undefined);
    expect(onH2?.atMs).toBeGreaterThan(goneFromH1?.atMs ?? Infinity);

    // The register: h2 holds it from h1's released epoch, and h1's journal has the stop.
    const c = new pg.Client({ connectionString: db().dsn });
    await c.connect();
    try {
      const row = await c.query<{ holder: string; epoch: string; released: boolean }>(
        "SELECT holder, epoch::text AS epoch, released FROM fleet.ownership WHERE agent = 'cc'",
      );
      expect(row.rows).toEqual([{ holder: 'h2', epoch: '2', released: false }]);
      const stops = await c.query<{ n: string }>(
        `SELECT count(*)::text AS n FROM fleet.journal
         WHERE host = 'h1' AND entry->'actions' @> '[{"kind":"stop","target":"mosaic-agent@cc.service"}]'`,
      );
      expect(stops.rows[0]?.n).toBe('1');
    } finally {
      await c.end();
    }
    // And the runtime really runs on h2: its own hooks say it is ready.
    await b2.waitState('cc', 'idle', 60_000);
  }, 150_000);
});
