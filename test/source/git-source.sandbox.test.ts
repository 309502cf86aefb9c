/**
 * The git source on two hosts (docs/hosts.md, "The git source"): two sandboxes, each its own systemd user
 * manager, tmux directory, home and host name (MOSAIC_HOST h1 / h2), both following one repository (a bare git
 * repository in a temp dir, pushed to by a working clone) through a `source:` manifest of their own. `fleet
 * reconcile` is the timer's run. A pushed change converges on the host it names only; a dirty checkout, an
 * unreachable remote and a force-pushed history are each refused with one line and the last good state kept,
 * while the host still heals a killed pane; the journal carries the commit converged. Watch mode fetches at each
 * resync; `fleet plan --out` / `fleet apply` apply the commit the plan was made from.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { FLEET_BIN, REPO, runFleet, type CliResult } from '../helpers/cli.js';
import { panesOf, uniqueSocket, waitFor } from '../helpers/fleet.js';
import { describeSandbox, startSandbox, type Sandbox } from '../sandbox.js';
import { git } from '../workspaces/git-repo.js';
import { makeRemote, roster, type Remote } from '../helpers/remote.js';

describeSandbox('the git source on two hosts', () => {
  const socket = uniqueSocket('fleet-gitsrc');
  const hosts: Record<string, Sandbox> = {};
  let root: string;
  let remote: Remote;

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'fleet-gitsrc-'));
    remote = makeRemote(root);
    for (const name of ['h1', 'h2']) {
      const sb = await startSandbox({ env: { MOSAIC_HOST: name, ...remote.env } });
      hosts[name] = sb;
      mkdirSync(sb.paths.manifests, { recursive: true });
      writeFileSync(
        join(sb.paths.manifests, 'source.yaml'),
        `version: 1\nsource: {git: "${remote.url}", ref: main}\n`,
      );
    }
  });
  afterAll(async () => {
    await Promise.all(Object.values(hosts).map((sb) => sb.stop()));
    rmSync(root, { recursive: true, force: true });
  });

  const host = (name: string): Sandbox => {
    const sb = hosts[name];
    if (sb === undefined) throw new Error(`no sandbox ${name}`);
    return sb;
  };
  const reconcile = async (name: string): Promise<CliResult> => {
    const r = await runFleet(host(name).env, ['reconcile', '--yes'], { logDir: host(name).root });
    expect(r.code, `${name}: ${r.stdout}\n${r.stderr}`).toBe(0);
    return r;
  };
  /** Each running session of the host's socket (the holder aside) and its pane's pid. */
  const panes = async (name: string): Promise<Record<string, number>> => {
    const out: Record<string, number> = {};
    for (const [session, p] of await panesOf(host(name), socket))
      if (session !== '_holder' && !p.dead) out[session] = p.pid;
    return out;
  };
  const lastJournalCommit = (name: string): string | undefined => {
    const lines = readFileSync(join(host(name).paths.stateDir, 'journal.jsonl'), 'utf8')
      .trim()
      .split('\n');
    return (JSON.parse(lines.at(-1) ?? '{}') as { source?: { commit?: string } }).source?.commit;
  };
  /** The refusals and other lines about the git source a run printed on stderr. */
  const sourceLines = (r: CliResult): string[] =>
    r.stderr.split('\n').filter((l) => l.startsWith('fleet: git source:'));
  const checkout = (name: string): string => join(host(name).paths.stateDir, 'source');

  let c2 = '';

  it('each host converges its share of the commit; a pushed change converges on the host it names only', async () => {
    const c1 = remote.push({ 'roster.yaml': roster(['a1@h1', 'b1@h2'], socket) });
    for (const name of ['h1', 'h2']) {
      const r = await reconcile(name);
      expect(r.stdout).toContain(`git source: checked out main of ${remote.url} at ${c1.slice(0, 12)}`);
      expect(lastJournalCommit(name)).toBe(c1);
    }
    const h1Before = await panes('h1');
    expect(Object.keys(h1Before)).toEqual(['a1']);
    expect(Object.keys(await panes('h2'))).toEqual(['b1']);

    c2 = remote.push({ 'roster.yaml': roster(['a1@h1', 'b1@h2', 'b2@h2'], socket) });
    const on2 = await reconcile('h2');
    expect(on2.stdout).toContain(`fast-forwarded main to ${c2.slice(0, 12)} (from ${c1.slice(0, 12)})`);
    expect(Object.keys(await panes('h2')).sort()).toEqual(['b1', 'b2']);
    const on1 = await reconcile('h1');
    expect(on1.stdout).toContain(`fast-forwarded main to ${c2.slice(0, 12)}`);
    // h1 moved to the new commit and did nothing else: no unit or session of its own touched.
    expect(on1.mutating.filter((c) => c.argv[0] !== 'git')).toEqual([]);
    expect(await panes('h1')).toEqual(h1Before);
    for (const name of ['h1', 'h2']) expect(lastJournalCommit(name)).toBe(c2);
    const history = await runFleet(host('h2').env, ['history', '-n', '2'], { logDir: host('h2').root });
    expect(history.stdout).toContain(`manifests ${c2.slice(0, 12)}`);
  });

  it('a dirty checkout and an unreachable remote are refused with one line; a killed pane is still healed', async () => {
    const c3 = remote.push({ 'roster.yaml': roster(['a1@h1', 'b1@h2', 'b2@h2', 'b3@h2'], socket) });
    writeFileSync(join(checkout('h2'), 'roster.yaml'), roster(['b1@h2', 'handmade@h2'], socket));
    const killed = (await panes('h2')).b1;
    await host('h2').run(['tmux', '-L', socket, 'kill-session', '-t', '=b1']);
    const dirty = await reconcile('h2');
    expect(sourceLines(dirty)).toEqual([
      expect.stringMatching(/has local changes \(M roster\.yaml\): refused/),
    ]);
    let now = await panes('h2');
    expect(Object.keys(now).sort()).toEqual(['b1', 'b2']);
    expect(now.b1).not.toBe(killed);
    // Said once.
    expect(sourceLines(await reconcile('h2'))).toEqual([]);
    git(remote.env, checkout('h2'), 'checkout', '--', 'roster.yaml');

    remote.unreachable(true);
    try {
      await host('h2').run(['tmux', '-L', socket, 'kill-session', '-t', '=b2']);
      const down = await reconcile('h2');
      expect(sourceLines(down)).toEqual([
        expect.stringMatching(/^fleet: git source: cannot fetch file:\/\/.*; keeping /),
      ]);
      now = await panes('h2');
      expect(Object.keys(now).sort()).toEqual(['b1', 'b2']);
      expect(lastJournalCommit('h2')).toBe(c2);
    } finally {
      remote.unreachable(false);
    }
    const back = await reconcile('h2');
    expect(sourceLines(back)).toEqual([expect.stringMatching(/nothing refused any more/)]);
    expect(back.stdout).toContain(`fast-forwarded main to ${c3.slice(0, 12)}`);
    expect(Object.keys(await panes('h2')).sort()).toEqual(['b1', 'b2', 'b3']);
  });

  it('a force-pushed history is refused with one line and the last good state kept', async () => {
    const before = await panes('h2');
    const good = git(remote.env, checkout('h2'), 'rev-parse', 'HEAD').trim();
    const rewritten = remote.forcePush({ 'roster.yaml': roster(['a1@h1', 'evil@h2'], socket) });
    const refused = await reconcile('h2');
    expect(sourceLines(refused)).toEqual([
      expect.stringMatching(
        new RegExp(
          `is at ${rewritten.slice(0, 12)}, which does not contain ${good.slice(0, 12)} .*refused; keeping ${good.slice(0, 12)}$`,
        ),
      ),
    ]);
    // Agents untouched: the same panes, nothing started or stopped.
    expect(await panes('h2')).toEqual(before);
    expect(refused.mutating.filter((c) => c.argv[0] !== 'git')).toEqual([]);
    expect(git(remote.env, checkout('h2'), 'rev-parse', 'HEAD').trim()).toBe(good);
    // Said once; the dry run says it every time, and plans from the last good commit.
    expect(sourceLines(await reconcile('h2'))).toEqual([]);
    const dry = await runFleet(host('h2').env, ['reconcile', '--dry-run', '--detailed-exitcode', '--json'], {
      logDir: host('h2').root,
    });
    expect(dry.code, dry.stdout + dry.stderr).toBe(0);
    expect(sourceLines(dry)).toHaveLength(1);
    expect((JSON.parse(dry.stdout) as { source?: unknown }).source).toEqual({
      url: remote.url,
      ref: 'main',
      commit: good,
    });
  });

  it('watch mode fetches at each resync: a push naming the host converges without a reconcile by hand', async () => {
    // h1 is at c2; the rewritten branch is a fast-forward of c2 (it replaced c3, which h1 never took).
    const child = spawn(process.execPath, [FLEET_BIN, 'reconcile', '--watch', '--interval', '2', '--json'], {
      env: host('h1').env,
      cwd: REPO,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    try {
      await waitFor(
        'the first fetch',
        () => out.includes('"event":"source-advanced"'),
        30_000,
        () => out,
      );
      const h2Before = await panes('h2');
      const pushed = remote.push({ 'roster.yaml': roster(['a1@h1', 'a2@h1', 'evil@h2'], socket) });
      await waitFor(
        'a2 started on h1',
        async () => (await panes('h1')).a2 !== undefined,
        30_000,
        () => out,
      );
      expect(out).toContain(`"commit":"${pushed}"`);
      expect(await panes('h2')).toEqual(h2Before);
    } finally {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        // It finishes the cycle in flight first; one that does not end is killed, and the output tells why.
        const late = setTimeout(() => child.kill('SIGKILL'), 15_000);
        await exited;
        clearTimeout(late);
      }
    }
    expect(lastJournalCommit('h1')).toBe(git(remote.env, checkout('h1'), 'rev-parse', 'HEAD').trim());
    // A watcher's start (its event clients, its first cycles) is slow on a loaded machine: room for it, not a sleep.
  }, 100_000);

  it('fleet plan --out saves the fetched commit; fleet apply applies exactly that plan and journals the commit', async () => {
    const before = git(remote.env, checkout('h1'), 'rev-parse', 'HEAD').trim();
    const next = remote.push({ 'roster.yaml': roster(['a1@h1', 'a2@h1', 'a3@h1', 'evil@h2'], socket) });
    const file = join(host('h1').root, 'h1.plan');
    const planned = await runFleet(host('h1').env, ['plan', '--out', file], { logDir: host('h1').root });
    expect(planned.code, planned.stdout + planned.stderr).toBe(0);
    expect(planned.stdout).toMatch(/a3/);
    // A dry run moves nothing.
    expect(git(remote.env, checkout('h1'), 'rev-parse', 'HEAD').trim()).toBe(before);
    const applied = await runFleet(host('h1').env, ['apply', file], { logDir: host('h1').root });
    expect(applied.code, applied.stdout + applied.stderr).toBe(0);
    expect((await panes('h1')).a3).toBeDefined();
    expect(lastJournalCommit('h1')).toBe(next);
    // The next reconcile moves the checkout to it, with nothing left to do.
    const r = await reconcile('h1');
    expect(r.stdout).toContain(`fast-forwarded main to ${next.slice(0, 12)}`);
    expect(r.mutating.filter((c) => c.argv[0] !== 'git')).toEqual([]);
  });
});
