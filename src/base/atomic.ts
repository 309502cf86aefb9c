/**
 * Atomic file writes: temp file in the same directory, fsync, rename, fsync the directory. A crash mid-apply
 * leaves either the old file or the new one, never half of one; the next run converges.
 */
import { randomHex } from '../crypto-lazy.js';
import { constants } from 'node:fs';
import { mkdir, open, rename, rm } from '../fs-async.js';
import { basename, dirname, join } from 'node:path';
import { storageError } from '../errors.js';
import { assertNoLink, mkdirNoFollow, openNoFollow } from './safe-path.js';

/**
 * The temp file a reconciler write of `path` goes through first: `.<name>.fleet-<pid>-<8 hex>.tmp` beside it, the
 * name src/base/temp-files.ts recognizes as ours (so one left by a killed run is swept).
 */
export function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.fleet-${process.pid}-${randomHex(4)}.tmp`);
}

/**
 * With `root` (the Mosaic home, or the unit directory for a unit file), no symbolic link between `root` and the
 * file, nor the file itself, is followed or replaced: the write is refused with an error naming the link
 * (src/base/safe-path.ts). Without it (a path the operator chose, e.g. `fleet plan --out`), only the file itself
 * must not be a link.
 *
 * With `unsyncedDirs`, the directory is added to it instead of synced: a caller writing many files into one
 * directory syncs it once afterwards (`syncDirs`). The file itself is still synced before the rename, so the
 * write stays atomic; only the rename's durability waits for that one sync.
 */
export async function writeFileAtomic(
  path: string,
  content: string,
  mode: number,
  root?: string,
  unsyncedDirs?: Set<string>,
): Promise<void> {
  const dir = dirname(path);
  try {
    if (root === undefined) await mkdir(dir, { recursive: true });
    else await mkdirNoFollow(root, dir);
    await assertNoLink(root ?? dir, path);
    const { tmp } = await writeTemp(path, content, mode);
    try {
      crashInWrite();
      // rename() replaces whatever stands at `path` and never follows a link there.
      await rename(tmp, path);
    } catch (error) {
      await rm(tmp, { force: true });
      throw error;
    }
  } catch (error) {
    // A full disk, a quota or a read-only mount: one clear line naming the file (src/errors.ts).
    throw storageError(error, path);
  }
  if (unsyncedDirs === undefined) await syncDir(dir);
  else unsyncedDirs.add(dir);
}

/**
 * `content`, complete and synced, in a new temp file beside `path` (tempPathFor) with exactly `mode`; its inode
 * too (the lock links it into place). On any failure the temp file is removed before the error, translated
 * (storageError), is thrown: a full disk leaves nothing behind.
 */
export async function writeTemp(
  path: string,
  content: string,
  mode: number,
): Promise<{ tmp: string; ino: number }> {
  const tmp = tempPathFor(path);
  let fh;
  try {
    // O_EXCL never opens an existing file (nor follows a link planted at the temp name).
    fh = await openNoFollow(tmp, constants.O_CREAT | constants.O_EXCL, mode);
  } catch (error) {
    throw storageError(error, path);
  }
  try {
    try {
      await fh.writeFile(content, 'utf8');
      // The umask may have narrowed the mode given to open(); set exactly what was meant, on the open file.
      await fh.chmod(mode);
      await fh.sync();
      return { tmp, ino: (await fh.stat()).ino };
    } finally {
      await fh.close();
    }
  } catch (error) {
    await rm(tmp, { force: true }).catch(() => undefined);
    throw storageError(error, path);
  }
}

let writes = 0;

/**
 * Test-only fault point: `FLEET_TEST_CRASH_IN_WRITE=k` kills this process with SIGKILL in the k-th atomic write,
 * between the temp file's fsync and the rename: the temp file stays, the target keeps its old content. The
 * crash-injection tests use it to prove the next run removes the temp file and converges (docs/reliability.md).
 */
function crashInWrite(): void {
  const at = process.env.FLEET_TEST_CRASH_IN_WRITE;
  writes++;
  if (at !== undefined && at !== '' && Number(at) === writes) process.kill(process.pid, 'SIGKILL');
}

/** Sync (and forget) every directory a run of writes left unsynced. */
export async function syncDirs(dirs: Set<string>): Promise<void> {
  for (const dir of dirs) await syncDir(dir);
  dirs.clear();
}

export async function syncDir(dir: string): Promise<void> {
  try {
    const fh = await open(dir, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch {
    // Some filesystems refuse fsync on a directory; the rename is still atomic.
  }
}
