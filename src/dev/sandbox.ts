/**
 * A private, real systemd user manager and a private tmux directory, for the tests and for `npm run demo`
 * (DOMAIN.md section 7).
 *
 * This is test and demo infrastructure, not part of the reconciler: it spawns the manager with
 * node:child_process directly because it must own that process (its pid, its exit, its output) for the whole
 * life of the sandbox. The product's own commands are still spawned only by src/exec.ts.
 *
 * Everything a test does here lands in one temp directory: the manager's runtime dir and unit dir, the tmux
 * sockets, the Mosaic home. The manager is started with the sandbox environment exported, so the units it runs
 * (and the tmux servers they start) inherit the private TMUX_TMPDIR and MOSAIC_HOME and cannot reach the real
 * ones. `stop()` ends only what this sandbox started: the manager PID it spawned and the tmux servers whose
 * sockets live in its own private directory.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, rmdir, writeFile } from '../fs-async.js';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRunner, type RunOptions, type RunResult, type Runner } from '../exec.js';
import { onPath } from '../observe/preflight.js';
import { resolvePaths, type FleetPaths } from '../paths.js';

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
  /** Name prefix of the temp directory (default `fleet-sb-`), so a sandbox's owner can be told from its path. */
  tmpPrefix?: string;
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
  /**
   * Stop everything this sandbox started: the manager (asked to exit, killed if it does not), the tmux servers
   * on its own sockets, whatever still runs in its cgroups, and the temp dir. Idempotent; safe to call from
   * afterAll/finally after a failed test. Concurrent calls share one run.
   */
  stop(): Promise<void>;
  /**
   * SIGKILL the manager now instead of waiting for a clean exit (an impatient second Ctrl-C). A stop() in
   * progress then goes straight on to the tmux servers, the cgroups and the temp dir.
   */
  forceStop(): void;
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
  if (reason !== null) throw new Error(`cannot start the sandbox: ${reason}`);

  const root = await mkdtemp(join(tmpdir(), opts.tmpPrefix ?? 'fleet-sb-'));
  const uid = process.getuid?.() ?? 0;
  const { env, tmuxTmp } = await makeSandboxHome(root, opts);
  const paths = resolvePaths({}, env);
  const runner = createRunner(env);

  for (const [name, content] of Object.entries(opts.units ?? {})) {
    await writeFile(join(paths.unitDir, name), content);
  }

  const manager = spawnManager(env);
  const { child } = manager;
  const { stop, forceStop } = sandboxStopper(child, runner, root, join(tmuxTmp, `tmux-${uid}`));

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
    managerOutput: manager.output,
    stop,
    forceStop,
  };
  await waitForManager(manager, runner, stop);
  return sandbox;
}

/** The sandbox's private home, runtime and tmux directories, and the environment that points everything there. */
async function makeSandboxHome(
  root: string,
  opts: SandboxOptions,
): Promise<{ env: Record<string, string | undefined>; tmuxTmp: string }> {
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
  return { env, tmuxTmp };
}

/** The manager process, with what it printed so far and why it could not be spawned, if it could not. */
interface Manager {
  child: ChildProcess;
  output: () => string;
  spawnError: () => Error | null;
}

function spawnManager(env: Record<string, string | undefined>): Manager {
  const childEnv: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries({ ...process.env, ...env })) if (v !== undefined) childEnv[k] = v;
  // unshare -m gives the manager a private /run/systemd, so it never sees or disturbs a system manager.
  // detached: its own process group, so a Ctrl-C at the terminal reaches only the owner (test runner, demo),
  // which then stops the sandbox in order, instead of the manager tearing itself down halfway at the same time.
  const child = spawn(
    'unshare',
    [
      '-m',
      'sh',
      '-c',
      `${OWN_CGROUP_SCRIPT} mount -t tmpfs tmpfs /run/systemd && mkdir -p /run/systemd/system && exec ${SYSTEMD_BINARY} --user`,
    ],
    { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'], detached: true },
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
  return { child, output: () => output, spawnError: () => spawnError };
}

/** `stop` (in order, once) and `forceStop` (SIGKILL to the manager only). */
function sandboxStopper(
  child: ChildProcess,
  runner: Runner,
  root: string,
  tmuxSocketDir: string,
): { stop: () => Promise<void>; forceStop: () => void } {
  const forceStop = (): void => {
    // Only our own child, by its pid; never a group or pid 0/-1.
    if (!exited(child) && child.pid !== undefined && child.pid > 1) child.kill('SIGKILL');
  };
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= stopNow();
    return stopping;
  };
  const stopNow = async (): Promise<void> => {
    if (!exited(child)) {
      await runner
        .run(['systemctl', '--user', 'exit'], { reject: false, timeoutMs: 5_000 })
        .catch(() => undefined);
      if (!(await waitForExit(child, 5_000))) {
        child.kill('SIGKILL');
        await waitForExit(child, 2_000);
      }
    }
    await killOwnTmuxServers(runner, tmuxSocketDir);
    if (child.pid !== undefined) await removeOwnCgroups(child.pid);
    child.stdout?.destroy();
    child.stderr?.destroy();
    if (process.env.FLEET_KEEP_SANDBOX !== '1') await rm(root, { recursive: true, force: true });
  };
  return { stop, forceStop };
}

/**
 * Ready when the manager answers on its private bus. `is-system-running` prints "offline" and exits 1 under
 * this kind of manager even when it works, so it is no readiness signal.
 */
async function waitForManager(manager: Manager, runner: Runner, stop: () => Promise<void>): Promise<void> {
  const { child } = manager;
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    const spawnError = manager.spawnError();
    if (spawnError !== null || exited(child)) {
      await stop();
      throw new Error(
        `cannot start the sandbox: the systemd user manager exited (${String(spawnError ?? child.exitCode ?? child.signalCode)})\n${manager.output().trim()}`,
      );
    }
    const probe = await runner
      .run(['systemctl', '--user', 'show', '-p', 'Version'], { reject: false, timeoutMs: 2_000 })
      .catch(() => null);
    if (probe !== null && probe.exitCode === 0 && probe.stdout.startsWith('Version=')) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(
        `cannot start the sandbox: the systemd user manager did not answer within ${READY_TIMEOUT_MS} ms\n${manager.output().trim()}`,
      );
    }
    await sleep(READY_POLL_MS);
  }
}

/**
 * Each manager gets cgroups of its own. A user manager treats the cgroup it starts in as its root and creates
 * `app.slice/<unit>` below it; two sandboxes started from the same cgroup would share those paths, and one
 * manager stopping `mosaic-tmux-holder.service` would kill the other's tmux server. So before exec the shell
 * moves itself (soon the manager: exec keeps the pid) into `fleet-sandbox-<pid>` in every writable hierarchy.
 */
const CGROUP_ROOTS = ['/sys/fs/cgroup/systemd', '/sys/fs/cgroup/unified', '/sys/fs/cgroup'];
const OWN_CGROUP_SCRIPT = `for r in ${CGROUP_ROOTS.join(' ')}; do if [ -f "$r/cgroup.procs" ] && mkdir "$r/fleet-sandbox-$$" 2>/dev/null; then echo $$ > "$r/fleet-sandbox-$$/cgroup.procs" || true; fi; done;`;

/**
 * Remove the sandbox manager's cgroups, deepest first (best effort). Whatever still runs in them was started
 * by this sandbox's manager (a unit's process that outlived a killed manager, say) and is killed first: a
 * cgroup with processes cannot be removed, and the sandbox must leave nothing behind.
 */
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
    killCgroupProcesses(dir);
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

/** SIGKILL the processes listed in one cgroup (never pid 0/1 or this process). */
function killCgroupProcesses(dir: string): void {
  let pids: number[];
  try {
    pids = readFileSync(join(dir, 'cgroup.procs'), 'utf8')
      .split('\n')
      .map(Number)
      .filter((pid) => Number.isInteger(pid) && pid > 1 && pid !== process.pid);
  } catch {
    return;
  }
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
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
