/**
 * Stable hashing of plan inputs. Pure (node:crypto is computation, not I/O).
 */
import { createHash } from 'node:crypto';
import type { Observed } from '../model/observed.js';

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
      p.processes.map((x) => x.argv.join(' ')),
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
