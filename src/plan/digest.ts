/**
 * Stable hashing of plan inputs. Pure (node:crypto is computation, not I/O).
 */
import { createHash } from 'node:crypto';
import { assertNever } from '../errors.js';
import type { Observed } from '../model/observed.js';
import type { Action } from '../model/plan.js';

export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
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
          default:
            return assertNever(a, 'action');
        }
      }),
    ),
  );
}

/**
 * The part of an observation a plan depends on, without what moves on its own (heartbeat ages, activity times).
 * A saved plan is applied only while this digest still matches: anything that would change the plan changes it.
 */
export function observedDigest(observed: Observed): string {
  const units = Object.values(observed.systemd.units)
    .map((u) => [u.name, u.loadState, u.activeState, u.unitFileState])
    .sort();
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
    f.content === null ? null : sha256(f.content),
    f.mode,
  ]);
  return sha256(
    stableStringify({
      units,
      panes: panes.sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1)),
      sessions: sessions.sort(),
      files: files.sort(),
      envFileAgents: [...observed.envFileAgents].sort(),
      needDaemonReload: observed.systemd.needDaemonReload,
      paths: observed.paths,
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
