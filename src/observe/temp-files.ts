/**
 * Find the fleet writers' temp files (src/base/temp-files.ts) in the fleet's own directories. Read-only: names
 * and `lstat` only, no file is opened; a directory behind a link is not listed (links are refused elsewhere).
 */
import { existsSync, lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { findLinkSync } from '../base/safe-path.js';
import type { ObservedTempFile } from '../model/observed.js';
import type { FleetPaths } from '../paths.js';
import { tempDirs, tempWriterPid } from '../base/temp-files.js';

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
