/**
 * Stable hashing of plan inputs. Pure (node:crypto is computation, not I/O).
 */
import { sha256Hex } from '../crypto-lazy.js';
import { assertNever } from '../errors.js';
import type { Observed } from '../model/observed.js';
import type { Action } from '../model/plan.js';

export function sha256(text: string): string {
  // One-shot: a plan hashes every managed file (thousands at a large fleet); a Hash object per call costs more
  // than the hashing.
  return sha256Hex(text);
}

/**
 * Hashes of managed files' contents, remembered: a plan hashes every file for its digest and again for its patch,
 * on every run and, in watch mode, every resync, while the files seldom change. Bounded: oldest out first.
 */
const contentHashes = new Map<string, string>();
const CONTENT_HASHES_MAX = 4096;

/** sha256 of a file's content (remembered: contentHashes). */
export function contentSha256(text: string): string {
  let h = contentHashes.get(text);
  if (h === undefined) {
    h = sha256(text);
    if (contentHashes.size >= CONTENT_HASHES_MAX)
      contentHashes.delete(contentHashes.keys().next().value as string);
    contentHashes.set(text, h);
  }
  return h;
}

/** JSON with sorted object keys, so equal data always hashes the same. */
export function stableStringify(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      const entries = Object.entries(v as Record<string, unknown>).sort(([a], [b]) =>
        a < b ? -1 : a > b ? 1 : 0,
      );
      return Object.fromEntries(entries);
    }
    return v;
  });
}

/**
 * What a list of actions would do, without what changes between two plans of the same situation (reasons, archive
 * time stamps, file contents before the write): `fleet apply` re-plans and refuses when this differs from the
 * saved plan's, e.g. a pane that drifted since the plan was made.
 */
export function actionsDigest(actions: readonly Action[]): string {
  return sha256(
    stableStringify(
      actions.map((a) => {
        switch (a.kind) {
          case 'write-file':
            return [a.kind, a.path, a.mode, sha256(a.after)];
          case 'archive-file':
            return [a.kind, a.path];
          case 'daemon-reload':
            return [a.kind];
          case 'enable':
          case 'disable':
          case 'start':
          case 'restart':
          case 'stop':
            return [a.kind, a.unit];
          case 'respawn':
            return [a.kind, a.unit];
          case 'kill-session':
            return [a.kind, a.socketName, a.session];
          case 'worktree-add':
            return [a.kind, a.repo, a.path, a.branch, a.startPoint, a.stale];
          case 'worktree-lock':
          case 'worktree-remove':
            return [a.kind, a.repo, a.path];
          case 'worktree-move':
            return [a.kind, a.repo, a.path, a.to];
          default:
            return assertNever(a, 'action');
        }
      }),
    ),
  );
}

/** A flat object with its keys in sorted order (what stableStringify does to every object). */
function sortedKeys(o: object): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/**
 * `items` sorted by `key(item)` in code-unit order, stable: what `items.sort()` does with `String` as the key,
 * with each key computed once instead of at every comparison (thousands of rows at a large fleet).
 */
function sortByString<T>(items: readonly T[], key: (item: T) => string): T[] {
  const keyed = items.map((item) => ({ item, key: key(item) }));
  keyed.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return keyed.map((k) => k.item);
}

/**
 * The part of an observation a plan depends on, without what moves on its own (heartbeat ages, activity times).
 * A saved plan is applied only while this digest still matches: anything that would change the plan changes it.
 */
export function observedDigest(observed: Observed): string {
  const units = sortByString(
    Object.values(observed.systemd.units).map((u) => [u.name, u.loadState, u.activeState, u.unitFileState]),
    String,
  );
  const panes = Object.values(observed.tmux.sockets).flatMap((s) =>
    s.panes.map((p) => [
      s.socketName,
      p.session,
      p.window,
      p.pane,
      p.panePid,
      p.dead,
      // Not the pane's process tree: a busy runtime starts and ends children all the time, which would make every
      // saved plan stale. Whether the tree still matches the roster is checked by re-planning (actionsDigest).
    ]),
  );
  const sessions = Object.values(observed.tmux.sockets).map((s) => [
    s.socketName,
    s.serverRunning,
    [...s.sessions].sort(),
  ]);
  const files = Object.values(observed.files).map((f) => [
    f.path,
    f.content === null ? null : contentSha256(f.content),
    f.mode,
  ]);
  // stableStringify's text, built directly: only the top level and `paths` are objects (keys in sorted order
  // here); a replacer visiting each of the thousands of values of a large fleet cost more than the hash.
  return sha256(
    JSON.stringify({
      envFileAgents: [...observed.envFileAgents].sort(),
      files: sortByString(files, String),
      needDaemonReload: observed.systemd.needDaemonReload,
      panes: sortByString(panes, (p) => JSON.stringify(p)),
      paths: sortedKeys(observed.paths),
      sessions: sortByString(sessions, String),
      units,
    }),
  );
}

/**
 * What the machine looked like, as "what -> state" lines (units, sessions, panes, files): saved with a plan so a
 * stale-plan refusal can say what changed, not only that something did. Same inputs as observedDigest.
 */
export function observedSummary(observed: Observed): Record<string, string> {
  const out: Record<string, string> = {};
  for (const u of Object.values(observed.systemd.units)) {
    out[`unit ${u.name}`] = `${u.activeState || 'unknown'}/${u.unitFileState ?? 'no unit file'}`;
  }
  for (const s of Object.values(observed.tmux.sockets)) {
    const where = s.socketName === '' ? '(default socket)' : s.socketName;
    for (const name of s.sessions) out[`session ${where}:${name}`] = 'present';
    for (const p of s.panes) {
      out[`pane ${where}:${p.session}.${p.window}.${p.pane}`] = p.dead ? 'dead' : `pid ${p.panePid ?? '?'}`;
    }
  }
  for (const f of Object.values(observed.files)) {
    out[`file ${f.path}`] =
      f.content === null
        ? 'absent'
        : `sha256:${sha256(f.content).slice(0, 12)} mode ${(f.mode ?? 0).toString(8)}`;
  }
  return out;
}

/** The differences between two summaries, one line each ("unit x: active/enabled -> inactive/enabled"). */
export function summaryChanges(before: Record<string, string>, after: Record<string, string>): string[] {
  const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
  const out: string[] = [];
  for (const k of keys) {
    const a = before[k];
    const b = after[k];
    if (a === b) continue;
    out.push(
      a === undefined
        ? `${k} appeared (${b})`
        : b === undefined
          ? `${k} is gone (was ${a})`
          : `${k}: ${a} -> ${b}`,
    );
  }
  return out;
}
