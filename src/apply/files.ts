/**
 * The file executors: write a managed file (checked against what the plan saw, the operator's edit backed up
 * first) and archive one (a pruned agent's env file, a retired unit). Never through a link.
 */
import { lstat, rename, rm } from '../fs-async.js';
import { basename, dirname, join } from 'node:path';
import type { Action } from '../model/plan.js';
import { sha256Hex } from '../crypto-lazy.js';
import { writeFileAtomic } from '../base/atomic.js';
import { storageError } from '../errors.js';
import {
  findLinks,
  homeOfStateDir,
  mkdirNoFollow,
  readNoFollow,
  refuseLinks,
  rootFor,
} from '../base/safe-path.js';
import { envSocket, forgetSockets, recordSocket, rootsOf, type ApplyContext } from './context.js';

async function currentContent(path: string): Promise<string | null> {
  const r = await readNoFollow(path);
  if (r.kind === 'link') refuseLinks([r.link]);
  if (r.kind === 'other') throw new Error(`${path} is not a regular file`);
  return r.kind === 'file' ? r.content : null;
}

function stampOf(ms: number): string {
  return new Date(ms).toISOString().replace(/[:.]/g, '-');
}

/**
 * `unsyncedDirs`: directories a file write left for the caller to sync once after a run of writes (an apply of
 * N new agents writes N env files into one directory: N directory syncs cost as much as the files' own).
 */
export async function writeFileAction(
  a: Extract<Action, { kind: 'write-file' }>,
  ctx: ApplyContext,
  unsyncedDirs: Set<string>,
): Promise<{ backupPath?: string }> {
  // Check before acting: the file must still be what the plan saw, or we would overwrite an edit made since.
  const now = await currentContent(a.path);
  if (now !== a.before) {
    throw new Error(`${a.path} changed since the plan was made; run reconcile again`);
  }
  let backupPath: string | undefined;
  if (a.backup && now !== null) {
    // The bytes just read (not a copy by path, which would follow a link): private, like the state dir.
    const dir = join(ctx.stateDir, 'backups');
    backupPath = join(dir, `${basename(a.path)}.${stampOf(ctx.nowMs)}.bak`);
    await writeFileAtomic(backupPath, now, 0o600, homeOfStateDir(ctx.stateDir));
  }
  await writeFileAtomic(a.path, a.after, a.mode, rootFor(a.path, rootsOf(ctx)), unsyncedDirs);
  ctx.state.written[a.path] = sha256Hex(a.after);
  if (a.role === 'env' && a.agent !== null) {
    const socket = envSocket(a.after);
    if (socket !== null) recordSocket(ctx, a.agent, socket);
  }
  return backupPath === undefined ? {} : { backupPath };
}

export async function archiveFileAction(
  a: Extract<Action, { kind: 'archive-file' }>,
  ctx: ApplyContext,
): Promise<void> {
  const roots = rootsOf(ctx);
  const exists = await lstat(a.path).then(
    () => true,
    () => false,
  );
  if (!exists) return;
  // Neither the file nor the archive may be (or lie behind) a link: a rename or copy would go through it.
  refuseLinks([
    ...(await findLinks(rootFor(a.path, roots), [a.path])),
    ...(await findLinks(rootFor(a.to, roots), [a.to])),
  ]);
  await mkdirNoFollow(rootFor(a.to, roots), dirname(a.to));
  try {
    await rename(a.path, a.to);
  } catch (error) {
    // The unit dir and the Mosaic home may be on different filesystems: copy, then remove the original.
    if ((error as NodeJS.ErrnoException).code !== 'EXDEV') throw storageError(error, a.to);
    const r = await readNoFollow(a.path);
    if (r.kind === 'link') refuseLinks([r.link]);
    if (r.kind !== 'file') throw new Error(`${a.path} is not a regular file`);
    await writeFileAtomic(a.to, r.content, r.mode, rootFor(a.to, roots));
    await rm(a.path);
  }
  delete ctx.state.written[a.path];
  // A pruned agent's env file is archived only after its session was ended (or never found): forget its sockets.
  if (a.agent !== null && a.path.endsWith('.env')) forgetSockets(ctx, a.agent);
}
