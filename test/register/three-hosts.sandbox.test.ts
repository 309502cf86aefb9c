/**
 * Three hosts simulated on one machine (three sandboxes: each its own systemd user manager, tmux directory, home
 * and host name), one manifest repository (a bare git repository in a temp dir, pushed to by a working clone, that
 * every host follows through a `source:` manifest of its own), one register in a private PostgreSQL, a watch-mode
 * reconciler per host, a short lease. Issue 24's acceptance for shares and for a host's death:
 * - nine agents, three per host, in one roster pushed to the repository: each host's tmux server runs exactly its
 *   three, and `fleet ps --all-hosts` (text and JSON) on every host shows all nine with their host and state, and
 *   each host's lease the commit it converged to, which its journal (`fleet history`) names too;
 * - h3's manager, tmux server and reconciler killed (SIGKILL): once its lease is over `ps --all-hosts` flags its
 *   agents HOST-STALE; an agent moved off h3 by a push is held on h1 (the plan says what it waits for) and started
 *   there only once h3's lease has been over for `takeover_after`.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { withRegister } from '../../src/register/connect.js';
import { migrate } from '../../src/register/schema.js';
import { waitFor } from '../helpers/fleet.js';
import {
  followRepository,
  hostOf,
  psAllHosts,
  publishRoster,
  type Host,
  type Watcher,
} from '../helpers/hosts.js';
import { makeRemote, type Remote } from '../helpers/remote.js';
import { describePostgres, useDatabase } from '../helpers/postgres.js';
import { sandboxRequired, sandboxUnavailableReason, startSandbox } from '../sandbox.js';

const SOCKET = 'three';
const LEASE_S = 4;
const TAKEOVER_S = 6;
/**
 * The watchers' resync, much longer than the lease: watch mode renews the lease at half its length and looks at a
 * held start again when its takeover becomes possible (src/engine/wake.ts), whatever the resync. A push is taken
 * at once by a `fleet reconcile` on the host (the watcher's next cycle follows the checkout it moved), not by
 * waiting for a resync.
 */
const INTERVAL_S = 30;
/** One watch cycle, for this fleet: half the lease. */
const CYCLE_S = LEASE_S / 2;
const NAMES = ['h1', 'h2', 'h3'] as const;
const SHARE: Record<string, string[]> = {
  h1: ['a1', 'a2', 'a3'],
  h2: ['b1', 'b2', 'b3'],
  h3: ['c1', 'c2', 'c3'],
};

/** Nine stub agents, three per host; `c3` on `c3Host`. */
function roster(c3Host: string): string {
  const agents = NAMES.flatMap((h) =>
    (SHARE[h] ?? []).map((a) => `  - {name: ${a}, runtime: stub, host: ${a === 'c3' ? c3Host : h}}`),
  );
  return [
    'version: 1',
    `tmux: {socket_name: ${SOCKET}}`,
    `register: {url_env: FLEET_REGISTER_URL, lease: ${LEASE_S}s, takeover_after: ${TAKEOVER_S}s}`,
    'agents:',
    ...agents,
    '',
  ].join('\n');
}

/** A line of `fleet history --json`: what the run did, and the git source's commit it converged to. */
interface JournalLine {
  source?: { commit?: string };
  actions: { kind: string; target: string; message: string }[];
}

/** The commit of the host's checkout of the git source (`fleet/reconciler/source.json`). */
function checkoutCommit(h: Host): string | undefined {
  return (JSON.parse(readFileSync(join(h.sb.paths.stateDir, 'source.json'), 'utf8')) as { commit?: string })
    .commit;
}

/** The agents these entries started (an agent's start targets its unit, `…@NAME.service`; the holder's has no @). */
function startedIn(entries: readonly JournalLine[]): string[] {
  return entries.flatMap((e) =>
    e.actions.flatMap((a) => {
      const agent = a.kind === 'start' ? /@([^.@]+)\.service$/.exec(a.target)?.[1] : undefined;
      return agent === undefined ? [] : [agent];
    }),
  );
}

describePostgres('three hosts sharing one register', () => {
  const db = useDatabase();
  const hosts: Host[] = [];
  let root = '';
  let remote: Remote;
  /** The commit of the first roster, and of the one that moves c3 to h1. */
  let c1 = '';
  const short = (commit: string) => commit.slice(0, 12);
  const watchers: Record<string, Watcher> = {};
  let reason: string | null = null;
  const host = (name: string): Host => {
    const h = hosts.find((x) => x.name === name);
    if (h === undefined) throw new Error(`no host ${name}`);
    return h;
  };
  const watcherLogs = () =>
    Object.entries(watchers)
      .map(([n, w]) => `--- ${n} ---\n${w.output().slice(-3000)}`)
      .join('\n');

  beforeAll(async () => {
    reason = await sandboxUnavailableReason();
    if (reason !== null) {
      if (sandboxRequired()) throw new Error(`sandbox required but unavailable: ${reason}`);
      return;
    }
    await withRegister(db().dsn, migrate);
    root = mkdtempSync(join(tmpdir(), 'fleet-three-'));
    remote = makeRemote(root);
    for (const name of NAMES) {
      const sb = await startSandbox({
        env: { MOSAIC_HOST: name, FLEET_REGISTER_URL: db().dsn, ...remote.env },
      });
      hosts.push(hostOf(name, sb, SOCKET));
    }
    followRepository(hosts, remote);
  });
  afterAll(async () => {
    // The watchers first (a dead host's is gone already), then the sandboxes: h3's manager was killed, and
    // stop() then only removes its tmux sockets, what is left in its cgroups and its directory.
    await Promise.all(Object.values(watchers).map((w) => w.stop()));
    await Promise.all(hosts.map((h) => h.sb.stop()));
    if (root !== '') rmSync(root, { recursive: true, force: true });
  });

  it('each host runs exactly its three; ps --all-hosts on every host shows all nine', async (ctx) => {
    if (reason !== null) return ctx.skip();
    // Pushed before the watchers start: each fetches at its start.
    c1 = publishRoster(remote, roster('h3'));
    for (const h of hosts) watchers[h.name] = h.watch(INTERVAL_S);
    for (const h of hosts)
      await waitFor(
        `${h.name} running its share`,
        async () => JSON.stringify(await h.sessions()) === JSON.stringify(SHARE[h.name]),
        30_000,
        watcherLogs,
      );
    // Exactly its three on every host's tmux server, checked together once all are up.
    for (const h of hosts) expect(await h.sessions(), h.name).toEqual(SHARE[h.name]);
    const expected = NAMES.flatMap((n) => (SHARE[n] ?? []).map((a) => `${n}/${a} running`));
    for (const h of hosts) {
      // The last publication after the starts may be a cycle behind: wait for it, then check every row.
      const view = await waitFor(
        `ps --all-hosts on ${h.name} showing all nine running`,
        async () => {
          const v = await psAllHosts(h);
          return JSON.stringify(v.agents.map((a) => `${a.host}/${a.agent} ${a.state}`)) ===
            JSON.stringify(expected)
            ? v
            : null;
        },
        15_000,
        watcherLogs,
      );
      expect(view.hosts.map((x) => `${x.host} ${x.stale}`)).toEqual(['h1 false', 'h2 false', 'h3 false']);
      // Every host's lease carries the commit it converged to: the one pushed.
      expect(view.hosts.map((x) => x.commit)).toEqual([c1, c1, c1]);
      for (const a of view.agents) {
        expect(a.flags, `${a.host}/${a.agent}`).toEqual([]);
        expect(a.pid, `${a.host}/${a.agent}`).toBeGreaterThan(1);
      }
      // The pid each host published is the pane pid its own tmux server has.
      const panes = await h.panes();
      for (const a of view.agents.filter((x) => x.host === h.name))
        expect(a.pid).toBe(panes.get(a.agent)?.pid);
      const text = await h.fleet('ps', '--all-hosts');
      expect(text.code, text.stderr).toBe(0);
      const lines = text.stdout.split('\n');
      for (const n of NAMES)
        for (const a of SHARE[n] ?? [])
          expect(lines.find((l) => new RegExp(`^${n}\\s+${a}\\s`).test(l))).toMatch(/\srunning\s.*\sok$/);
      expect(text.stdout).toMatch(/Hosts \(3\):/);
      expect(text.stdout).toContain(`manifests ${short(c1)}`);
    }
    // Each host's journal names the commit: the checkout, then the starts of its share, all from c1.
    const histories = await Promise.all(hosts.map((h) => h.fleet('history', '--json')));
    for (const [i, h] of hosts.entries()) {
      const history = histories[i];
      if (history === undefined) throw new Error(`no history of ${h.name}`);
      expect(history.code, history.stderr).toBe(0);
      const entries = (JSON.parse(history.stdout) as { entries: JournalLine[] }).entries;
      expect(entries.map((e) => e.source?.commit)).toEqual(entries.map(() => c1));
      const messages = entries.flatMap((e) => e.actions.map((a) => a.message));
      expect(messages, h.name).toContain(`manifests checked out main of ${remote.url} at ${short(c1)}`);
      expect(startedIn(entries).sort(), h.name).toEqual(SHARE[h.name]);
    }
  }, 120_000);

  it('h3 dies: its agents turn HOST-STALE after its lease; c3, moved to h1, starts there only after takeover_after', async (ctx) => {
    if (reason !== null) return ctx.skip();
    const h1 = host('h1');
    const h3 = host('h3');
    const tmuxPid = await h3.tmuxServerPid();
    const watcher = watchers.h3;
    expect(tmuxPid).not.toBeNull();
    expect(watcher).toBeDefined();
    expect(h3.sb.managerPid).toBeGreaterThan(1);
    // The host dies at once: its reconciler, its manager and its tmux server, by the pids this test started.
    await watcher?.kill();
    process.kill(h3.sb.managerPid, 'SIGKILL');
    if (tmuxPid === null || tmuxPid <= 1) throw new Error('no tmux server pid on h3'); // never kill(-1)
    process.kill(tmuxPid, 'SIGKILL');
    const killedAt = Date.now();
    await waitFor('h3 tmux server gone', async () => (await h3.tmuxServerPid()) === null, 5_000);

    // c3 is moved to h1 by a push; h1 samples its own tmux server from now on.
    const c2 = publishRoster(remote, roster('h1'), 'move c3 to h1');
    const seen: number[] = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        if ((await h1.sessions()).includes('c3')) seen.push(Date.now());
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    try {
      // The hosts still alive take the push now (what an operator or the timer does; their watchers would only
      // fetch at their next resync, unless it comes first on a slow machine), and their watchers follow the
      // checkout it moved. h1's plan holds the start of c3 and says why: it waits for h3 or for h3's lease to be
      // over for takeover_after, or (on a machine so slow that this much time passed since h3 died) claims it.
      const [on1, on2] = await Promise.all(['h1', 'h2'].map((n) => host(n).fleet('reconcile', '--yes')));
      for (const r of [on1, on2]) expect(r?.code, `${r?.stdout}\n${r?.stderr}`).toBe(0);
      for (const n of ['h1', 'h2']) expect(checkoutCommit(host(n)), n).toBe(c2);
      expect(on1?.stdout).toMatch(
        new RegExp(
          `c3.*(waits for h3 to stop it and record that, or for h3's lease to be over for ${TAKEOVER_S} s|claims it first: h3's lease ran out \\d+ s ago \\(takeover after ${TAKEOVER_S} s\\))`,
        ),
      );
      // h1's watcher follows the checkout that run moved: its next publication (a lease renewal, no fetch) carries
      // c2 too, not the commit the watcher read at its start (which it would converge to until its next resync).
      const tookPush = Date.now();
      const renewed = await waitFor(
        "h1's watcher renewing its lease after the push was taken",
        async () => {
          const me = (await psAllHosts(h1)).hosts.find((x) => x.host === 'h1');
          return me !== undefined && Date.parse(me.valid_until) > tookPush + LEASE_S * 1000 ? me : null;
        },
        (CYCLE_S + 5) * 1000,
        watcherLogs,
      );
      expect(renewed.commit).toBe(c2);

      // Within its lease plus one cycle: the lease h3 published last ends at most LEASE_S after it died, and any
      // read after that end flags its agents.
      const stale = await waitFor(
        'h3 HOST-STALE in ps --all-hosts on h1',
        async () => {
          const v = await psAllHosts(h1);
          return v.hosts.find((x) => x.host === 'h3')?.stale === true ? v : null;
        },
        (LEASE_S + CYCLE_S) * 1000 + 10_000,
        watcherLogs,
      );
      const h3Until = Date.parse(stale.hosts.find((x) => x.host === 'h3')?.valid_until ?? '');
      expect(h3Until).toBeLessThanOrEqual(killedAt + LEASE_S * 1000);
      expect(stale.hosts.filter((x) => x.stale).map((x) => x.host)).toEqual(['h3']);
      const flagged = stale.agents.filter((a) => a.flags.includes('HOST-STALE')).map((a) => a.agent);
      expect(flagged).toEqual(['c1', 'c2', 'c3']);
      const text = await h1.fleet('ps', '--all-hosts');
      for (const a of ['c1', 'c2', 'c3'])
        expect(text.stdout).toMatch(new RegExp(`^h3\\s+${a}\\s.*\\sHOST-STALE$`, 'm'));
      expect(text.stdout).toMatch(/^ {2}h3: HOST-STALE, lease ran out/m);

      // Taken over, and started, only once h3's lease has been over for takeover_after.
      await waitFor(
        'c3 running on h1',
        async () => {
          const up = (await h1.panes()).get('c3')?.dead === false;
          // This probe is a sample too: it may see c3 before the sampler's next turn does.
          if (up) seen.push(Date.now());
          return up;
        },
        h3Until - Date.now() + TAKEOVER_S * 1000 + 20_000,
        watcherLogs,
      );
      expect(seen.length).toBeGreaterThan(0);
      expect(Math.min(...seen)).toBeGreaterThanOrEqual(h3Until + TAKEOVER_S * 1000);
      // The register's own record of the takeover: h1 holds it from h3's epoch, claimed after takeover_after.
      const c = new pg.Client({ connectionString: db().dsn });
      await c.connect();
      try {
        const row = await c.query<{ holder: string; epoch: string; released: boolean; after_ms: number }>(
          `SELECT o.holder, o.epoch::text AS epoch, o.released,
             extract(epoch FROM o.changed_at - h.valid_until) * 1000 AS after_ms
           FROM fleet.ownership o, fleet.hosts h WHERE o.agent = 'c3' AND h.host = 'h3'`,
        );
        expect(row.rows[0]).toMatchObject({ holder: 'h1', epoch: '2', released: false });
        expect(Number(row.rows[0]?.after_ms)).toBeGreaterThanOrEqual(TAKEOVER_S * 1000);
      } finally {
        await c.end();
      }
      // The other agents of h3 stay h3's: nobody takes over what the manifest still puts there.
      expect((await h1.sessions()).filter((s) => s.startsWith('c'))).toEqual(['c3']);
      expect(await host('h2').sessions()).toEqual(SHARE.h2);
      const after = await waitFor(
        'h1/c3 running in ps --all-hosts',
        async () => {
          const v = await psAllHosts(h1);
          return v.agents.some((a) => a.host === 'h1' && a.agent === 'c3' && a.state === 'running')
            ? v
            : null;
        },
        10_000,
      );
      // Still all nine, each where it runs (h3's rows are what it said last: stale), and each lease with its
      // commit: h1 and h2 took the push, h3 died at the first one.
      const commitName = (c: string | null) => (c === c1 ? 'c1' : c === c2 ? 'c2' : String(c));
      expect(after.hosts.map((x) => `${x.host} ${commitName(x.commit)}`)).toEqual([
        'h1 c2',
        'h2 c2',
        'h3 c1',
      ]);
      const live = after.agents.filter((a) => !a.flags.includes('HOST-STALE'));
      expect(live.map((a) => `${a.host}/${a.agent} ${a.state}`).sort()).toEqual([
        ...['a1', 'a2', 'a3', 'c3'].map((a) => `h1/${a} running`),
        ...(SHARE.h2 ?? []).map((a) => `h2/${a} running`),
      ]);
      expect([...new Set(after.agents.map((a) => a.agent))].sort()).toEqual(
        NAMES.flatMap((n) => SHARE[n] ?? []),
      );
      for (const a of after.agents.filter((x) => x.host === 'h3'))
        expect(a.flags, `h3/${a.agent}`).toContain('HOST-STALE');
      // h1's journal names the commit it converged to: the move of its checkout, and the start of c3 from c2.
      const history = await h1.fleet('history', '--json');
      const entries = (JSON.parse(history.stdout) as { entries: JournalLine[] }).entries;
      expect(entries.flatMap((e) => e.actions.map((a) => a.message))).toContain(
        `manifests fast-forwarded main to ${short(c2)} (from ${short(c1)})`,
      );
      const startedC3 = entries.filter((e) => startedIn([e]).includes('c3'));
      expect(startedC3.map((e) => e.source?.commit)).toEqual([c2]);
      // And its text: the newest entry's commit.
      const historyText = await h1.fleet('history', '-n', '1');
      expect(historyText.stdout).toMatch(new RegExp(`^\\S+\\s+OK\\s.*  manifests ${short(c2)}$`, 'm'));
    } finally {
      sampling = false;
      await sampler;
    }
  }, 90_000);
});
