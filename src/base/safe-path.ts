/**
 * Never through a link. Every file the reconciler writes, renames, archives or backs up lives under the Mosaic
 * home or directly in the unit directory; a symbolic link anywhere between that root and the file (or as the
 * file itself) could send a write, a rename or a copy somewhere else: into another user's file, out of the home,
 * or the content of a file outside the home into a backup and a dry-run diff. So a link where a file or
 * directory of ours belongs is refused, with an error naming it, and never followed, replaced or read.
 *
 * The operator's manifests are not ours and may be links (they are only read). The root itself (the home, the
 * unit directory) may be a link too: where it lives is the operator's choice, below it is ours.
 *
 * How: directories are checked with lstat component by component (and created one at a time, checked again
 * after); the file itself is opened with O_NOFOLLOW, so even a link that appears after the check is not
 * followed. A rename replaces a link rather than following it, so the atomic writer's last step is safe anyway.
 */
import { closeSync, constants, fstatSync, lstatSync, openSync, readFileSync, readlinkSync } from 'node:fs';
import { lstat, mkdir, open, readlink, type FileHandle } from '../fs-async.js';
import { dirname, isAbsolute, join, relative, sep } from 'node:path';
import { storageError, UserError } from '../errors.js';

export interface FoundLink {
  /** Where the link is: a path the reconciler writes, or a directory on the way to one. */
  path: string;
  /** What it points to (read with readlink; the target itself is never opened). */
  target: string;
}

function oneLine(links: readonly FoundLink[]): string {
  const named = links.map((l) => `${l.path} -> ${l.target}`).join('; ');
  const what = links.length === 1 ? 'a symbolic link stands' : 'symbolic links stand';
  return (
    `refusing to follow ${links.length === 1 ? 'a link' : 'links'}: ${named} (${what} where a file or directory ` +
    'of the fleet belongs; replace it with the real file or directory, then run again)'
  );
}

/** A link where a file or directory of the fleet belongs: refused, exit 1, nothing written. */
export class LinkRefusedError extends UserError {
  override name = 'LinkRefusedError';
  constructor(readonly links: readonly FoundLink[]) {
    super(oneLine(links));
  }
}

function code(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | null)?.code;
}

async function linkAt(path: string): Promise<FoundLink> {
  return { path, target: await readlink(path).catch(() => '?') };
}

/** `path` relative to `root` as components, or null when `path` is not strictly below `root`. */
function below(root: string, path: string): string[] | null {
  const rel = relative(root, path);
  if (rel === '' || rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel)) return null;
  return rel.split(sep);
}

/**
 * The first symbolic link on the way from `root` (exclusive) to `path` (inclusive), or null. A component that
 * does not exist ends the walk: nothing below it exists either, so nothing there can be a link. A `path` not
 * below `root` is checked by itself only.
 */
export async function findLink(root: string, path: string): Promise<FoundLink | null> {
  for (const step of stepsTo(root, path)) {
    try {
      if ((await lstat(step)).isSymbolicLink()) return linkAt(step);
    } catch (error) {
      if (code(error) === 'ENOENT' || code(error) === 'ENOTDIR') return null;
      throw error;
    }
  }
  return null;
}

/** The paths findLink checks, in order: each component below `root` down to `path`, or `path` alone. */
function stepsTo(root: string, path: string): string[] {
  const parts = below(root, path);
  if (parts === null) return [path];
  const steps: string[] = [];
  let cur = root;
  for (const part of parts) {
    cur = join(cur, part);
    steps.push(cur);
  }
  return steps;
}

/**
 * findLink, synchronously: for observation, which reads hundreds of small files in one batch while its spawns
 * run, where a promise per step would cost more than the system calls.
 */
export function findLinkSync(root: string, path: string): FoundLink | null {
  for (const step of stepsTo(root, path)) {
    try {
      if (lstatSync(step).isSymbolicLink()) return linkAtSync(step);
    } catch (error) {
      if (code(error) === 'ENOENT' || code(error) === 'ENOTDIR') return null;
      throw error;
    }
  }
  return null;
}

function linkAtSync(path: string): FoundLink {
  try {
    return { path, target: readlinkSync(path) };
  } catch {
    return { path, target: '?' };
  }
}

/** Every link found on the ways to `paths` (each link once, in the order found). */
export async function findLinks(root: string, paths: readonly string[]): Promise<FoundLink[]> {
  const found = await Promise.all(paths.map((p) => findLink(root, p)));
  const seen = new Map<string, FoundLink>();
  for (const f of found) if (f !== null && !seen.has(f.path)) seen.set(f.path, f);
  return [...seen.values()];
}

/** Throw LinkRefusedError naming every link given; nothing when there is none. */
export function refuseLinks(links: readonly FoundLink[]): void {
  if (links.length > 0) throw new LinkRefusedError(links);
}

/** Refuse when anything from `root` down to `path` is a link. */
export async function assertNoLink(root: string, path: string): Promise<void> {
  const link = await findLink(root, path);
  if (link !== null) throw new LinkRefusedError([link]);
}

/**
 * Create `dir` (and the directories between `root` and it) one component at a time, refusing a link at any of
 * them. The root is created as usual if missing (its place is the operator's). Directories get `mode` (umask
 * applies, as for any mkdir).
 */
export async function mkdirNoFollow(root: string, dir: string, mode = 0o755): Promise<void> {
  const parts = below(root, dir);
  if (parts === null) {
    await mkdir(dir, { recursive: true, mode });
    return;
  }
  await mkdir(root, { recursive: true, mode });
  let cur = root;
  for (const part of parts) {
    cur = join(cur, part);
    try {
      await mkdir(cur, { mode });
    } catch (error) {
      if (code(error) !== 'EEXIST') throw storageError(error, cur);
    }
    const st = await lstat(cur);
    if (st.isSymbolicLink()) throw new LinkRefusedError([await linkAt(cur)]);
    if (!st.isDirectory()) throw new UserError(`${cur} is not a directory (the fleet keeps its files there)`);
  }
}

export type NoFollowRead =
  | { kind: 'file'; content: string; mode: number }
  | { kind: 'missing' }
  | { kind: 'link'; link: FoundLink }
  /** Something else stands there (a directory, a socket, a FIFO): not a file, and not read. */
  | { kind: 'other' };

/**
 * Read a file without following a link at its last component (O_NOFOLLOW) and without blocking on a FIFO
 * (O_NONBLOCK). The directories on the way are the caller's to check (findLink).
 */
export async function readNoFollow(path: string): Promise<NoFollowRead> {
  let fh: FileHandle;
  try {
    fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (error) {
    const c = code(error);
    if (c === 'ENOENT' || c === 'ENOTDIR') return { kind: 'missing' };
    if (c === 'ELOOP') return { kind: 'link', link: await linkAt(path) };
    if (c === 'ENXIO' || c === 'EISDIR') return { kind: 'other' };
    throw error;
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) return { kind: 'other' };
    return { kind: 'file', content: await fh.readFile('utf8'), mode: st.mode & 0o7777 };
  } finally {
    await fh.close();
  }
}

/** readNoFollow, synchronously (see findLinkSync). */
export function readNoFollowSync(path: string): NoFollowRead {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (error) {
    const c = code(error);
    if (c === 'ENOENT' || c === 'ENOTDIR') return { kind: 'missing' };
    if (c === 'ELOOP') return { kind: 'link', link: linkAtSync(path) };
    if (c === 'ENXIO' || c === 'EISDIR') return { kind: 'other' };
    throw error;
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) return { kind: 'other' };
    return { kind: 'file', content: readFileSync(fd, 'utf8'), mode: st.mode & 0o7777 };
  } finally {
    closeSync(fd);
  }
}

/** The file's content, null when it does not exist; a link is refused (LinkRefusedError), never read. */
export async function readFileNoFollow(path: string): Promise<string | null> {
  const r = await readNoFollow(path);
  switch (r.kind) {
    case 'file':
      return r.content;
    case 'missing':
      return null;
    case 'link':
      throw new LinkRefusedError([r.link]);
    case 'other':
      throw new UserError(`${path} is not a regular file`);
  }
}

/** Open for writing without following a link at the last component. `flags` are added to O_WRONLY|O_NOFOLLOW. */
export async function openNoFollow(path: string, flags: number, mode: number): Promise<FileHandle> {
  try {
    return await open(path, constants.O_WRONLY | constants.O_NOFOLLOW | flags, mode);
  } catch (error) {
    if (code(error) === 'ELOOP') throw new LinkRefusedError([await linkAt(path)]);
    throw error;
  }
}

/**
 * Append `text` to `root`/…/`path`, creating it with `mode`; no link on the way or at the file is followed. An
 * append the disk cut short is cut back off (a torn line would swallow the next one too), and the error names
 * the file (src/errors.ts).
 */
export async function appendNoFollow(root: string, path: string, text: string, mode: number): Promise<void> {
  await mkdirNoFollow(root, dirname(path));
  let fh: FileHandle;
  try {
    fh = await openNoFollow(path, constants.O_APPEND | constants.O_CREAT, mode);
  } catch (error) {
    throw storageError(error, path);
  }
  try {
    const size = (await fh.stat()).size;
    try {
      await fh.writeFile(text, 'utf8');
    } catch (error) {
      await fh.truncate(size).catch(() => undefined);
      throw storageError(error, path);
    }
  } finally {
    await fh.close();
  }
}

/**
 * The Mosaic home a state directory belongs to: the state directory is always `<home>/fleet/reconciler`
 * (src/paths.ts), and the home is where the no-link rule starts.
 */
export function homeOfStateDir(stateDir: string): string {
  return dirname(dirname(stateDir));
}

/** The root a managed path is checked from: the longest of `roots` it lies below, else its own directory. */
export function rootFor(path: string, roots: readonly string[]): string {
  let best: string | null = null;
  for (const r of roots) if (below(r, path) !== null && (best === null || r.length > best.length)) best = r;
  return best ?? dirname(path);
}
