/**
 * Agent health: one pure judgment per agent, joined from systemd, tmux, the process tree, the heartbeat and
 * the back-off state. `fleet ps` shows it and the planner acts on it, so this is the single place that decides
 * what DRIFT, BOOT-ENABLE, STALE, DEAD, MISSING and BACKOFF mean. No I/O, no clock: "now" is `observed.nowMs`.
 */
import { isLocalAgent, type DesiredAgent, type DesiredFleet, type RuntimeSpec } from '../model/desired.js';
import type {
  BackoffEntry,
  Observed,
  ObservedPane,
  ObservedProcess,
  ObservedUnit,
} from '../model/observed.js';
import { builtinRuntimes } from '../runtimes/index.js';
import { agentUnitName } from '../base/names.js';
import { hasSession, sessionPanes } from './lookup.js';

import { heartbeatStatus, stateStatus, type HeartbeatStatus } from './agent-state.js';
import type { StateStatus } from '../model/agent-state.js';
import { driftCheck, expectedProgram } from './recognition.js';

export * from './agent-state.js';
export * from './machine.js';
export * from './recognition.js';

export type HealthFlag = 'DRIFT' | 'BOOT-ENABLE' | 'STALE' | 'DEAD' | 'MISSING' | 'BACKOFF';

/** Display and decision order: what is most broken first. */
export const FLAG_ORDER: readonly HealthFlag[] = [
  'MISSING',
  'DEAD',
  'DRIFT',
  'STALE',
  'BOOT-ENABLE',
  'BACKOFF',
];

export interface AgentStatus {
  agent: string;
  unit: string;
  /** systemd's ActiveState ('' when systemd does not know the unit or could not be asked). */
  unitActiveState: string;
  unitSubState: string;
  /** enabled | disabled | static | masked | ... ; null when there is no unit file or it is unknown. */
  unitFileState: string | null;
  socketName: string;
  session: string;
  /** null when tmux could not be asked (missing binary, failing server): unknown, not absent. */
  sessionExists: boolean | null;
  paneDead: boolean;
  paneDeadStatus: number | null;
  paneDeadSignal: number | null;
  panePid: number | null;
  /** What actually runs in the pane: the process matching the expected program, else the pane's own process. */
  paneCommand: string | null;
  paneStartCommand: string | null;
  /** Seconds since the pane last printed anything; null when unknown. */
  idleSeconds: number | null;
  /** Unix seconds the session was created. */
  sessionCreated: number | null;
  heartbeat: HeartbeatStatus;
  tenantId: string | null;
  host: string | null;
  /** false when the agent belongs to another host: nothing here can be observed about it. */
  local: boolean;
  /** false when the manifest keeps the agent but wants it stopped. */
  wanted: boolean;
  /** The program the roster says the pane runs (basename), or the whole command when it is shell syntax. */
  expectedProgram: string;
  /** One line explaining DRIFT, null otherwise. */
  driftReason: string | null;
  /** The runtime's own report of what it is doing; null when it reports nothing (no state signal). */
  state: StateStatus | null;
  backoff: (BackoffEntry & { due: boolean }) | null;
  /** In FLAG_ORDER. */
  flags: HealthFlag[];
}

function agentPane(observed: Observed, agent: DesiredAgent): ObservedPane | null {
  const socket = observed.tmux.sockets[agent.socketName];
  if (socket === undefined) return null;
  // Agent sessions have one window and one pane; take the first in case an operator split it.
  return sessionPanes(socket, agent.name)[0] ?? null;
}

/** One agent's joined status and flags. `runtime` is the agent's runtime spec (drift and heartbeat expectations). */
export function agentStatus(agent: DesiredAgent, observed: Observed, runtimeSpec?: RuntimeSpec): AgentStatus {
  // Callers should pass the fleet's spec (fleetStatus does); without it, the built-in runtimes are the best
  // guess, so the stub runtime is still judged by its script and not by the word "stub".
  const runtime = runtimeSpec ?? builtinRuntime(agent.runtime, observed);
  const unitName = agentUnitName(agent.name);
  const unit = observed.systemd.ok ? observed.systemd.units[unitName] : undefined;
  const local = isLocalAgent(agent, observed.hostname);
  const tmuxKnown = observed.tmux.ok && observed.tmux.sockets[agent.socketName] !== undefined;
  const pane = local ? agentPane(observed, agent) : null;
  const socket = observed.tmux.sockets[agent.socketName];
  const sessionExists =
    !local || !tmuxKnown ? null : socket === undefined ? false : hasSession(socket, agent.name);
  const expected = expectedProgram(agent, runtime, observed.programs);
  const heartbeat = local
    ? heartbeatStatus(agent, runtime, observed, pane)
    : { ageSeconds: null, health: 'none' as const, expected: runtime?.heartbeat ?? true };
  const backoffEntry = observed.state.backoff[agent.name];
  const backoff =
    backoffEntry === undefined
      ? null
      : { ...backoffEntry, due: backoffEntry.nextAttemptMs <= observed.nowMs };

  const { flags, driftReason, shown } = healthFlags(
    agent,
    local,
    sessionExists,
    pane,
    expected,
    unit,
    heartbeat,
    backoff,
  );

  const nowSec = Math.floor(observed.nowMs / 1000);
  const shownProcess = shown ?? pane?.processes[0] ?? null;
  return {
    agent: agent.name,
    unit: unitName,
    unitActiveState: unit?.activeState ?? '',
    unitSubState: unit?.subState ?? '',
    unitFileState: unit?.unitFileState ?? null,
    socketName: agent.socketName,
    session: agent.name,
    sessionExists,
    paneDead: pane?.dead ?? false,
    paneDeadStatus: pane?.deadStatus ?? null,
    paneDeadSignal: pane?.deadSignal ?? null,
    panePid: pane?.panePid ?? null,
    paneCommand:
      shownProcess !== null
        ? shownProcess.argv.join(' ')
        : pane !== null && pane.currentCommand !== ''
          ? pane.currentCommand
          : null,
    paneStartCommand: pane?.startCommand ?? null,
    idleSeconds: pane?.activity != null ? Math.max(0, nowSec - pane.activity) : null,
    sessionCreated: pane?.created ?? null,
    heartbeat,
    tenantId: agent.tenantId,
    host: agent.host,
    local,
    wanted: agent.enabled,
    expectedProgram: expected.program,
    driftReason,
    state: local && agent.enabled ? stateStatus(runtime, observed, agent, pane, heartbeat) : null,
    backoff,
    flags,
  };
}

/** The flags of one agent, in FLAG_ORDER, and what the drift check found in its pane. */
function healthFlags(
  agent: DesiredAgent,
  local: boolean,
  sessionExists: boolean | null,
  pane: ObservedPane | null,
  expected: ReturnType<typeof expectedProgram>,
  unit: ObservedUnit | undefined,
  heartbeat: HeartbeatStatus,
  backoff: AgentStatus['backoff'],
): { flags: HealthFlag[]; driftReason: string | null; shown: ObservedProcess | null } {
  const flags = new Set<HealthFlag>();
  let driftReason: string | null = null;
  let shown: ObservedProcess | null = null;
  // Another host's agent cannot be seen from here: no flag would be true, so none is raised.
  // An agent the manifest wants stopped is not expected to run: being absent is its desired state.
  if (local && agent.enabled) {
    // Missing: tmux answered and the session is not there (a stopped server counts: nothing runs).
    if (sessionExists === false) flags.add('MISSING');
    if (pane !== null && pane.dead) {
      // The program exited and remain-on-exit kept the pane: dead, which says more than "drifted".
      flags.add('DEAD');
    } else if (pane !== null) {
      const d = driftCheck(expected, pane);
      shown = d.shown;
      if (d.drift) {
        flags.add('DRIFT');
        driftReason = d.reason;
      }
    }
    // Boot-enable gap: it runs now but will not come back after a reboot. Only `enabled` survives one
    // (`enabled-runtime` lives in /run and is gone at reboot too).
    if (unit !== undefined && isActive(unit.activeState) && unit.unitFileState !== 'enabled') {
      flags.add('BOOT-ENABLE');
    }
    // Stale only for a live pane whose runtime speaks the protocol and spoke once: a missing or malformed file
    // is shown as such, because respawning cannot make a program that never heartbeat start doing so.
    if (heartbeat.expected && heartbeat.health === 'stale' && pane !== null && !pane.dead) flags.add('STALE');
  }
  // Back-off is reported while it holds and the agent needs a respawn, so the operator sees why nothing is
  // retried; a healthy agent's lingering record (kept until its reset period passes) is no news.
  const needsRespawn = flags.has('DEAD') || flags.has('MISSING') || flags.has('DRIFT') || flags.has('STALE');
  if (backoff !== null && !backoff.due && needsRespawn) flags.add('BACKOFF');

  return { flags: FLAG_ORDER.filter((f) => flags.has(f)), driftReason, shown };
}

function builtinRuntime(name: string, observed: Observed): RuntimeSpec | undefined {
  return builtinRuntimes({
    userHome: '',
    mosaicHome: observed.paths.mosaicHome,
    hostname: observed.hostname,
  })[name];
}

function isActive(state: string): boolean {
  return state === 'active' || state === 'activating' || state === 'reloading';
}

/** Every agent's status, sorted by name, each judged against its own runtime spec. */
export function fleetStatus(desired: DesiredFleet, observed: Observed): AgentStatus[] {
  return desired.agents.map((a) => agentStatus(a, observed, desired.runtimes[a.runtime]));
}
