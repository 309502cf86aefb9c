/**
 * Convergence without anybody running `fleet reconcile` by hand: watch mode, the reconcile timer the reconciler
 * installs itself, crash-loop back-off, and the lock that keeps concurrent reconcilers from interleaving.
 * Real systemd user manager + real tmux (the sandbox).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { panesOf, waitFor } from '../helpers/fleet.js';
import { describeSandbox, type Sandbox } from '../sandbox.js';
import { FLEET_BIN, REPO, runFleet, type CliResult } from '../helpers/cli.js';
import { acquireLock } from '../../src/apply/lock.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function roster(socket: string, agents: string[], extra = ''): string {
  return [
    'version: 1',
    'tmux:',
    `  socket_name: ${socket}`,
    extra,
    'agents:',
    ...agents.map((a) => (a.includes('\n') ? a : `  - name: ${a}\n    runtime: stub\n    model_hint: m1`)),
    '',
  ].join('\n');
}

function writeRoster(sb: Sandbox, text: string): void {
  const dir = join(sb.paths.mosaicHome, 'fleet');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'roster.yaml'), text);
}

function fleet(sb: Sandbox, args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return runFleet({ ...sb.env, ...env }, args, { logDir: sb.root });
}

const sessions = panesOf;

interface Journal {
  entries: {
    started_at: string;
    finished_at: string;
    command: string;
    actions: { kind: string; message: string }[];
    ran_by?: { kind: string; unit?: string | null };
  }[];
}

async function journal(sb: Sandbox): Promise<Journal> {
  const r = await fleet(sb, ['history', '--json', '-n', '1000']);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as Journal;
}

function startWatcher(sb: Sandbox, args: string[] = []): { child: ChildProcess; output: () => string } {
  let out = '';
  const child = spawn(process.execPath, [FLEET_BIN, 'reconcile', '--watch', '--json', ...args], {
    env: sb.env,
    cwd: REPO,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (out += c.toString()));
  return { child, output: () => out };
}

/** The watcher's exit code after SIGTERM, or the signal that killed it. */
async function stopWatcher(w: { child: ChildProcess }): Promise<number | string | null> {
  if (w.child.exitCode !== null) return w.child.exitCode;
  const exited = new Promise<number | string | null>((resolve) =>
    w.child.once('exit', (code, signal) => resolve(code ?? signal)),
  );
  w.child.kill('SIGTERM');
  return exited;
}

describeSandbox('watch mode', (sandbox) => {
  it('adds an agent on save, keeps the fleet through an invalid edit, converges after the fix, exits 0 on SIGTERM', async () => {
    const sb = sandbox();
    const socket = 'watchfleet';
    writeRoster(sb, roster(socket, ['w1']));
    const w = startWatcher(sb, ['--interval', '2']);
    try {
      await waitFor(
        'w1 running',
        async () => ((await sessions(sb, socket)).get('w1')?.dead === false ? true : null),
        30_000,
        w.output,
      );

      writeRoster(sb, roster(socket, ['w1', 'w2']));
      await waitFor(
        'w2 running after the save',
        async () => ((await sessions(sb, socket)).get('w2')?.dead === false ? true : null),
        30_000,
        w.output,
      );

      // A half-saved file: reported with its line, nothing is torn down.
      writeFileSync(
        join(sb.paths.mosaicHome, 'fleet', 'roster.yaml'),
        'version: 1\nagents:\n  - name: [w1\n',
      );
      await waitFor(
        'the invalid manifest reported',
        () => Promise.resolve(w.output().includes('"event":"manifest-invalid"') ? true : null),
        15_000,
        w.output,
      );
      expect(w.output()).toMatch(/roster\.yaml:\d+:\d+: /);
      const before = await sessions(sb, socket);
      await sleep(4_500); // two resyncs with the last good desired state
      const after = await sessions(sb, socket);
      expect(after.get('w1')).toEqual(before.get('w1'));
      expect(after.get('w2')).toEqual(before.get('w2'));
      expect(w.output()).not.toMatch(/"kind":"(stop|disable|kill-session|archive-file)"/);

      writeRoster(sb, roster(socket, ['w1', 'w2', 'w3']));
      await waitFor(
        'w3 running after the fix',
        async () => ((await sessions(sb, socket)).get('w3')?.dead === false ? true : null),
        30_000,
        w.output,
      );
    } finally {
      const code = await stopWatcher(w);
      expect(code, w.output()).toBe(0);
    }
    expect(w.output()).toContain('"event":"stopped"');
  });

  it('never interleaves with a manual reconcile (one lock per home)', async () => {
    const sb = sandbox();
    const socket = 'watchfleet';
    const w = startWatcher(sb, ['--interval', '1']);
    try {
      const manual = await Promise.all([1, 2, 3].map(() => fleet(sb, ['reconcile'])));
      for (const m of manual) {
        // Either it ran under the lock or it waited and named the holder; never a half-applied mix.
        if (m.code !== 0) expect(m.stderr).toMatch(/another reconciler holds the lock/);
      }
      await sleep(1_500);
    } finally {
      expect(await stopWatcher(w), w.output()).toBe(0);
    }
    // The watcher really ran cycles alongside the manual runs.
    expect(w.output()).toContain('"event":"watching"');
    expect(w.output().match(/"event":"plan"/g)?.length ?? 0).toBeGreaterThanOrEqual(2);
    const spans = (await journal(sb)).entries
      .map((e) => [Date.parse(e.started_at), Date.parse(e.finished_at)] as const)
      .sort((a, b) => a[0] - b[0]);
    for (let i = 1; i < spans.length; i++) {
      expect(spans[i]?.[0] ?? 0).toBeGreaterThanOrEqual(spans[i - 1]?.[1] ?? 0);
    }
    expect((await sessions(sb, socket)).size).toBeGreaterThan(0);
  });

  it("heals a killed pane program, a killed session and a stopped unit from tmux's and systemd's own events, not its resync; foreign sessions and global hooks untouched", async () => {
    const sb = sandbox();
    const socket = 'evfleet';
    writeRoster(sb, roster(socket, ['e1', 'e2']));
    // A resync an hour away: only an event can bring an agent back within the test.
    const w = startWatcher(sb, ['--interval', '3600']);
    const running = (name: string, not = 0) =>
      waitFor(
        `${name} running`,
        async () => {
          const s = (await sessions(sb, socket)).get(name);
          return s && !s.dead && s.pid !== not ? s.pid : null;
        },
        30_000,
        w.output,
      ).catch(async (error: unknown) => {
        // What tmux and systemd say now, to tell a missed event from an agent that never came up.
        const panes = await sb.run(
          ['tmux', '-L', socket, 'list-panes', '-a', '-F', '#{session_name} #{pane_pid} dead=#{pane_dead}'],
          { reject: false },
        );
        const units = await sb.run(['systemctl', '--user', 'list-units', '--all', 'mosaic-*', '--no-pager'], {
          reject: false,
        });
        const journal = await sb.run(['journalctl', '--user', '-n', '40', '--no-pager'], { reject: false });
        throw new Error(
          `${(error as Error).message}\ntmux (exit ${panes.exitCode}): ${panes.stdout}${panes.stderr}\n` +
            `units: ${units.stdout}\njournal: ${journal.stdout}${journal.stderr}`,
        );
      });
    try {
      await running('e1');
      await running('e2');
      // Someone else's session on the same server: no hook of ours may land on it.
      await sb.run(['tmux', '-L', socket, 'new-session', '-d', '-s', 'theirs', 'sleep 600']);
      const hooks = async (args: string[]) =>
        (await sb.run(['tmux', '-L', socket, 'show-hooks', ...args], { reject: false })).stdout;
      // The watcher hooks each of its sessions as it sees them appear.
      await waitFor(
        'the pane-died hooks on e1 and e2',
        async () =>
          (await hooks(['-t', '=e1:', 'pane-died'])).includes('wait-for -S mosaic-fleet-pane-died') &&
          (await hooks(['-t', '=e2:', 'pane-died'])).includes('wait-for -S mosaic-fleet-pane-died')
            ? true
            : null,
        15_000,
        w.output,
      );

      const pid1 = (await sessions(sb, socket)).get('e1')?.pid ?? 0;
      expect(pid1).toBeGreaterThan(1); // never kill(0)
      process.kill(pid1, 'SIGKILL');
      await running('e1', pid1);
      // Through the hook, or (tmux now and then skips a hook) the dead-panes subscription.
      expect(w.output()).toMatch(/"why":"tmux-(pane-died|dead-pane-seen)"/);

      const pid2 = (await sessions(sb, socket)).get('e2')?.pid ?? 0;
      await sb.run(['tmux', '-L', socket, 'kill-session', '-t', '=e2']);
      await running('e2', pid2);
      expect(w.output()).toContain('"why":"tmux-session-closed"');

      // tmux now and then skips a pane-died hook: the dead-panes subscription sees the death anyway. Simulated by
      // taking the hook off e1 (its marker says it was set, so the watcher does not set it again).
      await waitFor(
        "e1's hook back",
        async () =>
          (await hooks(['-t', '=e1:', 'pane-died'])).includes('mosaic-fleet-pane-died') ? true : null,
        15_000,
        w.output,
      );
      await sb.run(['tmux', '-L', socket, 'set-hook', '-u', '-t', '=e1:', 'pane-died']);
      const pid3 = (await sessions(sb, socket)).get('e1')?.pid ?? 0;
      expect(pid3).toBeGreaterThan(1);
      process.kill(pid3, 'SIGKILL');
      await running('e1', pid3);
      expect(w.output()).toContain('"why":"tmux-dead-pane-seen"');

      // Only systemd can tell this one: the holder unit stopped (KillMode=process keeps its sessions).
      await sb.run(['systemctl', '--user', 'stop', 'mosaic-tmux-holder.service']);
      await waitFor(
        'the holder unit active again',
        async () => {
          const r = await sb.run(['systemctl', '--user', 'is-active', 'mosaic-tmux-holder.service'], {
            reject: false,
          });
          return r.stdout.trim() === 'active' ? true : null;
        },
        30_000,
        w.output,
      );
      expect(w.output()).toMatch(
        /"why":"unit-changed","unit":"mosaic-tmux-holder.service","state":"inactive"/,
      );

      expect(await hooks(['-t', '=e1:', 'pane-died'])).toContain('wait-for -S mosaic-fleet-pane-died');
      expect(await hooks(['-t', '=theirs:', 'pane-died'])).not.toContain('mosaic-fleet');
      expect(await hooks(['-g', 'pane-died'])).not.toContain('mosaic-fleet');
      expect((await sessions(sb, socket)).get('theirs')?.dead).toBe(false);
    } finally {
      expect(await stopWatcher(w), w.output()).toBe(0);
    }
    // The resync never ran: every cycle after the first came from an event.
    expect(w.output()).not.toContain('"trigger":"resync"');
  });

  it('an agent whose restart waits for it to go idle is restarted when its heartbeat says idle, not at the resync; other beats wake nothing', async () => {
    const sb = sandbox();
    const socket = 'idlefleet';
    const work = join(sb.root, 'work-h1');
    mkdirSync(work, { recursive: true });
    const agent = (seconds: string) =>
      `  - name: h1\n    runtime: claude\n    command: sleep ${seconds}\n    model_hint: m1\n    working_directory: ${work}`;
    const policy = 'reconcile:\n  restart: {policy: when-idle, settle_seconds: 1}';
    const busySince = Math.floor(Date.now() / 1000);
    // What agent-state.sh writes: `ts` refreshed by the ticker, `since` kept while the state stays.
    const hb = (state: string, since = Math.floor(Date.now() / 1000)) => {
      mkdirSync(sb.paths.runDir, { recursive: true });
      // Whole, as agent-state.sh writes it: a temp file renamed over the heartbeat.
      const tmp = join(sb.paths.runDir, '.h1.hb.test');
      writeFileSync(tmp, `ts=${Math.floor(Date.now() / 1000)}\nstate=${state}\nsince=${since}\nevent=test\n`);
      renameSync(tmp, join(sb.paths.runDir, 'h1.hb'));
      // What agent-state.sh adds when the state or its since changed (the busy beat below changes neither, but
      // says so anyway: the watcher still reads the heartbeat and finds no news).
      mkdirSync(join(sb.paths.runDir, 'news'), { recursive: true });
      writeFileSync(join(sb.paths.runDir, 'news', 'h1'), `${state}\n`);
    };
    writeRoster(sb, roster(socket, [agent('600')], policy));
    // The operator's own line: `sleep` does not quit on claude's exit keys, so do not wait 15 s for it to.
    mkdirSync(sb.paths.agentsDir, { recursive: true });
    writeFileSync(join(sb.paths.agentsDir, 'h1.env'), 'MOSAIC_STOP_GRACE_SECONDS=1\n', { mode: 0o600 });
    expect((await fleet(sb, ['reconcile'])).code).toBe(0);
    const pid0 = (await sessions(sb, socket)).get('h1')?.pid ?? 0;
    expect(pid0).toBeGreaterThan(1);
    hb('busy', busySince);
    const w = startWatcher(sb, ['--interval', '3600']);
    try {
      await waitFor(
        'the first cycle',
        () => Promise.resolve(w.output().includes('"event":"plan"') ? true : null),
        30_000,
        w.output,
      );
      writeRoster(sb, roster(socket, [agent('601')], policy));
      await waitFor(
        'the restart deferred while busy',
        () => Promise.resolve(/"event":"restart-deferred","agent":"h1"/.test(w.output()) ? true : null),
        30_000,
        w.output,
      );
      // Still busy: a beat is news only as far as it can change the decision, and this one cannot restart it.
      hb('busy', busySince);
      await sleep(1_500);
      expect((await sessions(sb, socket)).get('h1')?.pid).toBe(pid0);
      hb('idle');
      await waitFor(
        'h1 restarted once idle for the settle period',
        async () => {
          const s = (await sessions(sb, socket)).get('h1');
          return s && !s.dead && s.pid !== pid0 ? true : null;
        },
        45_000,
        w.output,
      );
      expect(w.output()).toContain('"why":"heartbeat","agent":"h1"');
      // The busy beat (only `ts` and the same state) woke nothing: one heartbeat event, the idle one.
      expect(w.output().match(/"why":"heartbeat"/g)).toHaveLength(1);
    } finally {
      expect(await stopWatcher(w), w.output()).toBe(0);
    }
    expect(w.output()).not.toContain('"trigger":"resync"');
  });

  it('connects its tmux event client only while it holds the fleet lock (tmux crashes when a session comes or goes while a control client identifies itself)', async () => {
    const sb = sandbox();
    const socket = 'lockfleet';
    const TMUX_IN = `"event":"tmux-events","socket":"${socket}","status":"connected"`;
    writeRoster(sb, roster(socket, ['k1']));
    expect((await fleet(sb, ['reconcile'])).code).toBe(0);
    const clients = async () =>
      (
        await sb.run(['tmux', '-L', socket, 'list-clients', '-F', '#{client_control_mode}'], {
          reject: false,
        })
      ).stdout
        .split('\n')
        .filter((l) => l === '1').length;
    // Someone else (a manual run, `fleet restart`) holds the lock and may be making sessions right now.
    const held = await acquireLock(sb.paths.stateDir, 'test');
    const w = startWatcher(sb, ['--interval', '3600']);
    try {
      await waitFor(
        'the watcher waiting for the lock',
        () => Promise.resolve(w.output().includes('"event":"watching"') ? true : null),
        15_000,
        w.output,
      );
      await sleep(2_500); // the old watcher connected at once and retried every second
      expect(await clients(), w.output()).toBe(0);
      // Every session change meanwhile is harmless: no client of ours is between connecting and connected.
      for (let i = 0; i < 5; i++) {
        await sb.run(['tmux', '-L', socket, 'new-session', '-d', '-s', `churn${i}`, 'sleep 60']);
        await sb.run(['tmux', '-L', socket, 'kill-session', '-t', `=churn${i}`]);
      }
      await held.release();
      await waitFor(
        'the control client in, after the cycle',
        async () => ((await clients()) === 1 && w.output().includes(TMUX_IN) ? true : null),
        30_000,
        w.output,
      );
      const log = w.output();
      expect(log.indexOf(TMUX_IN)).toBeGreaterThan(log.indexOf('"event":"plan"'));
    } finally {
      await held.release();
      expect(await stopWatcher(w), w.output()).toBe(0);
    }
  });
});

describeSandbox('timer-driven convergence', (sandbox) => {
  it('installs the reconcile timer with a plain `fleet reconcile`; the timer heals a killed pane', async () => {
    const sb = sandbox();
    const socket = 'timerfleet';
    writeRoster(sb, roster(socket, ['t1'], 'reconcile:\n  mode: timer\n  interval_seconds: 10'));
    const first = await fleet(sb, ['reconcile']);
    expect(first.code, first.stdout + first.stderr).toBe(0);
    expect(first.stdout).toMatch(/create .*mosaic-fleet-reconcile\.timer/);
    const timer = await sb.run(['systemctl', '--user', 'is-active', 'mosaic-fleet-reconcile.timer'], {
      reject: false,
    });
    expect(timer.stdout.trim()).toBe('active');
    const enabled = await sb.run(['systemctl', '--user', 'is-enabled', 'mosaic-fleet-reconcile.timer'], {
      reject: false,
    });
    expect(enabled.stdout.trim()).toBe('enabled');
    expect((await fleet(sb, ['reconcile', '--dry-run', '--detailed-exitcode'])).code).toBe(0);

    const pid = (await sessions(sb, socket)).get('t1')?.pid ?? 0;
    expect(pid).toBeGreaterThan(1); // never kill(0)
    process.kill(pid, 'SIGKILL');
    await waitFor(
      'the timer to respawn t1',
      async () => {
        const s = (await sessions(sb, socket)).get('t1');
        return s && !s.dead && s.pid !== pid ? true : null;
      },
      60_000,
    );
    const byTimer = (await journal(sb)).entries.filter((e) => e.actions.some((a) => a.kind === 'respawn'));
    expect(byTimer.length).toBeGreaterThanOrEqual(1);
    // `fleet history` says the timer did it.
    expect(byTimer[0]?.ran_by).toEqual({ kind: 'timer', unit: 'mosaic-fleet-reconcile.service' });

    // Back to no unattended convergence: the timer is stopped, disabled and its units archived.
    writeRoster(sb, roster(socket, ['t1']));
    const off = await fleet(sb, ['reconcile']);
    expect(off.code, off.stdout + off.stderr).toBe(0);
    expect(off.stdout).toMatch(/archive .*mosaic-fleet-reconcile\.timer/);
    const after = await sb.run(['systemctl', '--user', 'is-active', 'mosaic-fleet-reconcile.timer'], {
      reject: false,
    });
    expect(after.stdout.trim()).not.toBe('active');
    const settled = await fleet(sb, ['reconcile', '--dry-run', '--detailed-exitcode']);
    expect(settled.code, settled.stdout).toBe(0);
  });
});

describeSandbox('crash-loop back-off', (sandbox) => {
  it('retries an agent whose command exits at once with growing gaps, not on every resync, and shows BACKOFF', async () => {
    const sb = sandbox();
    const socket = 'loopfleet';
    writeRoster(sb, roster(socket, ['  - name: crashy\n    runtime: stub\n    command: "exit 3"']));
    const env = { FLEET_BACKOFF_INITIAL_SECONDS: '1', FLEET_BACKOFF_MAX_SECONDS: '60' };
    let runs = 0;
    let deferredRuns = 0;
    let sawBackoff = false;
    let respawns = 0;
    // Until three attempts and two held-back runs were seen: the gaps double (1 s, 2 s, 4 s, 8 s...), so however
    // long one reconcile takes on this machine, a gap soon outlasts it and later runs are held back.
    const deadline = Date.now() + 45_000;
    while (Date.now() < deadline && !(respawns >= 3 && deferredRuns >= 2)) {
      const r = await fleet(sb, ['reconcile'], env);
      expect(r.code, r.stdout + r.stderr).toBe(0);
      runs++;
      if (r.stdout.includes('Deferred by crash-loop back-off')) deferredRuns++;
      if (/respawned crashy/.test(r.stdout)) respawns++;
      const ps = await fleet(sb, ['ps', '--json'], env);
      const doc = JSON.parse(ps.stdout) as { agents: { name: string; flags: string[] }[] };
      if (doc.agents.find((a) => a.name === 'crashy')?.flags.includes('BACKOFF')) sawBackoff = true;
      await sleep(150);
    }
    const attempts = (await journal(sb)).entries
      .filter((e) => e.actions.some((a) => a.kind === 'respawn'))
      .map((e) => Date.parse(e.started_at))
      // `fleet history` lists the newest first.
      .sort((a, b) => a - b);
    expect(attempts.length).toBeGreaterThanOrEqual(3);
    // Not on every resync: runs that found the pane dead and held back are the proof, whatever the machine's speed.
    expect(deferredRuns).toBeGreaterThanOrEqual(2);
    expect(attempts.length).toBeLessThan(runs);
    const gaps = attempts.slice(1).map((t, i) => t - (attempts[i] ?? 0));
    // 1 s, 2 s, 4 s, ...: every gap at least its nominal, doubling length. (Not "each longer than the one before":
    // on a slow machine one reconcile can outlast the first, short gaps, which stretches them.)
    gaps.forEach((g, i) => expect(g).toBeGreaterThanOrEqual(1000 * 2 ** i - 50));
    expect(sawBackoff).toBe(true);
    const state = JSON.parse(readFileSync(join(sb.paths.stateDir, 'state.json'), 'utf8')) as {
      backoff: Record<string, { attempts: number }>;
    };
    expect(state.backoff.crashy?.attempts).toBe(attempts.length);
  }, 90_000);
});
