/**
 * The desired fleet of manifests that did not change, without parsing them again: a no-op `fleet reconcile` or
 * `fleet ps` spent about a sixth of its time reading the 100-agent roster's YAML, checking it against the schema
 * and normalizing it (docs/benchmarks.md).
 *
 * `fleet reconcile` (a real run, under the lock) remembers the fleet it loaded in
 * `fleet/reconciler/desired-cache.json`, keyed by everything the result depends on:
 *   - the code (the bundle's build id: another version may read the same YAML differently),
 *   - the host context (home, Mosaic home, hostname),
 *   - each manifest file's path, device, inode, size, and modification and change times in nanoseconds.
 * Any write to a manifest changes its ctime (which nothing in user space can set back), a new or removed file
 * changes the list, so a stale entry is never used. The files are stat'ed before they are read, so a write
 * during the read leaves a key that no longer matches. Without a build id (the sources run by tsx, the tests'
 * in-process calls) nothing is cached or read.
 *
 * Reading is for every command; an entry that does not parse, does not match or is a link is ignored. Writing
 * is only for `fleet reconcile`, which writes its state anyway: read-only commands never create a file.
 */
import { constants } from 'node:fs';
import { rename, rm, stat } from '../fs-async.js';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { tempPathFor } from '../base/atomic.js';
import { findLink, openNoFollow, readNoFollow } from '../base/safe-path.js';
import type { DesiredFleet, HostContext } from '../model/desired.js';
import { expandInputs } from './files.js';
import { loadDesired } from './load.js';

const CACHE_FILE = 'desired-cache.json';
const FORMAT = 2;

let codeIdentity: string | null = null;

/** The running code's identity (bin/fleet.js passes the bundle's build id); null turns the cache off. */
export function setCodeIdentity(build: string | null): void {
  codeIdentity = build;
}

export function desiredCachePath(stateDir: string): string {
  return join(stateDir, CACHE_FILE);
}

/** The key of these inputs as they are now, or null when they cannot be cached (no build id, a problem). */
async function keyOf(inputs: readonly string[], ctx: HostContext): Promise<string | null> {
  if (codeIdentity === null) return null;
  const { files, diagnostics } = await expandInputs(inputs);
  if (diagnostics.length > 0 || files.length === 0) return null;
  const stats: string[][] = [];
  for (const file of files) {
    try {
      const st = await stat(file, { bigint: true });
      if (!st.isFile()) return null;
      stats.push([file, `${st.dev}`, `${st.ino}`, `${st.size}`, `${st.mtimeNs}`, `${st.ctimeNs}`]);
    } catch {
      return null;
    }
  }
  // The key is this text itself, not a digest of it: a few hundred bytes per manifest, and `fleet ps` then never
  // loads node:crypto (≈ 13 ms).
  return JSON.stringify([FORMAT, codeIdentity, inputs, ctx, stats]);
}

interface CacheEntry {
  key: string;
  desired: DesiredFleet;
}

async function readEntry(stateDir: string, home: string): Promise<CacheEntry | null> {
  const path = desiredCachePath(stateDir);
  try {
    if ((await findLink(home, path)) !== null) return null;
    const r = await readNoFollow(path);
    if (r.kind !== 'file') return null;
    const entry = JSON.parse(r.content) as Partial<CacheEntry>;
    if (typeof entry.key !== 'string' || typeof entry.desired !== 'object' || entry.desired === null)
      return null;
    return entry as CacheEntry;
  } catch {
    return null;
  }
}

export interface LoadedDesired {
  desired: DesiredFleet;
  /** The inputs' key when the result may be remembered (null: not cacheable); `hit`: it came from the cache. */
  key: string | null;
  hit: boolean;
}

/**
 * loadDesired, answered from the cache when the manifests are exactly those it was made from. Throws exactly
 * what loadDesired throws (a cache entry is only ever made from a valid fleet).
 */
export async function loadDesiredCached(
  inputs: string[],
  ctx: HostContext,
  stateDir: string,
): Promise<LoadedDesired> {
  const key = await keyOf(inputs, ctx).catch(() => null);
  if (key !== null) {
    const entry = await readEntry(stateDir, ctx.mosaicHome);
    if (entry !== null && entry.key === key) return { desired: entry.desired, key, hit: true };
  }
  return { desired: await loadDesired(inputs, ctx), key, hit: false };
}

/**
 * Remember a freshly loaded fleet (best effort: a failure only costs the next run a parse). A temp file and a
 * rename, never through a link; the temp name is the reconciler's own, so one left by a crash is cleaned up.
 */
export async function rememberDesired(stateDir: string, home: string, loaded: LoadedDesired): Promise<void> {
  if (loaded.hit || loaded.key === null) return;
  const text = `${JSON.stringify({ key: loaded.key, desired: loaded.desired })}\n`;
  // Only what JSON gives back exactly (no undefined, Infinity or NaN in it): a hit must be this very fleet.
  if (!isDeepStrictEqual((JSON.parse(text) as CacheEntry).desired, loaded.desired)) return;
  const path = desiredCachePath(stateDir);
  const tmp = tempPathFor(path);
  try {
    if ((await findLink(home, path)) !== null) return;
    const fh = await openNoFollow(tmp, constants.O_CREAT | constants.O_EXCL, 0o600);
    try {
      await fh.writeFile(text, 'utf8');
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch {
    await rm(tmp, { force: true }).catch(() => undefined);
  }
}
