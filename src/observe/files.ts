/**
 * Files the reconciler manages or judges, read without spawning: unit files, env files, framework tools,
 * the shipped schema copy, heartbeats, the reconciler's state file, linger. Missing things are data
 * (content null, an empty state), never exceptions: the planner decides what absence means.
 */
import { lstat, readdir, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { findLink, readNoFollow } from '../apply/safe-path.js';
import type { BackoffEntry, ObservedFile, ObservedHeartbeat, ReconcilerState } from '../model/observed.js';

/**
 * A managed file, never read through a link: a link at the file (or, with `root`, at a directory between `root`
 * and it) comes back as `{ content: null, link: target }`, its target unread, for the caller to report.
 */
export async function readObservedFile(path: string, root?: string): Promise<ObservedFile> {
  try {
    const dirLink = root === undefined ? null : await findLink(root, path);
    if (dirLink !== null) return { path: dirLink.path, content: null, mode: null, link: dirLink.target };
    const r = await readNoFollow(path);
    if (r.kind === 'file') return { path, content: r.content, mode: r.mode };
    if (r.kind === 'link') return { path, content: null, mode: null, link: r.link.target };
    return { path, content: null, mode: null };
  } catch {
    return { path, content: null, mode: null };
  }
}

async function list(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).sort();
  } catch {
    return [];
  }
}

/**
 * Every regular file in `dir` whose name passes `keep`; a symbolic link among them comes back with `link` set
 * (dangling or not), never followed. With `root`, a link between `root` and `dir` is returned alone: the
 * directory behind it is not listed.
 */
export async function readDirFiles(
  dir: string,
  keep: (name: string) => boolean,
  root?: string,
): Promise<ObservedFile[]> {
  const dirLink = root === undefined ? null : await findLink(root, dir);
  if (dirLink !== null) return [{ path: dirLink.path, content: null, mode: null, link: dirLink.target }];
  // Read concurrently: hundreds of small files one after another would cost more than every spawn together.
  const read = async (name: string): Promise<ObservedFile | null> => {
    const path = join(dir, name);
    try {
      const st = await lstat(path);
      if (!st.isFile() && !st.isSymbolicLink()) return null;
    } catch {
      return null; // vanished
    }
    return readObservedFile(path);
  };
  const files = await Promise.all((await list(dir)).filter(keep).map(read));
  return files.filter((f): f is ObservedFile => f !== null);
}

/**
 * Every file under `dir`, recursively (the framework tools tree is small). Links are not followed: a link (to a
 * file or a directory) comes back with `link` set; with `root`, so does a link between `root` and `dir`.
 */
export async function readTree(dir: string, root?: string): Promise<ObservedFile[]> {
  const dirLink = root === undefined ? null : await findLink(root, dir);
  if (dirLink !== null) return [{ path: dirLink.path, content: null, mode: null, link: dirLink.target }];
  const out: ObservedFile[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const name of await list(d)) {
      const path = join(d, name);
      let st;
      try {
        st = await lstat(path);
      } catch {
        continue;
      }
      if (st.isDirectory()) await walk(path);
      else if (st.isFile() || st.isSymbolicLink()) out.push(await readObservedFile(path));
    }
  };
  await walk(dir);
  out.sort((a, b) => (relative(dir, a.path) < relative(dir, b.path) ? -1 : 1));
  return out;
}

/**
 * Parse a heartbeat: `ts=<unix seconds>` plus any other `key=value` lines. A file without a numeric `ts`
 * (`ts=x`, empty, garbage) is malformed: health unknown, which the caller reports; it is never an error here.
 */
export function parseHeartbeat(
  agent: string,
  path: string,
  content: string | null,
  nowMs: number,
): ObservedHeartbeat {
  if (content === null)
    return { agent, path, exists: false, ts: null, ageSeconds: null, malformed: false, keys: {} };
  const keys: Record<string, string> = {};
  for (const raw of content.split('\n')) {
    const line = raw.trim();
    const eq = line.indexOf('=');
    if (eq <= 0) continue;
    keys[line.slice(0, eq).trim()] = line.slice(eq + 1).trim();
  }
  const tsText = keys.ts;
  const ts = tsText !== undefined && /^\d+(\.\d+)?$/.test(tsText) ? Number(tsText) : null;
  return {
    agent,
    path,
    exists: true,
    ts,
    // Whole seconds are the heartbeat's own resolution; a clock a little ahead of ours reads as age 0.
    ageSeconds: ts === null ? null : Math.max(0, Math.floor(nowMs / 1000 - ts)),
    malformed: ts === null,
    keys,
  };
}

export async function readHeartbeats(
  runDir: string,
  nowMs: number,
): Promise<Record<string, ObservedHeartbeat>> {
  const out: Record<string, ObservedHeartbeat> = {};
  // `.name.hb.<pid>` temp files of an atomic writer are not heartbeats.
  const names = (await list(runDir)).filter((name) => name.endsWith('.hb') && !name.startsWith('.'));
  const parsed = await Promise.all(
    names.map(async (name) => {
      const agent = name.slice(0, -'.hb'.length);
      const path = join(runDir, name);
      let content: string | null;
      try {
        // Not through a link: its target's lines would be shown as heartbeat keys.
        const r = await readNoFollow(path);
        // It exists (readdir said so) but is no readable file (a directory, a link): unknown health, not absence.
        content = r.kind === 'file' ? r.content : r.kind === 'missing' ? null : '';
      } catch {
        content = '';
      }
      return parseHeartbeat(agent, path, content, nowMs);
    }),
  );
  for (const hb of parsed) out[hb.agent] = hb;
  return out;
}

export function emptyState(): ReconcilerState {
  return { version: 1, written: {}, backoff: {} };
}

function isBackoff(v: unknown): v is BackoffEntry {
  if (typeof v !== 'object' || v === null) return false;
  const e = v as Record<string, unknown>;
  return ['attempts', 'lastAttemptMs', 'nextAttemptMs'].every(
    (k) => typeof e[k] === 'number' && Number.isFinite(e[k]),
  );
}

/**
 * The reconciler's state file. Missing or corrupt means "no memory": the reconciler then treats every file it
 * would write as possibly operator-edited and starts back-off afresh, which is the safe side of both.
 */
export function parseState(text: string | null): ReconcilerState {
  if (text === null) return emptyState();
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    return emptyState();
  }
  if (typeof data !== 'object' || data === null || (data as { version?: unknown }).version !== 1)
    return emptyState();
  const d = data as {
    written?: unknown;
    backoff?: unknown;
    sessionSockets?: unknown;
    restartPending?: unknown;
  };
  const state = emptyState();
  if (typeof d.written === 'object' && d.written !== null) {
    for (const [k, v] of Object.entries(d.written)) if (typeof v === 'string') state.written[k] = v;
  }
  if (typeof d.backoff === 'object' && d.backoff !== null) {
    for (const [k, v] of Object.entries(d.backoff)) if (isBackoff(v)) state.backoff[k] = { ...v };
  }
  if (typeof d.sessionSockets === 'object' && d.sessionSockets !== null) {
    const sockets: Record<string, string[]> = {};
    for (const [k, v] of Object.entries(d.sessionSockets)) {
      if (Array.isArray(v)) sockets[k] = v.filter((x): x is string => typeof x === 'string');
    }
    if (Object.keys(sockets).length > 0) state.sessionSockets = sockets;
  }
  if (typeof d.restartPending === 'object' && d.restartPending !== null) {
    const pending: Record<string, number> = {};
    for (const [k, v] of Object.entries(d.restartPending))
      if (typeof v === 'number' && Number.isFinite(v)) pending[k] = v;
    if (Object.keys(pending).length > 0) state.restartPending = pending;
  }
  return state;
}

export async function readState(stateDir: string): Promise<ReconcilerState> {
  try {
    // Not through a link (observe reports it): a link's target is no memory of ours.
    const r = await readNoFollow(join(stateDir, 'state.json'));
    return parseState(r.kind === 'file' ? r.content : null);
  } catch {
    return emptyState();
  }
}

/**
 * Linger for `user`: true when logind's marker file exists; false when systemd's state dir exists but the
 * marker does not; null when this machine keeps no such state (no systemd, or we cannot tell).
 */
export async function readLinger(
  user: string | null,
  lingerDir = '/var/lib/systemd/linger',
): Promise<boolean | null> {
  if (user === null || user === '') return null;
  try {
    await stat(join(lingerDir, user));
    return true;
  } catch {
    // fall through
  }
  try {
    await stat(join(lingerDir, '..'));
    return false;
  } catch {
    return null;
  }
}
