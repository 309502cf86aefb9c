/**
 * Find the fleet writers' temp files (src/plan/temp-files.ts) in the fleet's own directories. Read-only: names
 * and `lstat` only, no file is opened; a directory behind a link is not listed (links are refused elsewhere).
 */
import { existsSync, lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { findLinkSync } from '../apply/safe-path.js';
import type { ObservedTempFile } from '../model/observed.js';
import type { FleetPaths } from '../paths.js';
import { tempWriterPid, type TempDirKind } from '../plan/temp-files.js';

/** Each directory of the fleet, the kind of temp names it may hold, and the root its link check starts from. */
export function tempDirs(paths: FleetPaths): { dir: string; kind: TempDirKind; root: string }[] {
  const home = paths.mosaicHome;
  return [
    { dir: paths.unitDir, kind: 'units', root: paths.unitDir },
    { dir: paths.agentsDir, kind: 'agents', root: home },
    { dir: paths.toolsDir, kind: 'tools', root: home },
    { dir: join(home, 'fleet'), kind: 'fleet', root: home },
    { dir: paths.stateDir, kind: 'reconciler', root: home },
    { dir: join(paths.stateDir, 'backups'), kind: 'backups', root: home },
    { dir: paths.archiveDir, kind: 'archive', root: home },
    { dir: paths.runDir, kind: 'run', root: home },
  ];
}

/**
 * The temp files in the fleet's directories. Synchronous: observation calls it in its batch of small reads while
 * its spawns run (about 60 path steps checked for links, a promise each cost more than the calls themselves).
 */
export function findTempFiles(paths: FleetPaths, procRoot = '/proc'): ObservedTempFile[] {
  const out: ObservedTempFile[] = [];
  for (const { dir, kind, root } of tempDirs(paths)) {
    let names: string[];
    try {
      if (findLinkSync(root, dir) !== null) continue;
      names = readdirSync(dir);
    } catch {
      continue; // no such directory yet
    }
    for (const name of names) {
      const pid = tempWriterPid(kind, name);
      if (pid === null) continue;
      const path = join(dir, name);
      try {
        const st = lstatSync(path);
        // Only a regular file: a link or directory with such a name is not something our writers made.
        if (!st.isFile()) continue;
        out.push({ path, pid, writerAlive: existsSync(join(procRoot, String(pid))), mtimeMs: st.mtimeMs });
      } catch {
        // vanished: its writer finished
      }
    }
  }
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}
