/**
 * One reconciler at a time per Mosaic home. The lock is a file created with O_EXCL holding the owner's pid,
 * host and command; a lock whose owner process is gone (same host) is stale and taken over.
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { link, rename, rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { UserError } from '../errors.js';
import { assertNoLink, homeOfStateDir, mkdirNoFollow, openNoFollow, readFileNoFollow } from './safe-path.js';

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

/**
 * Remove a stale lock without removing a fresh one: two reconcilers can find the same dead owner at once, and the
 * first may already have taken the lock when the second acts. So the file is first renamed aside (atomic), then
 * checked: if what was moved is not the dead owner's record, it is somebody's live lock and is put back.
 */
async function takeOverStale(path: string, dead: LockOwner): Promise<void> {
  const aside = `${path}.stale-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    await rename(path, aside);
  } catch {
    return; // already gone: somebody else took it over
  }
  const moved = await readOwner(aside);
  if (moved !== null && (moved.pid !== dead.pid || moved.since !== dead.since)) {
    // A live lock: restore it, unless a third reconciler already holds a new one (then it keeps the lock).
    await link(aside, path).catch(() => undefined);
  }
  await rm(aside, { force: true });
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
  for (;;) {
    try {
      const fh = await openNoFollow(path, constants.O_CREAT | constants.O_EXCL, 0o644);
      try {
        await fh.writeFile(`${JSON.stringify(me)}\n`);
        await fh.sync();
      } finally {
        await fh.close();
      }
      let released = false;
      return {
        path,
        async release() {
          if (released) return;
          released = true;
          const owner = await readOwner(path);
          if (owner?.pid === process.pid) await rm(path, { force: true });
        },
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    // O_EXCL fails on a link as on a file; a link is nobody's lock: refuse it rather than wait, read or remove it.
    await assertNoLink(home, path);
    const owner = await readOwner(path);
    if (owner && owner.host === me.host && !alive(owner.pid)) {
      // The owner died without releasing (crash, SIGKILL): the lock is stale.
      await takeOverStale(path, owner);
      continue;
    }
    if (owner === null) {
      // Being written right now, or garbage: give the writer a moment, then treat garbage as stale.
      await sleep(50);
      const again = await readOwner(path);
      if (again === null && Date.now() > deadline) await rm(path, { force: true });
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
