/**
 * The names the fleet gives things in systemd and tmux, in one place. Every module that addresses a unit
 * or a tmux session builds the name here, so spawn, observe and docs cannot disagree (the seed's socket
 * default bug came from three sites each deciding the socket on their own).
 */

/** The one oneshot unit that keeps a holder session on every fleet socket, so the tmux servers live. */
export const HOLDER_UNIT = 'mosaic-tmux-holder.service';

/** The units of unattended convergence (src/render/convergence.ts renders them when the manifest asks). */
export const RECONCILE_SERVICE = 'mosaic-fleet-reconcile.service';
export const RECONCILE_TIMER = 'mosaic-fleet-reconcile.timer';
export const WATCH_SERVICE = 'mosaic-fleet-watch.service';
export const CONVERGENCE_UNITS = [RECONCILE_SERVICE, RECONCILE_TIMER, WATCH_SERVICE] as const;

/** The agent template; each agent is an instance `mosaic-agent@<name>.service`. */
export const AGENT_TEMPLATE_UNIT = 'mosaic-agent@.service';

const AGENT_PREFIX = 'mosaic-agent@';
const UNIT_SUFFIX = '.service';

/** `coder0` → `mosaic-agent@coder0.service`. Names are validated by the manifest loader (unit- and file-safe). */
export function agentUnitName(name: string): string {
  return `${AGENT_PREFIX}${name}${UNIT_SUFFIX}`;
}

/** `mosaic-agent@coder0.service` → `coder0`; null for the template itself and for any other unit. */
export function agentNameFromUnit(unit: string): string | null {
  if (!unit.startsWith(AGENT_PREFIX) || !unit.endsWith(UNIT_SUFFIX)) return null;
  const name = unit.slice(AGENT_PREFIX.length, unit.length - UNIT_SUFFIX.length);
  return name === '' ? null : name;
}

/**
 * tmux arguments that select a fleet socket. The socket rule: a named socket means `-L <name>`; the empty
 * name means tmux's default socket, so no `-L` at all (a literal `-L ''` would be a different socket).
 */
export function socketArgs(socketName: string): string[] {
  return socketName === '' ? [] : ['-L', socketName];
}

/** A socket as an operator reads it in a message. */
export function describeSocket(socketName: string): string {
  return socketName === '' ? 'the default tmux socket' : `tmux socket '${socketName}'`;
}

/** Exact session target: `=name` never prefix-matches another session (`coder1` vs `coder10`). */
export function exactSession(name: string): string {
  return `=${name}`;
}

/**
 * Exact target for the session's current window. The colon matters: tmux resolves a bare `=name` given as a
 * *window* target (list-panes, respawn-pane) to some other session when `name` does not exist.
 */
export function exactWindow(name: string): string {
  return `=${name}:`;
}

/** Exact target for the agent's pane (window 0, pane 0: agent sessions have one window and one pane). */
export function exactPane(name: string): string {
  return `=${name}:0.0`;
}
