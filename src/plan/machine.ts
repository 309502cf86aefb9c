/**
 * What `fleet ps` reports beyond single agents: sessions on the fleet's sockets that no manifest names, and
 * conditions of the machine (a tool out of reach, linger off, unit files newer than what systemd loaded).
 */
import type { DesiredFleet } from '../model/desired.js';
import type { Observed } from '../model/observed.js';

export interface UnmanagedSession {
  socketName: string;
  session: string;
}

/**
 * Sessions on the fleet's sockets that no manifest names (any host's agent on that socket counts as named) and
 * that are not the socket's holder. Shown so an operator notices stray work; never acted on without --prune.
 */
export function unmanagedSessions(desired: DesiredFleet, observed: Observed): UnmanagedSession[] {
  const out: UnmanagedSession[] = [];
  for (const s of desired.sockets) {
    const socket = observed.tmux.sockets[s.socketName];
    if (socket === undefined) continue;
    const named = new Set(desired.agents.filter((a) => a.socketName === s.socketName).map((a) => a.name));
    const holders = new Set(
      desired.sockets.filter((x) => x.socketName === s.socketName).map((x) => x.holderSession),
    );
    for (const session of socket.sessions) {
      if (!named.has(session) && !holders.has(session)) out.push({ socketName: s.socketName, session });
    }
  }
  return out.sort((a, b) =>
    a.socketName < b.socketName ? -1 : a.socketName > b.socketName ? 1 : a.session < b.session ? -1 : 1,
  );
}

export type ProblemKind = 'tmux-unavailable' | 'systemd-unreachable' | 'linger-off' | 'daemon-reload-needed';

export interface Problem {
  kind: ProblemKind;
  message: string;
}

/**
 * Conditions of the machine an operator must know about, beyond any single agent: a tool that cannot be
 * reached (every row is then partly unknown), linger off (user units stop at logout: the fleet dies with the
 * last session; reported, never changed for them), unit files newer than what systemd loaded.
 */
export function machineProblems(
  desired: DesiredFleet,
  observed: Observed,
  user: string | null = null,
): Problem[] {
  const problems: Problem[] = [];
  if (!observed.systemd.ok) {
    problems.push({
      kind: 'systemd-unreachable',
      message: observed.systemd.error ?? 'cannot reach the systemd user manager',
    });
  }
  if (!observed.tmux.ok) {
    problems.push({ kind: 'tmux-unavailable', message: observed.tmux.error ?? 'tmux is not usable' });
  }
  if (observed.systemd.linger === false && desired.agents.some((a) => a.enabled)) {
    const who = user ?? '$USER';
    problems.push({
      kind: 'linger-off',
      message: `linger is off: user units stop when ${user ?? 'the user'} logs out and do not start at boot (run: loginctl enable-linger ${who})`,
    });
  }
  if (observed.systemd.ok && observed.systemd.needDaemonReload) {
    problems.push({
      kind: 'daemon-reload-needed',
      message: 'unit files changed since systemd loaded them (fleet reconcile runs daemon-reload)',
    });
  }
  return problems;
}
