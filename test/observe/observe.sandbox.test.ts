/**
 * observe() against the real sandbox: what it sees, that it only reads, and that its cost does not grow with
 * the fleet.
 */
import { mkdir, mkdtemp, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, expect, it } from 'vitest';
import { createRunner, type Runner } from '../../src/exec.js';
import { observe } from '../../src/observe/index.js';
import { describeSandbox } from '../sandbox.js';
import { installAgentTemplate, uniqueSocket, waitFor, writeAgentEnv } from '../helpers/fleet.js';

describeSandbox('observe: the spawn count is constant', (sandbox) => {
  it('issues the same commands for 1 agent and for 50 (50 sessions, 50 env files, 50 units)', async () => {
    const sb = sandbox();
    const socket = uniqueSocket('count');
    // Cheap stand-ins for agents: a oneshot template (units listed, half of them enabled), sessions running sleep.
    await sb.writeUnit(
      'mosaic-agent@.service',
      '[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/true\n[Install]\nWantedBy=default.target\n',
    );
    await sb.writeUnit(
      'mosaic-tmux-holder.service',
      `[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/true\n[Install]\nWantedBy=default.target\n`,
    );
    await sb.systemctl('daemon-reload');
    await sb.systemctl('start', 'mosaic-tmux-holder.service');
    await mkdir(sb.paths.agentsDir, { recursive: true });
    await mkdir(sb.paths.runDir, { recursive: true });

    const addAgents = async (from: number, to: number): Promise<void> => {
      const names = Array.from({ length: to - from }, (_, i) => `a${from + i}`);
      // One tmux command list and one systemctl call, so setup stays quick.
      const tmuxArgs = names.flatMap((n, i) => [
        ...(i > 0 ? [';'] : []),
        'new-session',
        '-d',
        '-s',
        n,
        'sleep 600',
      ]);
      await sb.tmux(socket, ...tmuxArgs);
      await sb.systemctl('start', ...names.map((n) => `mosaic-agent@${n}.service`));
      const even = names.filter((n) => Number(n.slice(1)) % 2 === 0).map((n) => `mosaic-agent@${n}.service`);
      await sb.systemctl('enable', ...even);
      for (const n of names) {
        await writeAgentEnv(sb, n, { socket });
        await writeFile(join(sb.paths.runDir, `${n}.hb`), `ts=${Math.floor(Date.now() / 1000)}\n`);
      }
    };

    await addAgents(0, 1);
    const one = createRunner(sb.env);
    const small = await observe({ paths: sb.paths, sockets: [socket] }, one);
    expect(small.tmux.sockets[socket]?.sessions).toEqual(['a0']);

    await addAgents(1, 50);
    const fifty = createRunner(sb.env);
    const big = await observe({ paths: sb.paths, sockets: [socket] }, fifty);
    // The big snapshot really holds the fleet: otherwise equal counts would prove nothing.
    expect(big.tmux.sockets[socket]?.sessions).toHaveLength(50);
    expect(big.envFileAgents).toHaveLength(50);
    expect(Object.keys(big.heartbeats)).toHaveLength(50);
    const instances = Object.values(big.systemd.units).filter((u) =>
      /^mosaic-agent@a\d+\.service$/.test(u.name),
    );
    expect(instances).toHaveLength(50);
    expect(instances.filter((u) => u.unitFileState === 'enabled')).toHaveLength(25);
    expect(instances.filter((u) => u.unitFileState === 'disabled')).toHaveLength(25);
    expect(big.tmux.sockets[socket]?.panes.every((p) => p.processes[0]?.argv.join(' ') === 'sleep 600')).toBe(
      true,
    );

    // Sorted: independent commands run concurrently, so their completion order is not fixed.
    const shape = (log: typeof one.log) => log.map((c) => c.argv.slice(0, 4).join(' ')).sort();
    // The manager is asked over D-Bus: the one spawn left is tmux's.
    expect(fifty.log.length).toBe(one.log.length);
    expect(shape(fifty.log)).toEqual(shape(one.log));
    expect(shape(one.log)).toEqual([`tmux -L ${socket} list-panes`]);

    // Without the bus (a runner that offers no environment to find it by), systemctl: as many calls for 50.
    const oneCtl = viaSystemctl(createRunner(sb.env));
    const fiftyCtl = viaSystemctl(createRunner(sb.env));
    await observe({ paths: sb.paths, sockets: [socket] }, oneCtl);
    const bigCtl = await observe({ paths: sb.paths, sockets: [socket] }, fiftyCtl);
    expect(shape(oneCtl.log)).toEqual([
      'systemctl --user list-unit-files --no-pager',
      'systemctl --user list-units --all',
      'systemctl --user show -p',
      `tmux -L ${socket} list-panes`,
    ]);
    expect(shape(fiftyCtl.log)).toEqual(shape(oneCtl.log));
    expect(fiftyCtl.log.every((c) => c.kind === 'read')).toBe(true);
    // Both ways see the same: every unit's load, active, sub and file state, and the reload flag.
    expect(big.systemd).toEqual(bigCtl.systemd);
  });
});

/** The same runner without its environment: observe() then asks systemctl, not the manager's bus. */
function viaSystemctl(r: Runner): Runner {
  return {
    get log() {
      return r.log;
    },
    run: (argv, options) => r.run(argv, options),
  };
}

describeSandbox('observe: what it sees', (sandbox) => {
  let socket: string;

  beforeAll(async () => {
    const sb = sandbox();
    socket = uniqueSocket('obs');
    await installAgentTemplate(sb);
    await writeAgentEnv(sb, 'on', { socket, model: 'm1' });
    await writeAgentEnv(sb, 'started', { socket });
    await sb.systemctl('enable', '--now', 'mosaic-agent@on.service');
    await sb.systemctl('start', 'mosaic-agent@started.service');
  });

  it('joins units (enablement of instances from the wants symlinks), panes and their process trees', async () => {
    const sb = sandbox();
    const o = await waitFor('both heartbeats', async () => {
      const snap = await observe(
        { paths: sb.paths, sockets: [socket, uniqueSocket('nobody')] },
        createRunner(sb.env),
      );
      return snap.heartbeats.on?.ts != null && snap.heartbeats.started?.ts != null ? snap : null;
    });
    expect(o.systemd.ok).toBe(true);
    expect(o.systemd.units['mosaic-agent@on.service']).toMatchObject({
      loadState: 'loaded',
      activeState: 'active',
      subState: 'exited',
      unitFileState: 'enabled',
    });
    expect(o.systemd.units['mosaic-agent@started.service']?.unitFileState).toBe('disabled');
    expect(o.systemd.units['mosaic-agent@.service']?.unitFileState).toBe('indirect');
    expect(o.systemd.needDaemonReload).toBe(false);

    const s = o.tmux.sockets[socket];
    expect(s?.serverRunning).toBe(true);
    expect(s?.sessions).toEqual(['on', 'started']);
    const pane = s?.panes.find((p) => p.session === 'on');
    expect(pane?.dead).toBe(false);
    expect(pane?.processes[0]?.pid).toBe(pane?.panePid);
    expect(pane?.processes[0]?.argv).toEqual([
      'bash',
      join(sb.paths.toolsDir, 'stub-agent.sh'),
      '--model',
      'm1',
    ]);
    expect(pane?.created).toBeGreaterThan(0);

    // A socket with no server is a fact, not an error.
    const nobody = Object.values(o.tmux.sockets).find((x) => x.socketName.startsWith('nobody'));
    expect(nobody).toMatchObject({ serverRunning: false, sessions: [], panes: [] });
    expect(o.tmux.ok).toBe(true);

    expect(o.envFileAgents).toEqual(['on', 'started']);
    expect(o.files[join(sb.paths.unitDir, 'mosaic-agent@.service')]?.content).toContain(
      'start-agent-session.sh',
    );
    expect(o.files[join(sb.paths.toolsDir, 'stub-agent.sh')]?.mode).toBe(0o755);
    expect(o.heartbeats.on?.keys.model).toBe('m1');
  });

  it('parses tmux output under a non-UTF-8 locale (as from a systemd timer), where tmux mangles control chars', async () => {
    const sb = sandbox();
    const runner = createRunner({ ...sb.env, LANG: undefined, LC_CTYPE: undefined, LC_ALL: 'C' });
    const o = await observe({ paths: sb.paths, sockets: [socket] }, runner);
    expect(o.tmux.sockets[socket]?.sessions).toEqual(['on', 'started']);
    expect(o.tmux.sockets[socket]?.panes.map((p) => p.processes.length > 0)).toEqual([true, true]);
  });

  it('notices unit files changed since systemd loaded them (over D-Bus and through systemctl alike)', async () => {
    const sb = sandbox();
    const path = join(sb.paths.unitDir, 'mosaic-agent@.service');
    const before = await observe({ paths: sb.paths, sockets: [] }, createRunner(sb.env));
    expect(before.systemd.needDaemonReload).toBe(false);
    expect(
      (await observe({ paths: sb.paths, sockets: [] }, viaSystemctl(createRunner(sb.env)))).systemd,
    ).toEqual(before.systemd);
    await writeFile(path, `${before.files[path]?.content ?? ''}# edited\n`);
    const after = await observe({ paths: sb.paths, sockets: [] }, createRunner(sb.env));
    expect(after.systemd.needDaemonReload).toBe(true);
    const ctl = await observe({ paths: sb.paths, sockets: [] }, viaSystemctl(createRunner(sb.env)));
    expect(ctl.systemd.needDaemonReload).toBe(true);
    await sb.systemctl('daemon-reload');
  });

  it('reads state, corrupt state and heartbeats without a crash', async () => {
    const sb = sandbox();
    await mkdir(sb.paths.stateDir, { recursive: true });
    await writeFile(
      join(sb.paths.stateDir, 'state.json'),
      '{"version": 1, "written": {"/x": "abc"}, "backoff": {}}',
    );
    const good = await observe({ paths: sb.paths, sockets: [] }, createRunner(sb.env));
    expect(good.state).toEqual({ version: 1, written: { '/x': 'abc' }, backoff: {} });
    await writeFile(join(sb.paths.stateDir, 'state.json'), '{ not json');
    const bad = await observe({ paths: sb.paths, sockets: [] }, createRunner(sb.env));
    expect(bad.state).toEqual({ version: 1, written: {}, backoff: {} });
    await writeFile(join(sb.paths.runDir, 'broken.hb'), 'ts=x\n');
    await mkdir(join(sb.paths.runDir, 'weird.hb'), { recursive: true });
    const o = await observe({ paths: sb.paths, sockets: [] }, createRunner(sb.env));
    expect(o.heartbeats.broken).toMatchObject({ exists: true, malformed: true, ts: null });
    expect(o.heartbeats.weird).toMatchObject({ exists: true, malformed: true });
  });

  it('reports linger from logind markers, and null when it cannot know', async () => {
    const sb = sandbox();
    const lib = await mkdtemp(join(sb.root, 'varlib-'));
    await mkdir(join(lib, 'linger'));
    const off = await observe(
      { paths: sb.paths, sockets: [], lingerDir: join(lib, 'linger'), user: 'op' },
      createRunner(sb.env),
    );
    expect(off.systemd.linger).toBe(false);
    await writeFile(join(lib, 'linger', 'op'), '');
    const on = await observe(
      { paths: sb.paths, sockets: [], lingerDir: join(lib, 'linger'), user: 'op' },
      createRunner(sb.env),
    );
    expect(on.systemd.linger).toBe(true);
    const unknown = await observe(
      { paths: sb.paths, sockets: [], lingerDir: join(sb.root, 'no', 'such', 'linger'), user: 'op' },
      createRunner(sb.env),
    );
    expect(unknown.systemd.linger).toBeNull();
  });

  it('turns a missing tmux and an unreachable manager into typed conditions', async () => {
    const sb = sandbox();
    const bin = await mkdtemp(join(sb.root, 'bin-'));
    await symlink('/usr/bin/systemctl', join(bin, 'systemctl'));
    const noTmux = await observe(
      { paths: sb.paths, sockets: [socket, 'other'] },
      createRunner({ ...sb.env, PATH: bin }),
    );
    expect(noTmux.tmux).toEqual({ ok: false, error: 'tmux not found on PATH', sockets: {} });
    expect(noTmux.systemd.ok).toBe(true);

    const emptyRuntime = await mkdtemp(join(sb.root, 'rt-'));
    const runner = createRunner({ ...sb.env, XDG_RUNTIME_DIR: emptyRuntime });
    const noManager = await observe({ paths: sb.paths, sockets: [socket] }, runner);
    expect(noManager.systemd.ok).toBe(false);
    expect(noManager.systemd.error).toMatch(/^cannot reach the systemd user manager: /);
    expect(noManager.systemd.units).toEqual({});
    // tmux was still observed; the two listing calls failed, and nothing was retried or asked per unit.
    expect(noManager.tmux.sockets[socket]?.serverRunning).toBe(true);
    expect(
      runner.log
        .filter((c) => c.argv[0] === 'systemctl')
        .map((c) => c.argv[2])
        .sort(),
    ).toEqual(['list-unit-files', 'list-units']);
  });
});
