/**
 * One snapshot of the machine (Observed), read-only, with a number of spawns that does not grow with the fleet:
 *   the systemd manager asked over one D-Bus connection in this process (src/observe/systemd-bus.ts), or,
 *   failing that, systemctl list-units (1) + list-unit-files (1) + show over a constant handful (0 or 1)
 *   + show-environment (when runtimes are to be resolved);
 *   + tmux list-panes per socket (sockets, not agents).
 * Everything else (process table, unit/env/tool files, heartbeats, state, linger) is read from the filesystem.
 * A missing tmux or an unreachable systemd manager is recorded as a typed condition, never thrown.
 */
import { userInfo } from 'node:os';
import { statSync } from 'node:fs';
import { access, constants, realpath, stat } from '../fs-async.js';
import { join } from 'node:path';
import type { Runner } from '../exec.js';
import type {
  ObservedFile,
  ObservedSocket,
  Observed,
  ReconcilerState,
  ResolvedProgram,
} from '../model/observed.js';
import { fleetHostName, type FleetPaths } from '../paths.js';
import {
  readDirFilesSync,
  readHeartbeatsSync,
  readLingerSync,
  readObservedFileSync,
  readStateSync,
  readTreeSync,
} from './files.js';
import { findLinkSync, type FoundLink } from '../base/safe-path.js';
import { CONVERGENCE_UNITS, HOLDER_UNIT } from '../base/names.js';
import { readProcessTable } from './proc.js';
import { findTempFiles } from './temp-files.js';
import { observeSystemd } from './systemd.js';
import { MANAGER_INTERFACE, MANAGER_PATH, openManagerBus, type ManagerBus } from './systemd-bus.js';
import { attachProcesses, observeSocket } from './tmux.js';
import { parseEnvFile } from '../base/env-file.js';

export interface ObserveInput {
  paths: FleetPaths;
  /** tmux sockets to look at ('' = the default socket): the fleet's sockets, from the desired state. */
  sockets: string[];
  /** Directories whose existence matters (agents' working directories): stat'ed, never created. */
  dirs?: string[];
  /** Runtime programs to look up on the user manager's PATH (one `show-environment` when there are any). */
  programs?: string[];
  /** "Now" for ages and back-off; default the clock at the start of observation. */
  nowMs?: number;
  /** Test seams: where the process table and logind's linger markers are, and whose linger to read. */
  procRoot?: string;
  lingerDir?: string;
  user?: string | null;
}

/** This process's user name, or null when the system cannot say (no passwd entry in a container). */
export function currentUser(): string | null {
  try {
    return userInfo().username;
  } catch {
    return null;
  }
}

async function observeTmux(
  socketNames: string[],
  runner: Runner,
): Promise<{ sockets: Record<string, ObservedSocket>; error: string | null; missing: boolean }> {
  const sockets: Record<string, ObservedSocket> = {};
  let error: string | null = null;
  for (const socketName of [...new Set(socketNames)].sort()) {
    const result = await observeSocket(socketName, runner);
    if (result.kind === 'no-tmux') {
      // Every socket would say the same; asking again only adds spawns.
      return { sockets: {}, error: result.error, missing: true };
    }
    sockets[socketName] = result.socket;
    if (result.kind === 'error') error ??= result.error;
  }
  return { sockets, error, missing: false };
}

function dirsExist(dirs: readonly string[]): Record<string, boolean> {
  const out: Record<string, boolean> = {};
  for (const d of new Set(dirs)) {
    try {
      out[d] = statSync(d).isDirectory();
    } catch {
      out[d] = false;
    }
  }
  return out;
}

/** The user manager's PATH, as its units get it; null when systemd cannot be asked. */
async function managerPath(runner: Runner, bus: ManagerBus | null): Promise<string | null> {
  if (bus !== null) {
    const environment = await bus.get(MANAGER_PATH, MANAGER_INTERFACE, 'Environment').catch(() => null);
    if (Array.isArray(environment)) {
      const line = environment.find((l): l is string => typeof l === 'string' && l.startsWith('PATH='));
      return line === undefined ? '' : line.slice('PATH='.length);
    }
  }
  let r;
  try {
    r = await runner.run(['systemctl', '--user', 'show-environment'], {
      kind: 'read',
      reject: false,
      timeoutMs: 10_000,
    });
  } catch {
    return null; // systemctl missing or hanging: observeSystemd reports that
  }
  if (r.exitCode !== 0) return null;
  const line = r.stdout.split('\n').find((l) => l.startsWith('PATH='));
  return line === undefined ? '' : line.slice('PATH='.length);
}

/** Look `program` up as `command -v` in the start script would: a path as it is, a name on each PATH entry. */
export async function resolveProgram(program: string, path: string): Promise<ResolvedProgram> {
  const candidates = program.includes('/')
    ? [program]
    : path
        .split(':')
        .filter((d) => d !== '')
        .map((d) => join(d, program));
  for (const candidate of candidates) {
    try {
      const st = await stat(candidate);
      if (!st.isFile()) continue;
      await access(candidate, constants.X_OK);
      return { path: candidate, realPath: await realpath(candidate).catch(() => candidate) };
    } catch {
      // not here: try the next entry
    }
  }
  return { path: null, realPath: null };
}

async function resolvePrograms(
  programs: readonly string[],
  runner: Runner,
  bus: ManagerBus | null,
): Promise<{ managerPath: string | null; programs: Record<string, ResolvedProgram> } | null> {
  if (programs.length === 0) return null;
  const path = await managerPath(runner, bus);
  if (path === null) return { managerPath: null, programs: {} };
  const unique = [...new Set(programs)].sort();
  const found = await Promise.all(unique.map((p) => resolveProgram(p, path)));
  return {
    managerPath: path,
    programs: Object.fromEntries(unique.map((p, i) => [p, found[i]])),
  };
}

/**
 * `runner`, remembering the commands in flight: a step that gives up early (one of two concurrent systemctl calls
 * failing) may leave the other running, and observation ends only once every command it started has ended, so
 * none outlives it and the command log is whole.
 */
function trackCommands(runner: Runner): { runner: Runner; settled: () => Promise<void> } {
  const inFlight = new Set<Promise<unknown>>();
  return {
    runner: {
      get log() {
        return runner.log;
      },
      env: runner.env,
      run(argv, options) {
        const run = runner.run(argv, options);
        inFlight.add(run);
        const done = () => inFlight.delete(run);
        run.then(done, done);
        return run;
      },
    },
    settled: async () => {
      while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
    },
  };
}

export async function observe(input: ObserveInput, runner: Runner): Promise<Observed> {
  const commands = trackCommands(runner);
  try {
    return await observeOnce(input, commands.runner);
  } finally {
    await commands.settled();
  }
}

async function observeOnce(input: ObserveInput, runner: Runner): Promise<Observed> {
  const nowMs = input.nowMs ?? Date.now();
  const { paths } = input;

  // systemd, tmux and the filesystem are independent: the commands are started first, and the files are read
  // (synchronously, in one batch) while they run.
  // The manager is asked over D-Bus when it can be (no systemctl spawns), else through systemctl.
  const opening =
    runner.env === undefined ? Promise.resolve(null) : openManagerBus(runner.env).catch(() => null);
  const spawned = Promise.all([
    opening.then((bus) => observeSystemd(paths.unitDir, runner, bus)),
    observeTmux(input.sockets, runner),
    opening.then((bus) => resolvePrograms(input.programs ?? [], runner, bus)),
  ]).finally(() => void opening.then((bus) => bus?.close()));
  let read: FleetFiles;
  try {
    read = readFleetFiles(input, nowMs);
  } catch (error) {
    // Not expected (each read turns a failure into data), but never leave the commands' results unhandled.
    await spawned.catch(() => undefined);
    throw error;
  }
  const { unitFiles, envFiles, toolFiles, schema, heartbeats, state, linger, dirs, tempFiles } = read;
  const [systemd, tmux, resolved] = await spawned;
  const { sockets } = tmux;
  let tmuxError = tmux.error;
  if (!tmux.missing) {
    // Looked at even after an error on a named socket (`??=` alone would skip the look).
    const otherError = await observeOtherSockets(envFiles, state, sockets, runner);
    tmuxError ??= otherError;
  }
  const panes = Object.values(sockets).flatMap((s) => s.panes);
  if (panes.length > 0) attachProcesses(panes, readProcessTable(input.procRoot));

  const links = findFleetLinks(paths, read);
  const ownEnvFiles = envFiles.filter((f) => f.link === undefined);

  const files: Record<string, ObservedFile> = {};
  for (const f of [...unitFiles, ...ownEnvFiles, ...toolFiles, schema])
    if (f.link === undefined) files[f.path] = f;

  return {
    nowMs,
    hostname: fleetHostName(),
    paths: { mosaicHome: paths.mosaicHome, unitDir: paths.unitDir },
    systemd: { ...systemd, linger },
    tmux: { ok: tmuxError === null, error: tmuxError, sockets },
    heartbeats,
    files,
    dirs,
    ...(resolved === null ? {} : { managerPath: resolved.managerPath, programs: resolved.programs }),
    envFileAgents: ownEnvFiles.map((f) => f.path.slice(paths.agentsDir.length + 1, -'.env'.length)).sort(),
    ...(links.length > 0 ? { links } : {}),
    ...(tempFiles.length > 0 ? { tempFiles } : {}),
    state,
  };
}

type FleetFiles = ReturnType<typeof readFleetFiles>;

/** The fleet's files, read synchronously in one batch (while the commands run). */
function readFleetFiles(input: ObserveInput, nowMs: number) {
  const { paths } = input;
  return {
    tempFiles: findTempFiles(paths, input.procRoot),
    unitFiles: readDirFilesSync(paths.unitDir, (n) => n.startsWith('mosaic-')),
    envFiles: readDirFilesSync(
      paths.agentsDir,
      (n) => n.endsWith('.env') && !n.startsWith('.'),
      paths.mosaicHome,
    ),
    toolFiles: readTreeSync(paths.toolsDir, paths.mosaicHome),
    schema: readObservedFileSync(join(paths.mosaicHome, 'fleet', 'roster.schema.json'), paths.mosaicHome),
    heartbeats: readHeartbeatsSync(paths.runDir, nowMs),
    state: readStateSync(paths.stateDir),
    linger: readLingerSync(input.user === undefined ? currentUser() : input.user, input.lingerDir),
    dirs: dirsExist(input.dirs ?? []),
  };
}

/**
 * Agents the manifests no longer name may live on a socket no manifest names any more: look there too (one
 * more list-panes per such socket, only when there is one), so orphans and their sessions are seen and pruned.
 * Adds them to `sockets`; returns that look's error, if any.
 */
async function observeOtherSockets(
  envFiles: ObservedFile[],
  state: ReconcilerState,
  sockets: Record<string, ObservedSocket>,
  runner: Runner,
): Promise<string | null> {
  const extra = new Set<string>();
  for (const f of envFiles) {
    const socket = f.content === null ? undefined : parseEnvFile(f.content).entries.get('MOSAIC_TMUX_SOCKET');
    if (socket !== undefined && !(socket in sockets)) extra.add(socket);
  }
  // And the sockets the reconciler recorded for its agents (an env file may be archived already).
  for (const used of Object.values(state.sessionSockets ?? {})) {
    for (const socket of used) if (!(socket in sockets)) extra.add(socket);
  }
  if (extra.size === 0) return null;
  const more = await observeTmux([...extra], runner);
  Object.assign(sockets, more.sockets);
  return more.error;
}

/**
 * Links where the fleet's files or directories belong: reported, never followed (no plan is made with one).
 * In the unit directory only the units the reconciler writes count: a masked instance is a link to /dev/null.
 */
function findFleetLinks(paths: FleetPaths, read: FleetFiles): FoundLink[] {
  const { unitFiles, envFiles, toolFiles, schema } = read;
  const ownUnits = new Set(['mosaic-agent@.service', HOLDER_UNIT, ...CONVERGENCE_UNITS]);
  const links = [
    ...unitFiles.filter((f) => ownUnits.has(f.path.slice(paths.unitDir.length + 1))),
    ...envFiles,
    ...toolFiles,
    schema,
  ]
    .filter((f) => f.link !== undefined)
    .map((f) => ({ path: f.path, target: f.link ?? '' }));
  const { stateDir, archiveDir } = paths;
  const stateFiles = ['state.json', 'journal.jsonl', 'lock', 'backups', 'desired-cache.json'].map((n) =>
    join(stateDir, n),
  );
  for (const p of [...stateFiles, archiveDir]) {
    const l: FoundLink | null = findLinkSync(paths.mosaicHome, p);
    if (l !== null && !links.some((x) => x.path === l.path)) links.push(l);
  }
  links.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return links;
}
