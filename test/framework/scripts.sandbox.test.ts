/**
 * The framework scripts against a real tmux, in a private TMUX_TMPDIR: the "default socket" here is this
 * test's own, and every server it starts is killed through its own socket path at the end.
 */
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, type TestContext } from 'vitest';
import { waitFor } from '../helpers/fleet.js';
import { createRunner, type RunResult } from '../../src/exec.js';
import { packageRoot } from '../../src/paths.js';
import { exactSession, exactWindow } from '../../src/base/names.js';
import { sandboxRequired } from '../sandbox.js';

const TOOLS = join(packageRoot(), 'framework', 'tools', 'fleet');
const START = join(TOOLS, 'start-agent-session.sh');
const STOP = join(TOOLS, 'stop-agent-session.sh');
const HOLDER = join(TOOLS, 'ensure-holder-session.sh');
const STUB = join(TOOLS, 'stub-agent.sh');

const runner = createRunner();
const SOCKET = `fleet-scripts-${process.pid}`;

let root = '';
let socketDir = '';
let mosaicHome = '';
let workdir = '';
let unavailable: string | null = null;

beforeAll(async () => {
  const probe = await runner.run(['tmux', '-V'], { reject: false }).catch(() => null);
  if (probe === null || probe.exitCode !== 0) {
    unavailable = 'tmux not found';
    return;
  }
  root = await mkdtemp(join(tmpdir(), 'fleet-scripts-'));
  const tmuxTmp = join(root, 'tmux');
  await mkdir(tmuxTmp);
  await chmod(tmuxTmp, 0o700);
  socketDir = join(tmuxTmp, `tmux-${process.getuid?.() ?? 0}`);
  mosaicHome = join(root, 'mosaic home');
  workdir = join(root, 'work dir');
  await mkdir(workdir, { recursive: true });
});

afterAll(async () => {
  if (root === '') return;
  // Only servers whose sockets live in this test's private directory.
  for (const name of existsSync(socketDir) ? readdirSync(socketDir) : []) {
    await runner.run(['tmux', '-S', join(socketDir, name), 'kill-server'], { reject: false });
  }
  await rm(root, { recursive: true, force: true });
});

/** Skip (visibly) without tmux, except under FLEET_REQUIRE_SANDBOX=1 where that is a failure. */
function skipUnless(t: TestContext): void {
  if (unavailable === null) return;
  if (sandboxRequired()) throw new Error(`tmux required: ${unavailable}`);
  t.skip(unavailable);
}

/** Environment as systemd gives it to the scripts from an agent's env file. */
function agentEnv(
  name: string,
  socket: string,
  extra: Record<string, string | undefined> = {},
): Record<string, string | undefined> {
  return {
    TMUX_TMPDIR: join(root, 'tmux'),
    // `bash -lc` reads the login profile of $HOME: a developer's (pyenv rehash, say) can block or vary, so
    // the pane gets a private, empty home, as an agent unit of the sandbox would.
    HOME: workdir,
    // A developer running the tests inside tmux must not leak their server into the scripts.
    TMUX: '/tmp/not-the-test-server,1,0',
    MOSAIC_AGENT_NAME: name,
    MOSAIC_AGENT_RUNTIME: 'stub',
    MOSAIC_AGENT_RUNTIME_COMMAND: STUB,
    MOSAIC_AGENT_MODEL: 'model one',
    MOSAIC_AGENT_WORKDIR: workdir,
    MOSAIC_TMUX_SOCKET: socket,
    MOSAIC_HOME: mosaicHome,
    MOSAIC_AGENT_COMMAND: undefined,
    MOSAIC_HEARTBEAT_INTERVAL: '1',
    ...extra,
  };
}

function script(path: string, args: string[], env: Record<string, string | undefined>): Promise<RunResult> {
  return runner.run([path, ...args], { env, reject: false });
}

/** tmux on the test's socket; '' = the test's private default socket (addressed by path, never by -L ''). */
async function tmux(socket: string, ...args: string[]): Promise<RunResult> {
  const target = socket === '' ? ['-S', join(socketDir, 'default')] : ['-S', join(socketDir, socket)];
  return runner.run(['tmux', ...target, ...args], { reject: false });
}

async function sessions(socket: string): Promise<string[]> {
  const r = await tmux(socket, 'list-sessions', '-F', '#{session_name}');
  return r.exitCode === 0 ? r.stdout.trim().split('\n').sort() : [];
}

async function pane(socket: string, name: string): Promise<{ pid: number; dead: boolean; status: string }> {
  const r = await tmux(
    socket,
    'list-panes',
    '-t',
    exactWindow(name),
    '-F',
    '#{pane_pid} #{pane_dead} #{pane_dead_status}',
  );
  expect(r.exitCode, r.stderr).toBe(0);
  const [pid, dead, status] = r.stdout.trim().split(' ');
  return { pid: Number(pid), dead: dead === '1', status: status ?? '' };
}

/**
 * A dead pane's exit status. tmux marks the pane dead when its pty closes and records the status when it
 * reaps the child; now and then (tmux 3.3/3.4) the status never arrives and `#{pane_dead_status}` stays
 * empty for good. So: the status when tmux has it within a moment, else 'unknown'.
 */
async function exitStatus(socket: string, name: string, dead: { status: string }): Promise<string> {
  if (dead.status !== '') return dead.status;
  const deadline = Date.now() + 2_000;
  while (Date.now() < deadline) {
    const { status } = await pane(socket, name);
    if (status !== '') return status;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return 'unknown';
}

describe('start-agent-session.sh', () => {
  it('creates the session once; a second run is a no-op', async (t) => {
    skipUnless(t);
    const env = agentEnv('alpha', SOCKET);
    const first = await script(START, ['alpha'], env);
    expect(first.exitCode, first.stderr).toBe(0);
    const before = await pane(SOCKET, 'alpha');
    const second = await script(START, ['alpha'], env);
    expect(second.exitCode, second.stderr).toBe(0);
    expect(await sessions(SOCKET)).toEqual(['alpha']);
    expect((await pane(SOCKET, 'alpha')).pid).toBe(before.pid);

    // The pane runs the runtime program with --model, in the agent's working directory.
    const argv = readFileSync(`/proc/${before.pid}/cmdline`, 'utf8')
      .split('\0')
      .filter((a) => a !== '');
    expect(argv).toEqual(['bash', STUB, '--model', 'model one']);
    const { stdout: cwd } = await tmux(
      SOCKET,
      'display-message',
      '-p',
      '-t',
      exactWindow('alpha'),
      '#{pane_current_path}',
    );
    expect(cwd.trim()).toBe(workdir);
  });

  it('uses the default socket, without -L, when MOSAIC_TMUX_SOCKET is empty', async (t) => {
    skipUnless(t);
    const result = await script(START, ['beta'], agentEnv('beta', ''));
    expect(result.exitCode, result.stderr).toBe(0);
    expect(await sessions('')).toEqual(['beta']);
    expect(existsSync(join(socketDir, 'default'))).toBe(true);
    // The named socket was not touched.
    expect(await sessions(SOCKET)).not.toContain('beta');
  });

  it('leaves a dead pane when the program exits, and respawns it on the next run', async (t) => {
    skipUnless(t);
    const dying = agentEnv('gamma', SOCKET, { MOSAIC_AGENT_COMMAND: 'echo bye | cat; exit 3' });
    expect((await script(START, ['gamma'], dying)).exitCode).toBe(0);
    const dead = await waitFor('a dead pane', async () => {
      const p = await pane(SOCKET, 'gamma');
      return p.dead ? p : null;
    });
    expect(await exitStatus(SOCKET, 'gamma', dead)).toMatch(/^(3|unknown)$/);

    const fixed = agentEnv('gamma', SOCKET, { MOSAIC_AGENT_COMMAND: 'sleep 300' });
    const respawn = await script(START, ['gamma'], fixed);
    expect(respawn.exitCode, respawn.stderr).toBe(0);
    expect(respawn.stderr).toContain('respawning');
    const alive = await pane(SOCKET, 'gamma');
    expect(alive.dead).toBe(false);
    // `bash -lc 'sleep 300'` (bash may exec the single command in place of itself).
    const argv = readFileSync(`/proc/${alive.pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    expect(argv.slice(-2).join(' ')).toMatch(/^(-lc sleep 300|sleep 300)$/);
  });

  it('resumes a pi conversation only while its file starts with its session header', async (t) => {
    skipUnless(t);
    // pi finds a session by that header; a file deleted while pi runs is created again by its next append
    // without one, and `pi --session ID` then exits 1: the start must be a fresh one, not a pane that dies.
    const id = '01a25237-4903-7262-86ed-80efda481bd7';
    const transcript = join(root, 'pi-session.jsonl');
    const message = '{"type":"message","id":"m1","message":{"role":"user","content":"hi"}}\n';
    const run = join(mosaicHome, 'fleet', 'run');
    await mkdir(run, { recursive: true });
    const start = async (name: string, file: string): Promise<{ stderr: string; argv: string[] }> => {
      writeFileSync(transcript, file);
      writeFileSync(join(run, `${name}.hb`), `ts=1\nstate=idle\nsession=${id}\ntranscript=${transcript}\n`);
      const env = agentEnv(name, SOCKET, {
        MOSAIC_AGENT_RUNTIME: 'pi',
        MOSAIC_AGENT_RESUME_ARGS: '--session {session}',
      });
      const r = await script(START, [name], env);
      expect(r.exitCode, r.stderr).toBe(0);
      const { pid } = await pane(SOCKET, name);
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
      return { stderr: r.stderr, argv };
    };
    const header = `{"type":"session","version":3,"id":"${id}","timestamp":"2026-12-07T20:00:00.000Z","cwd":"/w"}\n`;
    const whole = await start('pi-whole', header + message);
    expect(whole.stderr).toContain(`resuming conversation ${id}`);
    expect(whole.argv).toEqual(['bash', STUB, '--session', id, '--model', 'model one']);
    const headless = await start('pi-headless', message);
    expect(headless.stderr).toContain(
      `not resuming conversation ${id}: its transcript is gone or cannot be loaded`,
    );
    expect(headless.argv).toEqual(['bash', STUB, '--model', 'model one']);
    // Another conversation's header is not this one's.
    const other = await start('pi-other', header.replace(id, 'another-id') + message);
    expect(other.argv).toEqual(['bash', STUB, '--model', 'model one']);
  });

  it('fails with a clear message and creates nothing when something is missing', async (t) => {
    skipUnless(t);
    const noDir = await script(
      START,
      ['delta'],
      agentEnv('delta', SOCKET, { MOSAIC_AGENT_WORKDIR: join(root, 'nope') }),
    );
    expect(noDir.exitCode).toBe(1);
    expect(noDir.stderr).toContain(`working directory ${join(root, 'nope')} does not exist`);

    const noProgram = await script(
      START,
      ['delta'],
      agentEnv('delta', SOCKET, { MOSAIC_AGENT_RUNTIME_COMMAND: 'no-such-runtime' }),
    );
    expect(noProgram.exitCode).toBe(1);
    expect(noProgram.stderr).toContain("runtime program 'no-such-runtime' not found");

    const noEnv = await script(
      START,
      ['delta'],
      agentEnv('delta', SOCKET, { MOSAIC_TMUX_SOCKET: undefined }),
    );
    expect(noEnv.exitCode).toBe(1);
    expect(noEnv.stderr).toContain('MOSAIC_TMUX_SOCKET is not set');

    const wrongName = await script(START, ['delta'], agentEnv('epsilon', SOCKET));
    expect(wrongName.exitCode).toBe(1);
    expect(wrongName.stderr).toContain("env file names agent 'epsilon'");

    expect(await sessions(SOCKET)).not.toContain('delta');
  });
});

describe('stop-agent-session.sh', () => {
  it('kills exactly its session, never one whose name merely starts the same, and succeeds when gone', async (t) => {
    skipUnless(t);
    const s = `${SOCKET}-stop`;
    for (const name of ['coder00', 'coder0', 'coder1']) {
      expect(
        (await script(START, [name], agentEnv(name, s, { MOSAIC_AGENT_COMMAND: 'sleep 300' }))).exitCode,
      ).toBe(0);
    }
    const env = agentEnv('coder0', s);
    expect((await script(STOP, ['coder0'], env)).exitCode).toBe(0);
    expect(await sessions(s)).toEqual(['coder00', 'coder1']);
    // Gone already; `coder00` must not be mistaken for it by prefix.
    const again = await script(STOP, ['coder0'], env);
    expect(again.exitCode, again.stderr).toBe(0);
    expect(await sessions(s)).toEqual(['coder00', 'coder1']);
    // No server at all on a socket is "already gone" too.
    expect((await script(STOP, ['coder0'], agentEnv('coder0', `${SOCKET}-never`))).exitCode).toBe(0);
    expect(
      (await script(STOP, ['coder0'], agentEnv('coder0', s, { MOSAIC_TMUX_SOCKET: undefined }))).exitCode,
    ).toBe(1);
  });
});

describe('ensure-holder-session.sh', () => {
  it('creates the holder once, on a named or the default socket', async (t) => {
    skipUnless(t);
    const s = `${SOCKET}-holder`;
    const env = { TMUX_TMPDIR: join(root, 'tmux'), TMUX: '/tmp/not-the-test-server,1,0' };
    expect((await script(HOLDER, [`--socket=${s}`, '--holder=_holder'], env)).exitCode).toBe(0);
    const first = await pane(s, '_holder');
    expect((await script(HOLDER, [`--socket=${s}`, '--holder=_holder'], env)).exitCode).toBe(0);
    expect(await sessions(s)).toEqual(['_holder']);
    expect((await pane(s, '_holder')).pid).toBe(first.pid);

    expect((await script(HOLDER, ['--socket=', '--holder=_holder'], env)).exitCode).toBe(0);
    expect(await sessions('')).toContain('_holder');

    const bad = await script(HOLDER, ['--holder=_holder'], env);
    expect(bad.exitCode).toBe(1);
    expect(bad.stderr).toContain('--socket=NAME is required');
  });
});

describe('stub-agent.sh', () => {
  it('writes a parseable heartbeat, keeps it fresh, and exits cleanly on SIGTERM', async (t) => {
    skipUnless(t);
    const env = agentEnv('hb', SOCKET);
    expect((await script(START, ['hb'], env)).exitCode).toBe(0);
    const { pid } = await pane(SOCKET, 'hb');
    const hbPath = join(mosaicHome, 'fleet', 'run', 'hb.hb');
    const read = (): Record<string, string> | null => {
      if (!existsSync(hbPath)) return null;
      const text = readFileSync(hbPath, 'utf8');
      expect(text).toMatch(/^ts=\d+\npid=\d+\nmodel=.*\n$/);
      return Object.fromEntries(
        text
          .trim()
          .split('\n')
          .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
      );
    };
    const first = await waitFor('a heartbeat', read);
    expect(first.pid).toBe(String(pid));
    expect(first.model).toBe('model one');
    expect(Math.abs(Number(first.ts) - Date.now() / 1000)).toBeLessThan(30);
    // Interval 1 s: a newer beat follows (no temp files left behind).
    await waitFor('a newer heartbeat', () => {
      const hb = read();
      return hb !== null && Number(hb.ts) > Number(first.ts) ? hb : null;
    });
    // Its own temp files only (other agents of this file write beside it), and not one caught mid-rename: a
    // leftover is one that is still there a moment later.
    const temps = () => readdirSync(join(mosaicHome, 'fleet', 'run')).filter((f) => f.startsWith('.hb.hb.'));
    const seen = temps();
    await new Promise((r) => setTimeout(r, 1500));
    expect(temps().filter((f) => seen.includes(f))).toEqual([]);

    expect(pid).toBeGreaterThan(1); // never kill(0)/kill(-1)
    process.kill(pid, 'SIGTERM');
    const dead = await waitFor('the stub to exit', async () => {
      const p = await pane(SOCKET, 'hb');
      return p.dead ? p : null;
    });
    expect(await exitStatus(SOCKET, 'hb', dead)).toMatch(/^(0|unknown)$/);
    const { stdout } = await tmux(SOCKET, 'capture-pane', '-p', '-S', '-', '-t', exactWindow('hb'));
    expect(stdout, stdout).toContain('stub-agent hb: started');
    expect(stdout).toContain('stub-agent hb: stopping');
    // The dead pane's session goes with the stop script, like a live one.
    expect((await script(STOP, ['hb'], env)).exitCode).toBe(0);
    expect((await tmux(SOCKET, 'has-session', '-t', exactSession('hb'))).exitCode).not.toBe(0);
  });
});
