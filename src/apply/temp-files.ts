/**
 * Remove the leftover temp files the planner's rule picked (src/base/temp-files.ts), under the lock. Each is
 * checked again just before: still a regular file with one of our temp names, no link between its root and it.
 * Never throws: a file that cannot be removed stays, and the next run tries again.
 */
import { lstat, unlink } from '../fs-async.js';
import { basename, dirname } from 'node:path';
import type { ObservedTempFile } from '../model/observed.js';
import type { FleetPaths } from '../paths.js';
import { tempDirs, tempWriterPid } from '../base/temp-files.js';
import { findLink } from '../base/safe-path.js';

export interface TempRemoval {
  path: string;
  /** null when removed (or already gone); else why it stays. */
  error: string | null;
}

export async function removeLeftoverTemps(
  paths: FleetPaths,
  temps: readonly ObservedTempFile[],
): Promise<TempRemoval[]> {
  const dirs = tempDirs(paths);
  const out: TempRemoval[] = [];
  for (const t of temps) {
    const where = dirs.find((d) => d.dir === dirname(t.path));
    // Only in our own directories, only our own names (the observation said so; say it again here).
    if (where === undefined || tempWriterPid(where.kind, basename(t.path)) === null) continue;
    try {
      if ((await findLink(where.root, t.path)) !== null) {
        out.push({ path: t.path, error: 'a symbolic link is on its way; left alone' });
        continue;
      }
      if (!(await lstat(t.path)).isFile()) continue;
      await unlink(t.path);
      out.push({ path: t.path, error: null });
    } catch (error) {
      const code = (error as NodeJS.ErrnoException | null)?.code;
      if (code === 'ENOENT') continue; // its writer finished after all
      out.push({ path: t.path, error: error instanceof Error ? error.message : String(error) });
    }
  }
  return out;
}
