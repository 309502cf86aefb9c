/**
 * One reconciler at a time per Mosaic home. The lock is a file created with O_EXCL holding the owner's pid,
 * host and command; a lock whose owner process is gone (same host) is stale and taken over.
 */
import { link, lstat, rename, rm } from '../fs-async.js';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { storageError, UserError } from '../errors.js';
import { writeTemp } from '../base/atomic.js';
import { assertNoLink, homeOfStateDir, mkdirNoFollow, readFileNoFollow } from '../base/safe-path.js';

export interface LockOwner {
  pid: number;
  host: string;
  command: string;
  since: string;
}

export interface Lock {
  path: string;
  release(): Promise<void>;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function readOwner(path: string): Promise<LockOwner | null> {
  try {
    const owner = JSON.parse((await readFileNoFollow(path)) ?? '') as Partial<LockOwner> | null;
    // Anything but an owner record is garbage (a torn write, a hand edit): treated like an unreadable file.
    if (typeof owner !== 'object' || owner === null || typeof owner.pid !== 'number') return null;
    return {
      pid: owner.pid,
      host: String(owner.host ?? ''),
      command: String(owner.command ?? ''),
      since: String(owner.since ?? ''),
    };
  } catch {
    return null;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function errno(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | null)?.code;
}

/** The inode at `path` (not following a link), or null when nothing is there. */
async function inodeAt(path: string): Promise<number | null> {
  try {
    return (await lstat(path)).ino;
  } catch (error) {
    if (errno(error) === 'ENOENT') return null;
    throw error;
  }
}

/**
 * A file holding `content`, complete and synced, under a temp name next to `path` (the atomic writer's own, so
 * one left by a killed run is swept like the others, and none is left by a full disk: src/base/atomic.ts).
 */
function completeTemp(path: string, content: string): Promise<{ tmp: string; ino: number }> {
  return writeTemp(path, content, 0o644);
}

/**
 * Create `path` holding `content` if nothing is there, in one step: the content is written to a temp file first
 * and hard-linked into place (link() fails when anything, a link included, stands at `path`). So a lock is never
 * seen empty or half-written, which a contender could mistake for garbage and remove.
 */
async function createComplete(path: string, content: string): Promise<number | null> {
  const { tmp, ino } = await completeTemp(path, content);
  try {
    await link(tmp, path);
    return ino;
  } catch (error) {
    if (errno(error) === 'EEXIST') return null;
    throw storageError(error, path);
  } finally {
    await rm(tmp, { force: true });
  }
}

/**
 * Replace the stale lock (the file with inode `staleIno`) with our own, without ever removing a live one. Two
 * reconcilers can judge the same lock stale; the first may have taken it over before the second acts. So a
 * takeover happens only under a second, short-lived lock (`lock.takeover`): its holder checks that `lock` is still
 * the very file judged stale (same inode) and renames its own complete lock file over it. Nothing else ever
 * replaces an existing lock file, and a new one is created only where none is, so the check cannot go stale
 * between the look and the rename. (The old way, renaming the stale file aside, left a moment with no lock file
 * at all, and could move a just-created live lock aside: the flaky "exactly one of many" test.)
 */
async function takeOverStale(path: string, staleIno: number, content: string): Promise<number | null> {
  const mutex = `${path}.takeover`;
  if ((await createComplete(mutex, content)) === null) {
    await clearDeadMutex(mutex);
    return null;
  }
  try {
    const ino = await inodeAt(path);
    if (ino === null) return await createComplete(path, content);
    if (ino !== staleIno) return null; // taken over (or released and taken) since it was judged
    const mine = await completeTemp(path, content);
    try {
      await rename(mine.tmp, path);
    } catch (error) {
      await rm(mine.tmp, { force: true });
      throw storageError(error, path);
    }
    return mine.ino;
  } finally {
    await rm(mutex, { force: true });
  }
}

/**
 * A takeover lock whose owner died (killed in the few milliseconds it is held): removed once it is also older
 * than a few seconds, so a live takeover is never cut short.
 */
async function clearDeadMutex(mutex: string): Promise<void> {
  try {
    const st = await lstat(mutex);
    const owner = await readOwner(mutex);
    if (Date.now() - st.mtimeMs < 5_000) return;
    if (owner !== null && (owner.host !== hostname() || alive(owner.pid))) return;
    if ((await inodeAt(mutex)) === st.ino) await rm(mutex, { force: true });
  } catch {
    // gone already
  }
}

/** Take the lock, waiting up to `waitMs` for another reconciler to finish; then fail naming the holder. */
export async function acquireLock(stateDir: string, command: string, waitMs = 10_000): Promise<Lock> {
  // The lock is the first thing a run writes: fleet/ or fleet/reconciler/ as a link is refused here, before
  // anything is created through it.
  const home = homeOfStateDir(stateDir);
  await mkdirNoFollow(home, stateDir);
  const path = join(stateDir, 'lock');
  const me: LockOwner = { pid: process.pid, host: hostname(), command, since: new Date().toISOString() };
  const deadline = Date.now() + waitMs;
  const content = `${JSON.stringify(me)}\n`;
  /** The lock, held: released only while the lock file is still the very file we placed. */
  const held = (ino: number): Lock => {
    let released = false;
    return {
      path,
      async release() {
        if (released) return;
        released = true;
        if ((await inodeAt(path)) === ino) await rm(path, { force: true });
      },
    };
  };
  for (;;) {
    // O_EXCL-like: link() fails on an existing file and on a link alike.
    const created = await createComplete(path, content);
    if (created !== null) return held(created);
    // A link is nobody's lock: refuse it rather than wait, read or remove it.
    await assertNoLink(home, path);
    // Which file the owner record came from: a takeover replaces exactly that file, or nothing.
    const ino = await inodeAt(path);
    if (ino === null) continue; // released in the meantime
    const owner = await readOwner(path);
    if ((await inodeAt(path)) !== ino) continue; // replaced while being read
    if (owner && owner.host === me.host && !alive(owner.pid)) {
      // The owner died without releasing (crash, SIGKILL): the lock is stale.
      const mine = await takeOverStale(path, ino, content);
      if (mine !== null) return held(mine);
      await sleep(10 + Math.random() * 20);
      continue;
    }
    if (owner === null) {
      // A lock file is created complete, so this is garbage (a hand edit, a disk problem): once the wait is over
      // it is treated as stale.
      const mine = Date.now() > deadline ? await takeOverStale(path, ino, content) : null;
      if (mine !== null) return held(mine);
      await sleep(50);
      continue;
    }
    if (Date.now() >= deadline) {
      throw new UserError(
        `another reconciler holds the lock ${path}: pid ${owner.pid} on ${owner.host} (${owner.command}, since ${owner.since})`,
      );
    }
    await sleep(100);
  }
}
