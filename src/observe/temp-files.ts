/**
 * Find the fleet writers' temp files (src/plan/temp-files.ts) in the fleet's own directories. Read-only: names
 * and `lstat` only, no file is opened; a directory behind a link is not listed (links are refused elsewhere).
 */
import { existsSync } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { findLink } from '../apply/safe-path.js';
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

export async function findTempFiles(paths: FleetPaths, procRoot = '/proc'): Promise<ObservedTempFile[]> {
  const found = await Promise.all(
    tempDirs(paths).map(async ({ dir, kind, root }) => {
      if ((await findLink(root, dir).catch(() => null)) !== null) return [];
      let names: string[];
      try {
        names = await readdir(dir);
      } catch {
        return []; // no such directory yet
      }
      const out: ObservedTempFile[] = [];
      for (const name of names) {
        const pid = tempWriterPid(kind, name);
        if (pid === null) continue;
        const path = join(dir, name);
        try {
          const st = await lstat(path);
          // Only a regular file: a link or directory with such a name is not something our writers made.
          if (!st.isFile()) continue;
          out.push({ path, pid, writerAlive: existsSync(join(procRoot, String(pid))), mtimeMs: st.mtimeMs });
        } catch {
          // vanished: its writer finished
        }
      }
      return out;
    }),
  );
  return found.flat().sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}
