/**
 * One snapshot of the machine (Observed), read-only, with a number of spawns that does not grow with the fleet:
 *   systemctl list-units (1) + list-unit-files (1) + show over a constant handful (0 or 1)
 *   + tmux list-panes per socket (sockets, not agents).
 * Everything else (process table, unit/env/tool files, heartbeats, state, linger) is read from the filesystem.
 * A missing tmux or an unreachable systemd manager is recorded as a typed condition, never thrown.
 */
import { hostname, userInfo } from 'node:os';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Runner } from '../exec.js';
import type { ObservedFile, ObservedSocket, Observed } from '../model/observed.js';
import type { FleetPaths } from '../paths.js';
import { readDirFiles, readHeartbeats, readLinger, readObservedFile, readState, readTree } from './files.js';
import { readProcessTable } from './proc.js';
import { observeSystemd } from './systemd.js';
import { attachProcesses, observeSocket } from './tmux.js';
import { parseEnvFile } from '../render/env.js';

export interface ObserveInput {
  paths: FleetPaths;
  /** tmux sockets to look at ('' = the default socket): the fleet's sockets, from the desired state. */
  sockets: string[];
  /** Directories whose existence matters (agents' working directories): stat'ed, never created. */
  dirs?: string[];
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

async function dirsExist(dirs: readonly string[]): Promise<Record<string, boolean>> {
  const unique = [...new Set(dirs)];
  const found = await Promise.all(
    unique.map((d) =>
      stat(d).then(
        (st) => st.isDirectory(),
        () => false,
      ),
    ),
  );
  return Object.fromEntries(unique.map((d, i) => [d, found[i] ?? false]));
}

export async function observe(input: ObserveInput, runner: Runner): Promise<Observed> {
  const nowMs = input.nowMs ?? Date.now();
  const { paths } = input;

  // systemd, tmux and the filesystem are independent: ask them all at once (the spawn count is the same).
  const [systemd, tmux, unitFiles, envFiles, toolFiles, schema, heartbeats, state, linger, dirs] =
    await Promise.all([
      observeSystemd(paths.unitDir, runner),
      observeTmux(input.sockets, runner),
      readDirFiles(paths.unitDir, (n) => n.startsWith('mosaic-')),
      readDirFiles(paths.agentsDir, (n) => n.endsWith('.env') && !n.startsWith('.')),
      readTree(paths.toolsDir),
      readObservedFile(join(paths.mosaicHome, 'fleet', 'roster.schema.json')),
      readHeartbeats(paths.runDir, nowMs),
      readState(paths.stateDir),
      readLinger(input.user === undefined ? currentUser() : input.user, input.lingerDir),
      dirsExist(input.dirs ?? []),
    ]);
  const { sockets } = tmux;
  let tmuxError = tmux.error;
  // Agents the manifests no longer name may live on a socket no manifest names any more: look there too (one
  // more list-panes per such socket, only when there is one), so orphans and their sessions are seen and pruned.
  if (!tmux.missing) {
    const extra = new Set<string>();
    for (const f of envFiles) {
      const socket =
        f.content === null ? undefined : parseEnvFile(f.content).entries.get('MOSAIC_TMUX_SOCKET');
      if (socket !== undefined && !(socket in sockets)) extra.add(socket);
    }
    if (extra.size > 0) {
      const more = await observeTmux([...extra], runner);
      Object.assign(sockets, more.sockets);
      tmuxError ??= more.error;
    }
  }
  const panes = Object.values(sockets).flatMap((s) => s.panes);
  if (panes.length > 0) attachProcesses(panes, readProcessTable(input.procRoot));

  const files: Record<string, ObservedFile> = {};
  for (const f of [...unitFiles, ...envFiles, ...toolFiles, schema]) files[f.path] = f;

  return {
    nowMs,
    hostname: hostname(),
    paths: { mosaicHome: paths.mosaicHome, unitDir: paths.unitDir },
    systemd: { ...systemd, linger },
    tmux: { ok: tmuxError === null, error: tmuxError, sockets },
    heartbeats,
    files,
    dirs,
    envFileAgents: envFiles.map((f) => f.path.slice(paths.agentsDir.length + 1, -'.env'.length)).sort(),
    state,
  };
}
