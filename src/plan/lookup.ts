/**
 * A socket's panes and sessions by session name. Judging each agent by scanning every pane of its socket is
 * quadratic in the fleet (a million comparisons at a thousand agents, several times per plan); these indexes are
 * built once per observed socket and reused by every agent. Pure: a memo keyed by the observation's own arrays,
 * rebuilt when an array is replaced or grows (test builders grow observations in place).
 */
import type { ObservedPane, ObservedSocket } from '../model/observed.js';

interface PaneIndex {
  length: number;
  bySession: Map<string, ObservedPane[]>;
}

interface SessionIndex {
  length: number;
  names: Set<string>;
}

const paneIndexes = new WeakMap<readonly ObservedPane[], PaneIndex>();
const sessionIndexes = new WeakMap<readonly string[], SessionIndex>();

const NO_PANES: readonly ObservedPane[] = [];

/** The panes of `session` on `socket`, in the socket's order (empty when none, or no such socket). */
export function sessionPanes(socket: ObservedSocket | undefined, session: string): readonly ObservedPane[] {
  if (socket === undefined) return NO_PANES;
  const panes = socket.panes;
  let index = paneIndexes.get(panes);
  if (index === undefined || index.length !== panes.length) {
    const bySession = new Map<string, ObservedPane[]>();
    for (const p of panes) {
      const list = bySession.get(p.session);
      if (list === undefined) bySession.set(p.session, [p]);
      else list.push(p);
    }
    index = { length: panes.length, bySession };
    paneIndexes.set(panes, index);
  }
  return index.bySession.get(session) ?? NO_PANES;
}

/** The first pane of `session` that is not dead, or undefined. */
export function livePane(socket: ObservedSocket | undefined, session: string): ObservedPane | undefined {
  return sessionPanes(socket, session).find((p) => !p.dead);
}

/** Whether `socket` lists `session` (`socket.sessions.includes(session)`, without the scan). */
export function hasSession(socket: ObservedSocket, session: string): boolean {
  const sessions = socket.sessions;
  let index = sessionIndexes.get(sessions);
  if (index === undefined || index.length !== sessions.length) {
    index = { length: sessions.length, names: new Set(sessions) };
    sessionIndexes.set(sessions, index);
  }
  return index.names.has(session);
}
