/**
 * A private, real systemd user manager and a private tmux directory for tests (DOMAIN.md section 7).
 *
 * Everything a test does here lands in one temp directory: the manager's runtime dir and unit dir, the tmux
 * sockets, the Mosaic home. The manager is started with the sandbox environment exported, so the units it runs
 * (and the tmux servers they start) inherit the private TMUX_TMPDIR and MOSAIC_HOME and cannot reach the real
 * ones. `stop()` ends only what this sandbox started: the manager PID it spawned and the tmux servers whose
 * sockets live in its own private directory.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, existsSync, readdirSync, statSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, rmdir, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { createRunner, type RunOptions, type RunResult, type Runner } from '../src/exec.js';
import { resolvePaths, type FleetPaths } from '../src/paths.js';

const SYSTEMD_BINARY = '/lib/systemd/systemd';
const READY_TIMEOUT_MS = 10_000;
const READY_POLL_MS = 50;
/** The manager's output is kept for error messages; cap it so a chatty manager cannot eat memory. */
const MAX_MANAGER_OUTPUT = 64 * 1024;

export interface SandboxOptions {
  /** PATH for the sandbox environment (and so for the manager and its units). Default: this process's PATH. */
  path?: string;
  /** Extra environment exported to the manager and every command (e.g. test-specific knobs). */
  env?: Record<string, string>;
  /** Unit files (name -> content) written into the unit dir before the manager starts. */
  units?: Record<string, string>;
}

export interface Sandbox {
  /** The temp directory that holds everything below; removed by stop(). */
  root: string;
  /** The environment the manager was started with; pass it to anything that must see the sandbox. */
  env: Record<string, string | undefined>;
  paths: FleetPaths;
  /** A runner bound to the sandbox environment. Its log includes the sandbox's own commands. */
  runner: Runner;
  uid: number;
  /** `<TMUX_TMPDIR>/tmux-<uid>`: where tmux puts this sandbox's sockets. */
  tmuxSocketDir: string;
  /** PID of the manager this sandbox started. */
  managerPid: number;
  /** `systemctl --user ARGS` in the sandbox; throws on a non-zero exit. */
  systemctl(...args: string[]): Promise<RunResult>;
  /** `tmux [-L socket] ARGS` in the sandbox ('' = the sandbox's default socket); throws on a non-zero exit. */
  tmux(socket: string, ...args: string[]): Promise<RunResult>;
  /** Run any command in the sandbox environment. */
  run(argv: readonly string[], options?: RunOptions): Promise<RunResult>;
  /** Write a unit file into the sandbox's active unit dir (no daemon-reload). */
  writeUnit(name: string, content: string): Promise<void>;
  /** What the manager printed so far (for diagnostics). */
  managerOutput(): string;
  /** Idempotent; safe to call from afterAll/finally after a failed test. */
  stop(): Promise<void>;
}

function onPath(program: string, pathValue: string | undefined): boolean {
  for (const dir of (pathValue ?? '').split(delimiter)) {
    if (dir === '') continue;
    try {
      accessSync(join(dir, program), constants.X_OK);
      return true;
    } catch {
      // not in this directory
    }
  }
  return false;
}

/** Why the sandbox cannot start on this machine, from cheap static checks; null when it might. */
export function sandboxStaticReason(): string | null {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) {
    return 'not root (a private systemd user manager needs unshare -m)';
  }
  if (!onPath('unshare', process.env.PATH)) return 'unshare not found on PATH';
  if (!existsSync(SYSTEMD_BINARY)) return `${SYSTEMD_BINARY} not found`;
  if (!onPath('tmux', process.env.PATH)) return 'tmux not found on PATH';
  return null;
}

/** `FLEET_REQUIRE_SANDBOX=1` (CI): a sandbox that cannot start is a failure, not a skip. */
export function sandboxRequired(): boolean {
  return process.env.FLEET_REQUIRE_SANDBOX === '1';
}

function socketArgsFor(socket: string): string[] {
  return socket === '' ? [] : ['-L', socket];
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

function waitForExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (exited(child)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.off('exit', onExit);
      resolve(false);
    }, ms);
    const onExit = (): void => {
      clearTimeout(timer);
      resolve(true);
    };
    child.once('exit', onExit);
  });
}

/** Start a private systemd user manager with a private tmux dir and Mosaic home. */
export async function startSandbox(opts: SandboxOptions = {}): Promise<Sandbox> {
  const reason = sandboxStaticReason();
  if (reason !== null) throw new Error(`cannot start the test sandbox: ${reason}`);

  const root = await mkdtemp(join(tmpdir(), 'fleet-sb-'));
  const uid = process.getuid?.() ?? 0;
  const home = join(root, 'home');
  const configHome = join(home, '.config');
  const runtimeDir = join(root, 'run');
  const tmuxTmp = join(root, 'tmux');
  const mosaicHome = join(configHome, 'mosaic');
  for (const dir of [
    home,
    configHome,
    runtimeDir,
    tmuxTmp,
    mosaicHome,
    join(configHome, 'systemd', 'user'),
  ]) {
    await mkdir(dir, { recursive: true });
  }
  // systemd and tmux both refuse runtime dirs other users could enter.
  await chmod(runtimeDir, 0o700);
  await chmod(tmuxTmp, 0o700);

  const env: Record<string, string | undefined> = {
    HOME: home,
    XDG_RUNTIME_DIR: runtimeDir,
    XDG_CONFIG_HOME: configHome,
    TMUX_TMPDIR: tmuxTmp,
    MOSAIC_HOME: mosaicHome,
    PATH: opts.path ?? process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
    // Inside a tmux session these would point tmux (without -L) at the developer's own server.
    TMUX: undefined,
    TMUX_PANE: undefined,
    // systemctl --user must talk to the private manager's socket, never a session bus from outside.
    DBUS_SESSION_BUS_ADDRESS: undefined,
    XDG_DATA_HOME: join(home, '.local', 'share'),
    XDG_STATE_HOME: join(home, '.local', 'state'),
    XDG_CACHE_HOME: join(home, '.cache'),
    ...opts.env,
  };
  const paths = resolvePaths({}, env);
  const runner = createRunner(env);

  for (const [name, content] of Object.entries(opts.units ?? {})) {
    await writeFile(join(paths.unitDir, name), content);
  }

  const childEnv: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries({ ...process.env, ...env })) if (v !== undefined) childEnv[k] = v;
  // unshare -m gives the manager a private /run/systemd, so it never sees or disturbs a system manager.
  const child = spawn(
    'unshare',
    [
      '-m',
      'sh',
      '-c',
      `${OWN_CGROUP_SCRIPT} mount -t tmpfs tmpfs /run/systemd && mkdir -p /run/systemd/system && exec ${SYSTEMD_BINARY} --user`,
    ],
    { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  const collect = (chunk: Buffer): void => {
    if (output.length < MAX_MANAGER_OUTPUT) output += chunk.toString('utf8');
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  let spawnError: Error | null = null;
  child.on('error', (error) => {
    spawnError = error;
  });

  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    if (!exited(child)) {
      await runner
        .run(['systemctl', '--user', 'exit'], { reject: false, timeoutMs: 5_000 })
        .catch(() => undefined);
      if (!(await waitForExit(child, 5_000))) {
        child.kill('SIGKILL');
        await waitForExit(child, 2_000);
      }
    }
    await killOwnTmuxServers(runner, join(tmuxTmp, `tmux-${uid}`));
    if (child.pid !== undefined) await removeOwnCgroups(child.pid);
    if (process.env.FLEET_KEEP_SANDBOX !== '1') await rm(root, { recursive: true, force: true });
  };

  const sandbox: Sandbox = {
    root,
    env,
    paths,
    runner,
    uid,
    tmuxSocketDir: join(tmuxTmp, `tmux-${uid}`),
    managerPid: child.pid ?? -1,
    systemctl: (...args) => runner.run(['systemctl', '--user', ...args], { timeoutMs: 30_000 }),
    tmux: (socket, ...args) => runner.run(['tmux', ...socketArgsFor(socket), ...args]),
    run: (argv, options) => runner.run(argv, options),
    writeUnit: async (name, content) => {
      await writeFile(join(paths.unitDir, name), content);
    },
    managerOutput: () => output,
    stop,
  };

  // Ready when the manager answers on its private bus. `is-system-running` prints "offline" and exits 1 under
  // this kind of manager even when it works, so it is no readiness signal.
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (spawnError !== null || exited(child)) {
      await stop();
      throw new Error(
        `cannot start the test sandbox: the systemd user manager exited (${String(spawnError ?? child.exitCode ?? child.signalCode)})\n${output.trim()}`,
      );
    }
    const probe = await runner
      .run(['systemctl', '--user', 'show', '-p', 'Version'], { reject: false, timeoutMs: 2_000 })
      .catch(() => null);
    if (probe !== null && probe.exitCode === 0 && probe.stdout.startsWith('Version=')) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(
        `cannot start the test sandbox: the systemd user manager did not answer within ${READY_TIMEOUT_MS} ms\n${output.trim()}`,
      );
    }
    await sleep(READY_POLL_MS);
  }
  return sandbox;
}

/**
 * Each manager gets cgroups of its own. A user manager treats the cgroup it starts in as its root and creates
 * `app.slice/<unit>` below it; two sandboxes started from the same cgroup would share those paths, and one
 * manager stopping `mosaic-tmux-holder.service` would kill the other's tmux server. So before exec the shell
 * moves itself (soon the manager: exec keeps the pid) into `fleet-sandbox-<pid>` in every writable hierarchy.
 */
const CGROUP_ROOTS = ['/sys/fs/cgroup/systemd', '/sys/fs/cgroup/unified', '/sys/fs/cgroup'];
const OWN_CGROUP_SCRIPT = `for r in ${CGROUP_ROOTS.join(' ')}; do if [ -f "$r/cgroup.procs" ] && mkdir "$r/fleet-sandbox-$$" 2>/dev/null; then echo $$ > "$r/fleet-sandbox-$$/cgroup.procs" || true; fi; done;`;

/** Remove the sandbox manager's cgroups, deepest first, once nothing runs in them (best effort). */
async function removeOwnCgroups(managerPid: number): Promise<void> {
  const removeTree = async (dir: string): Promise<void> => {
    let entries: string[];
    try {
      entries = readdirSync(dir, { withFileTypes: true })
        .filter((e) => e.isDirectory())
        .map((e) => e.name);
    } catch {
      return;
    }
    for (const e of entries) await removeTree(join(dir, e));
    for (let i = 0; i < 20; i++) {
      try {
        await rmdir(dir);
        return;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
        await sleep(50);
      }
    }
  };
  for (const root of CGROUP_ROOTS) await removeTree(join(root, `fleet-sandbox-${managerPid}`));
}

/** Kill the tmux servers whose sockets are in this sandbox's private directory, and nothing else. */
async function killOwnTmuxServers(runner: Runner, socketDir: string): Promise<void> {
  let names: string[];
  try {
    names = readdirSync(socketDir);
  } catch {
    return;
  }
  for (const name of names) {
    const socketPath = join(socketDir, name);
    try {
      if (!statSync(socketPath).isSocket()) continue;
    } catch {
      continue;
    }
    await runner
      .run(['tmux', '-S', socketPath, 'kill-server'], { reject: false, timeoutMs: 5_000 })
      .catch(() => undefined);
    // kill-server returns before the server is gone (and tmux leaves the socket file behind): wait until
    // nothing accepts connections on it, so the caller's "no server left" holds when stop() returns.
    const deadline = Date.now() + 3_000;
    while ((await accepts(socketPath)) && Date.now() < deadline) await sleep(20);
  }
}

function accepts(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const conn = connect(socketPath);
    conn.once('connect', () => {
      conn.destroy();
      resolve(true);
    });
    conn.once('error', () => resolve(false));
  });
}

let probeResult: Promise<string | null> | undefined;

/**
 * Why sandbox tests cannot run here (null when they can). Static checks first; then one real start and stop,
 * cached per test worker, because a container can pass every static check and still refuse `mount`.
 */
export function sandboxUnavailableReason(): Promise<string | null> {
  probeResult ??= (async () => {
    const reason = sandboxStaticReason();
    if (reason !== null) return reason;
    try {
      const sb = await startSandbox();
      await sb.stop();
      return null;
    } catch (error) {
      return error instanceof Error ? error.message : String(error);
    }
  })();
  return probeResult;
}

/**
 * A describe block with one sandbox shared by its tests (started in beforeAll, stopped in afterAll even when a
 * test failed). Skipped, with the reason in the suite name, when the sandbox cannot start, except under
 * FLEET_REQUIRE_SANDBOX=1, where that is a test failure.
 */
export function describeSandbox(
  name: string,
  fn: (sandbox: () => Sandbox) => void,
  opts: SandboxOptions = {},
): void {
  describe(name, async () => {
    const reason = await sandboxUnavailableReason();
    if (reason !== null) {
      if (sandboxRequired()) {
        it('the sandbox starts (FLEET_REQUIRE_SANDBOX=1)', () => {
          throw new Error(`sandbox required but unavailable: ${reason}`);
        });
        return;
      }
      describe.skip(`skipped: ${reason.split('\n')[0]}`, () => fn(() => unavailable(reason)));
      return;
    }
    let current: Sandbox | undefined;
    beforeAll(async () => {
      current = await startSandbox(opts);
    });
    afterAll(async () => {
      await current?.stop();
    });
    fn(() => {
      if (current === undefined) throw new Error('sandbox not started (beforeAll failed)');
      return current;
    });
  });
}

function unavailable(reason: string): never {
  throw new Error(`sandbox unavailable: ${reason}`);
}

/** Run `fn` with a fresh sandbox of its own, always stopping it. */
export async function withSandbox<T>(fn: (sb: Sandbox) => Promise<T>, opts: SandboxOptions = {}): Promise<T> {
  const sb = await startSandbox(opts);
  try {
    return await fn(sb);
  } finally {
    await sb.stop();
  }
}
