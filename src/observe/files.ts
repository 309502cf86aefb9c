/**
 * Files the reconciler manages or judges, read without spawning: unit files, env files, framework tools,
 * the shipped schema copy, heartbeats, the reconciler's state file, linger. Missing things are data
 * (content null, an empty state), never exceptions: the planner decides what absence means.
 *
 * The reads are synchronous, in one batch: they are a few hundred small local files, read while observation's
 * spawns run, and a promise per file (open, stat, read, close each a round trip through the thread pool) cost
 * more than the system calls themselves. The functions stay async for their callers.
 */
import { readdirSync, statSync, type Dirent } from 'node:fs';
import { join, relative } from 'node:path';
import { findLinkSync, readNoFollowSync } from '../base/safe-path.js';
import { heartbeatAgent, heartbeatKeys, heartbeatTs } from '../base/heartbeat.js';
import type {
  AlertEpisode,
  BackoffEntry,
  ObservedFile,
  ObservedHeartbeat,
  ReconcilerState,
  WorktreeRecord,
} from '../model/observed.js';

/**
 * A managed file, never read through a link: a link at the file (or, with `root`, at a directory between `root`
 * and it) comes back as `{ content: null, link: target }`, its target unread, for the caller to report.
 */
export function readObservedFile(path: string, root?: string): Promise<ObservedFile> {
  return Promise.resolve(readObservedFileSync(path, root));
}

export function readObservedFileSync(path: string, root?: string): ObservedFile {
  try {
    const dirLink = root === undefined ? null : findLinkSync(root, path);
    if (dirLink !== null) return { path: dirLink.path, content: null, mode: null, link: dirLink.target };
    const r = readNoFollowSync(path);
    if (r.kind === 'file') return { path, content: r.content, mode: r.mode };
    if (r.kind === 'link') return { path, content: null, mode: null, link: r.link.target };
    return { path, content: null, mode: null };
  } catch {
    return { path, content: null, mode: null };
  }
}

function list(dir: string): string[] {
  try {
    return readdirSync(dir).sort();
  } catch {
    return [];
  }
}

/** `dir`'s entries with their types (from the directory itself: no lstat per file), sorted by name. */
function listTyped(dir: string): Dirent[] {
  try {
    return readdirSync(dir, { withFileTypes: true }).sort((a, b) =>
      a.name < b.name ? -1 : a.name > b.name ? 1 : 0,
    );
  } catch {
    return [];
  }
}

/** readDirFilesSync, as a promise. */
export function readDirFiles(
  dir: string,
  keep: (name: string) => boolean,
  root?: string,
): Promise<ObservedFile[]> {
  return Promise.resolve(readDirFilesSync(dir, keep, root));
}

/**
 * Every regular file in `dir` whose name passes `keep`; a symbolic link among them comes back with `link` set
 * (dangling or not), never followed. With `root`, a link between `root` and `dir` is returned alone: the
 * directory behind it is not listed.
 */
export function readDirFilesSync(
  dir: string,
  keep: (name: string) => boolean,
  root?: string,
): ObservedFile[] {
  const dirLink = root === undefined ? null : findLinkSync(root, dir);
  if (dirLink !== null) return [{ path: dirLink.path, content: null, mode: null, link: dirLink.target }];
  const files: ObservedFile[] = [];
  for (const entry of listTyped(dir)) {
    if (!keep(entry.name)) continue;
    if (!entry.isFile() && !entry.isSymbolicLink()) continue;
    files.push(readObservedFileSync(join(dir, entry.name)));
  }
  return files;
}

/** readTreeSync, as a promise. */
export function readTree(dir: string, root?: string): Promise<ObservedFile[]> {
  return Promise.resolve(readTreeSync(dir, root));
}

/**
 * Every file under `dir`, recursively (the framework tools tree is small). Links are not followed: a link (to a
 * file or a directory) comes back with `link` set; with `root`, so does a link between `root` and `dir`.
 */
export function readTreeSync(dir: string, root?: string): ObservedFile[] {
  const dirLink = root === undefined ? null : findLinkSync(root, dir);
  if (dirLink !== null) return [{ path: dirLink.path, content: null, mode: null, link: dirLink.target }];
  const out: ObservedFile[] = [];
  const walk = (d: string): void => {
    for (const entry of listTyped(d)) {
      const path = join(d, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.isFile() || entry.isSymbolicLink()) out.push(readObservedFileSync(path));
    }
  };
  walk(dir);
  out.sort((a, b) => (relative(dir, a.path) < relative(dir, b.path) ? -1 : 1));
  return out;
}

/**
 * A heartbeat as observed (the format and its one parser: src/base/heartbeat.ts). A file without a numeric `ts`
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
  const keys = heartbeatKeys(content);
  const ts = heartbeatTs(keys);
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

/** Every agent's heartbeat file in `runDir`, parsed. */
export function readHeartbeatsSync(runDir: string, nowMs: number): Record<string, ObservedHeartbeat> {
  const out: Record<string, ObservedHeartbeat> = {};
  // `.name.hb.<pid>` temp files of an atomic writer are not heartbeats.
  for (const name of list(runDir)) {
    const agent = heartbeatAgent(name);
    if (agent === null) continue;
    const path = join(runDir, name);
    let content: string | null;
    try {
      // Not through a link: its target's lines would be shown as heartbeat keys.
      const r = readNoFollowSync(path);
      // It exists (readdir said so) but is no readable file (a directory, a link): unknown health, not absence.
      content = r.kind === 'file' ? r.content : r.kind === 'missing' ? null : '';
    } catch {
      content = '';
    }
    out[agent] = withRecord(parseHeartbeat(agent, path, content, nowMs));
  }
  return out;
}

/**
 * The size and modification time of the runtime's own record (the `transcript=` its hooks name): one stat per
 * agent, no read, so an alert can tell a busy agent making progress from a wedged one (src/alerts/judge.ts).
 */
function withRecord(hb: ObservedHeartbeat): ObservedHeartbeat {
  const file = hb.keys.transcript;
  if (file === undefined || !file.startsWith('/')) return hb;
  try {
    const st = statSync(file, { throwIfNoEntry: false });
    if (st === undefined || !st.isFile()) return { ...hb, record: null };
    return { ...hb, record: { path: file, bytes: st.size, mtimeMs: st.mtimeMs } };
  } catch {
    return { ...hb, record: null };
  }
}

/** readHeartbeatsSync, as a promise. */
export function readHeartbeats(runDir: string, nowMs: number): Promise<Record<string, ObservedHeartbeat>> {
  return Promise.resolve(readHeartbeatsSync(runDir, nowMs));
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

function isDelivery(v: unknown): boolean {
  if (v === null) return true;
  if (typeof v !== 'object') return false;
  const d = v as Record<string, unknown>;
  return (
    (d.status === 'pending' || d.status === 'delivered' || d.status === 'failed') &&
    typeof d.attempts === 'number' &&
    (d.lastAttemptMs === null || typeof d.lastAttemptMs === 'number')
  );
}

function isEpisode(v: unknown): v is AlertEpisode {
  if (typeof v !== 'object' || v === null) return false;
  const e = v as Record<string, unknown>;
  const msOrNull = (x: unknown): boolean => x === null || (typeof x === 'number' && Number.isFinite(x));
  return (
    typeof e.rule === 'string' &&
    typeof e.agent === 'string' &&
    typeof e.condition === 'string' &&
    typeof e.sinceMs === 'number' &&
    msOrNull(e.firedAtMs) &&
    msOrNull(e.resolvedAtMs) &&
    typeof e.detail === 'string' &&
    isDelivery(e.fire) &&
    isDelivery(e.resolve)
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
    worktrees?: unknown;
    alerts?: unknown;
    budgetWarned?: unknown;
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
  const pending = timesByName(d.restartPending);
  if (pending !== null) state.restartPending = pending;
  const warned = timesByName(d.budgetWarned);
  if (warned !== null) state.budgetWarned = warned;
  const worktrees = parseWorktreeRecords(d.worktrees);
  if (worktrees !== null) state.worktrees = worktrees;
  // Kept as found (every writer of the state carries it through); a malformed entry is dropped, not fatal.
  if (Array.isArray(d.alerts)) {
    const episodes = d.alerts.filter(isEpisode);
    if (episodes.length > 0) state.alerts = episodes;
  }
  return state;
}

/** A record of unix ms by name; null when absent or empty (bad values dropped). */
function timesByName(value: unknown): Record<string, number> | null {
  if (typeof value !== 'object' || value === null) return null;
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(value)) if (typeof v === 'number' && Number.isFinite(v)) out[k] = v;
  return Object.keys(out).length > 0 ? out : null;
}

function parseWorktreeRecords(value: unknown): Record<string, WorktreeRecord> | null {
  if (typeof value !== 'object' || value === null) return null;
  const out: Record<string, WorktreeRecord> = {};
  for (const [path, v] of Object.entries(value as Record<string, unknown>)) {
    const r = v as Partial<Record<keyof WorktreeRecord, unknown>> | null;
    if (typeof r?.agent === 'string' && typeof r.repo === 'string' && typeof r.branch === 'string')
      out[path] = {
        agent: r.agent,
        repo: r.repo,
        branch: r.branch,
        ...(typeof r.base === 'string' ? { base: r.base } : {}),
        ...(r.pruneBranches === 'merged' ? { pruneBranches: 'merged' as const } : {}),
      };
  }
  return Object.keys(out).length > 0 ? out : null;
}

/** The state file of `stateDir`, parsed (parseState). */
export function readStateSync(stateDir: string): ReconcilerState {
  try {
    // Not through a link (observe reports it): a link's target is no memory of ours.
    const r = readNoFollowSync(join(stateDir, 'state.json'));
    return parseState(r.kind === 'file' ? r.content : null);
  } catch {
    return emptyState();
  }
}

/** readStateSync, as a promise. */
export function readState(stateDir: string): Promise<ReconcilerState> {
  return Promise.resolve(readStateSync(stateDir));
}

/** readLingerSync, as a promise. */
export function readLinger(
  user: string | null,
  lingerDir = '/var/lib/systemd/linger',
): Promise<boolean | null> {
  return Promise.resolve(readLingerSync(user, lingerDir));
}

/**
 * Linger for `user`: true when logind's marker file exists; false when systemd's state dir exists but the
 * marker does not; null when this machine keeps no such state (no systemd, or we cannot tell).
 */
export function readLingerSync(user: string | null, lingerDir = '/var/lib/systemd/linger'): boolean | null {
  if (user === null || user === '') return null;
  try {
    statSync(join(lingerDir, user));
    return true;
  } catch {
    // fall through
  }
  try {
    statSync(join(lingerDir, '..'));
    return false;
  } catch {
    return null;
  }
}
