/**
 * Alerts against the real thing: a real systemd user manager and tmux (the sandbox), the built `fleet` CLI, and
 * a webhook receiver on loopback. An agent whose program exits at once fires `crash-loop` once, not once per
 * respawn; an agent busy while its record does not grow fires `wedged` once, one whose record grows fires
 * nothing; a watcher fires `waiting` within its deadline, a restarted watcher does not fire the open episode
 * again, and the end of the wait sends one `resolved`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { waitFor } from '../helpers/fleet.js';
import { FLEET_BIN, REPO, runFleet, type CliResult } from '../helpers/cli.js';
import { describeSandbox, type Sandbox } from '../sandbox.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Received {
  at: number;
  body: { condition: string; agent: string; resolved: boolean; detail: string };
}

let servers: Server[] = [];
afterEach(() => {
  for (const s of servers) {
    s.closeAllConnections();
    s.close();
  }
  servers = [];
});

async function receiver(): Promise<{ url: string; got: Received[] }> {
  const got: Received[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (b: Buffer) => chunks.push(b));
    req.on('end', () => {
      got.push({
        at: Date.now(),
        body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Received['body'],
      });
      res.writeHead(204).end();
    });
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/alerts`, got };
}

function writeRoster(sb: Sandbox, socket: string, alerts: string, agents: string[]): void {
  const dir = join(sb.paths.mosaicHome, 'fleet');
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, 'roster.yaml'),
    ['version: 1', 'tmux:', `  socket_name: ${socket}`, 'alerts:', alerts, 'agents:', ...agents, ''].join(
      '\n',
    ),
  );
}

function fleet(sb: Sandbox, args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return runFleet({ ...sb.env, ...env }, args, { logDir: sb.root });
}

/** Write an agent's heartbeat as its runtime's hooks would (fresh `ts`, the given state and start). */
function beat(sb: Sandbox, agent: string, state: string, sinceSec: number, extra = ''): void {
  const run = sb.paths.runDir;
  mkdirSync(run, { recursive: true });
  const now = Math.floor(Date.now() / 1000);
  writeFileSync(
    join(run, `.${agent}.tmp`),
    `ts=${now}\nstate=${state}\nsince=${sinceSec}\nevent=test\n${extra}`,
  );
  // Atomic, like agent-state.sh: a reader never sees half a file.
  renameSync(join(run, `.${agent}.tmp`), join(run, `${agent}.hb`));
  // And, like agent-state.sh when the state or its since changed, the news watch mode listens to.
  const previous = lastBeat.get(`${run}/${agent}`);
  if (previous !== `${state} ${sinceSec}`) {
    mkdirSync(join(run, 'news'), { recursive: true });
    writeFileSync(join(run, 'news', agent), `${state}\n`);
  }
  lastBeat.set(`${run}/${agent}`, `${state} ${sinceSec}`);
}
const lastBeat = new Map<string, string>();

function startWatcher(
  sb: Sandbox,
  env: Record<string, string>,
): { child: ChildProcess; output: () => string } {
  let out = '';
  const child = spawn(process.execPath, [FLEET_BIN, 'reconcile', '--watch', '--json', '--interval', '30'], {
    env: { ...sb.env, ...env },
    cwd: REPO,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (out += c.toString()));
  return { child, output: () => out };
}

async function stopWatcher(w: { child: ChildProcess }): Promise<void> {
  if (w.child.exitCode !== null) return;
  const exited = new Promise<void>((resolve) => w.child.once('exit', () => resolve()));
  w.child.kill('SIGTERM');
  await exited;
}

const SLEEPER = (name: string): string => `  - name: ${name}\n    runtime: stub\n    command: "sleep 600"`;

// One sandbox (one Mosaic home, one state file) per case: episodes of one must not meet the rules of another.
describeSandbox('alerts: crash loop', (sandbox) => {
  it('an agent whose program exits at once fires crash-loop once, not once per respawn', async () => {
    const sb = sandbox();
    const hook = await receiver();
    writeRoster(sb, 'crashfleet', '  - when: [crash-loop]\n    send: {webhook: {url_env: ALERT_URL}}', [
      '  - name: crashy\n    runtime: stub\n    command: "exit 3"',
    ]);
    const env = { FLEET_BACKOFF_INITIAL_SECONDS: '1', FLEET_BACKOFF_MAX_SECONDS: '60', ALERT_URL: hook.url };
    let respawns = 0;
    const deadline = Date.now() + 45_000;
    while (Date.now() < deadline && respawns < 4) {
      const r = await fleet(sb, ['reconcile'], env);
      expect(r.code, r.stdout + r.stderr).toBe(0);
      if (/respawned crashy/.test(r.stdout)) respawns++;
      await sleep(200);
    }
    expect(respawns).toBeGreaterThanOrEqual(4);
    expect(hook.got.map((g) => [g.body.condition, g.body.agent, g.body.resolved])).toEqual([
      ['crash-loop', 'crashy', false],
    ]);
    const history = await fleet(sb, ['history', '--json', '-n', '1000']);
    const entries = (JSON.parse(history.stdout) as { entries: { actions: { kind: string }[] }[] }).entries;
    expect(entries.flatMap((e) => e.actions.filter((a) => a.kind.startsWith('alert-')))).toHaveLength(1);
    const list = await fleet(sb, ['alerts', '--json']);
    const open = (JSON.parse(list.stdout) as { alerts: { condition: string; fire: { status: string } }[] })
      .alerts;
    expect(open.map((a) => [a.condition, a.fire.status])).toEqual([['crash-loop', 'delivered']]);
  }, 90_000);
});

describeSandbox('alerts: wedged', (sandbox) => {
  it('busy while its record does not grow fires wedged once; busy while it grows fires nothing', async () => {
    const sb = sandbox();
    const hook = await receiver();
    writeRoster(
      sb,
      'wedgefleet',
      '  - when: [wedged]\n    after: 3s\n    send: {webhook: {url_env: ALERT_URL}}',
      [SLEEPER('stuck'), SLEEPER('working')],
    );
    const env = { ALERT_URL: hook.url };
    const first = await fleet(sb, ['reconcile'], env);
    expect(first.code, first.stdout + first.stderr).toBe(0);
    const records = join(sb.root, 'records');
    mkdirSync(records, { recursive: true });
    const stuck = join(records, 'stuck.jsonl');
    const working = join(records, 'working.jsonl');
    writeFileSync(stuck, '{"turn":1}\n');
    writeFileSync(working, '{"turn":1}\n');
    const busySince = Math.floor(Date.now() / 1000);
    const until = Date.now() + 9_000;
    while (Date.now() < until) {
      appendFileSync(working, `{"progress":${Date.now()}}\n`);
      beat(sb, 'stuck', 'busy', busySince, `transcript=${stuck}\n`);
      beat(sb, 'working', 'busy', busySince, `transcript=${working}\n`);
      const r = await fleet(sb, ['reconcile'], env);
      expect(r.code, r.stdout + r.stderr).toBe(0);
      await sleep(300);
    }
    expect(hook.got.map((g) => [g.body.condition, g.body.agent, g.body.resolved])).toEqual([
      ['wedged', 'stuck', false],
    ]);
    expect(hook.got[0]?.body.detail).toContain(stuck);
    const ps = await fleet(sb, ['ps', '--json'], env);
    const agents = (JSON.parse(ps.stdout) as { agents: { name: string; wedged_seconds: number | null }[] })
      .agents;
    expect(agents.find((a) => a.name === 'working')?.wedged_seconds).toBeNull();
    // ps's own threshold is the rule's 3 s here.
    expect(agents.find((a) => a.name === 'stuck')?.wedged_seconds).toBeGreaterThanOrEqual(3);
  }, 90_000);
});

describeSandbox('alerts: watch mode', (sandbox) => {
  it('watch mode fires waiting within its deadline, a restarted watcher does not fire it again, the end resolves once', async () => {
    const sb = sandbox();
    const hook = await receiver();
    writeRoster(
      sb,
      'waitfleet',
      '  - when: [waiting]\n    after: 3s\n    send: {webhook: {url_env: ALERT_URL}}',
      [SLEEPER('asker')],
    );
    const env = { ALERT_URL: hook.url };
    const first = await fleet(sb, ['reconcile'], env);
    expect(first.code, first.stdout + first.stderr).toBe(0);
    beat(sb, 'asker', 'idle', Math.floor(Date.now() / 1000));
    let w = startWatcher(sb, env);
    try {
      await waitFor('the watcher', () => w.output().includes('"event":"watching"'), 15_000, w.output);
      await sleep(1_000);
      // A heartbeat that keeps being refreshed (as the ticker does) while it waits.
      const askedAt = Date.now();
      const since = Math.floor(askedAt / 1000);
      const ticker = setInterval(() => beat(sb, 'asker', 'waiting', since), 1_000);
      try {
        beat(sb, 'asker', 'waiting', since);
        await waitFor('the waiting alert', () => hook.got.length > 0, 15_000, w.output);
        // after (3 s) from the heartbeat's `since` (whole seconds), plus the watcher's wake-up margin; generous
        // for a loaded machine, and far below the 30 s resync that would otherwise be the only way to notice.
        expect((hook.got[0]?.at ?? 0) - since * 1000).toBeLessThan(3_000 + 5_000);
        await stopWatcher(w);
        w = startWatcher(sb, env);
        await waitFor(
          'the new watcher',
          () => w.output().includes('"event":"applied"') || w.output().includes('"event":"plan"'),
          15_000,
          w.output,
        );
        await sleep(4_000);
        expect(hook.got.map((g) => [g.body.condition, g.body.resolved])).toEqual([['waiting', false]]);
      } finally {
        clearInterval(ticker);
      }
      beat(sb, 'asker', 'busy', Math.floor(Date.now() / 1000));
      await waitFor('the resolved message', () => hook.got.length > 1, 15_000, w.output);
      await sleep(3_000);
      expect(hook.got.map((g) => [g.body.condition, g.body.resolved])).toEqual([
        ['waiting', false],
        ['waiting', true],
      ]);
    } finally {
      await stopWatcher(w);
    }
  }, 120_000);
});

describeSandbox('alerts: a sink that never answers', (sandbox) => {
  it('watch mode heals a killed pane while an alert is still being sent: no cycle waits for a sink', async () => {
    const sb = sandbox();
    // A receiver that takes the request and never answers: each attempt runs into its 5 s timeout.
    const asked: number[] = [];
    const server = createServer((req) => {
      asked.push(Date.now());
      req.resume();
    });
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const env = { ALERT_URL: `http://127.0.0.1:${(server.address() as AddressInfo).port}/alerts` };
    writeRoster(
      sb,
      'mutefleet',
      '  - when: [waiting]\n    after: 1s\n    send: {webhook: {url_env: ALERT_URL}}',
      [SLEEPER('asker'), SLEEPER('worker')],
    );
    const first = await fleet(sb, ['reconcile'], env);
    expect(first.code, first.stdout + first.stderr).toBe(0);
    const since = Math.floor(Date.now() / 1000);
    beat(sb, 'asker', 'waiting', since);
    const ticker = setInterval(() => beat(sb, 'asker', 'waiting', since), 1_000);
    const w = startWatcher(sb, env);
    try {
      await waitFor('the alert being sent', () => asked.length > 0, 20_000, w.output);
      await sb.tmux('mutefleet', 'kill-session', '-t', '=worker');
      await waitFor(
        'worker healed',
        async () =>
          (await sb.tmux('mutefleet', 'has-session', '-t', '=worker').then(
            () => true,
            () => false,
          )) || null,
        20_000,
        w.output,
      );
      // Healed before the delivery's first answer (its 5 s timeout) was even recorded: the heal did not wait.
      expect(w.output()).not.toMatch(/"event":"alert"/);
      await waitFor(
        'the delivery recorded',
        () => /"event":"alert"/.test(w.output()) || null,
        20_000,
        w.output,
      );
      expect(w.output()).toMatch(/"outcome":"retrying"/);
    } finally {
      clearInterval(ticker);
      await stopWatcher(w);
    }
  }, 120_000);
});
