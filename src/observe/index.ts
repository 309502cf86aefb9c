/**
 * One snapshot of the machine (Observed), read-only, with a number of spawns that does not grow with the fleet:
 *   systemctl list-units (1) + list-unit-files (1) + show over a constant handful (0 or 1)
 *   + tmux list-panes per socket (sockets, not agents).
 * Everything else (process table, unit/env/tool files, heartbeats, state, linger) is read from the filesystem.
 * A missing tmux or an unreachable systemd manager is recorded as a typed condition, never thrown.
 */
import { hostname, userInfo } from 'node:os';
import { join } from 'node:path';
import type { Runner } from '../exec.js';
import type { ObservedFile, ObservedSocket, Observed } from '../model/observed.js';
import type { FleetPaths } from '../paths.js';
import { readDirFiles, readHeartbeats, readLinger, readObservedFile, readState, readTree } from './files.js';
import { readProcessTable } from './proc.js';
import { observeSystemd } from './systemd.js';
import { attachProcesses, observeSocket } from './tmux.js';

export interface ObserveInput {
  paths: FleetPaths;
  /** tmux sockets to look at ('' = the default socket): the fleet's sockets, from the desired state. */
  sockets: string[];
  /** "Now" for ages and back-off; default the clock at the start of observation. */
  nowMs?: number;
  /** Test seams: where the process table and logind's linger markers are, and whose linger to read. */
  procRoot?: string;
  lingerDir?: string;
  user?: string | null;
}

function currentUser(): string | null {
  try {
    return userInfo().username;
  } catch {
    return null;
  }
}

async function observeTmux(
  socketNames: string[],
  runner: Runner,
): Promise<{ sockets: Record<string, ObservedSocket>; error: string | null }> {
  const sockets: Record<string, ObservedSocket> = {};
  let error: string | null = null;
  for (const socketName of [...new Set(socketNames)].sort()) {
    const result = await observeSocket(socketName, runner);
    if (result.kind === 'no-tmux') {
      // Every socket would say the same; asking again only adds spawns.
      return { sockets: {}, error: result.error };
    }
    sockets[socketName] = result.socket;
    if (result.kind === 'error') error ??= result.error;
  }
  return { sockets, error };
}

export async function observe(input: ObserveInput, runner: Runner): Promise<Observed> {
  const nowMs = input.nowMs ?? Date.now();
  const { paths } = input;

  // systemd and tmux are independent: ask them concurrently (the spawn count is the same either way).
  const [systemd, tmux] = await Promise.all([
    observeSystemd(paths.unitDir, runner),
    observeTmux(input.sockets, runner),
  ]);
  const { sockets, error: tmuxError } = tmux;
  const panes = Object.values(sockets).flatMap((s) => s.panes);
  if (panes.length > 0) attachProcesses(panes, readProcessTable(input.procRoot));

  const files: Record<string, ObservedFile> = {};
  const add = (f: ObservedFile): void => {
    files[f.path] = f;
  };
  (await readDirFiles(paths.unitDir, (n) => n.startsWith('mosaic-'))).forEach(add);
  const envFiles = await readDirFiles(paths.agentsDir, (n) => n.endsWith('.env') && !n.startsWith('.'));
  envFiles.forEach(add);
  (await readTree(paths.toolsDir)).forEach(add);
  add(await readObservedFile(join(paths.mosaicHome, 'fleet', 'roster.schema.json')));

  const [heartbeats, state, linger] = await Promise.all([
    readHeartbeats(paths.runDir, nowMs),
    readState(paths.stateDir),
    readLinger(input.user === undefined ? currentUser() : input.user, input.lingerDir),
  ]);

  return {
    nowMs,
    hostname: hostname(),
    paths: { mosaicHome: paths.mosaicHome, unitDir: paths.unitDir },
    systemd: { ...systemd, linger },
    tmux: { ok: tmuxError === null, error: tmuxError, sockets },
    heartbeats,
    files,
    envFileAgents: envFiles.map((f) => f.path.slice(paths.agentsDir.length + 1, -'.env'.length)).sort(),
    state,
  };
}
