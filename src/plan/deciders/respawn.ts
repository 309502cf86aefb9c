/**
 * Panes that must come back (missing, dead, drifted, or hung when the operator asked for that), and the
 * crash-loop back-off that spaces the attempts: respawning on every resync would thrash a program that dies at
 * once. Also the one rule for a drifted pane (docs/lifecycle.md, "A drifted pane").
 */
import type { DesiredAgent, DesiredFleet } from '../../model/desired.js';
import type { BackoffEntry, Observed } from '../../model/observed.js';
import type { BackoffPolicy, DeferredRespawn, RespawnAction } from '../../model/plan.js';
import { agentUnitName } from '../../base/names.js';
import { agentStatus, type AgentStatus } from '../health.js';
import { livePane } from '../lookup.js';

/** Why an agent's pane needs to come back, from its status; null when it is fine. */
export function respawnReason(
  agent: DesiredAgent,
  status: AgentStatus,
  runtimeHeartbeats: boolean,
): string | null {
  const f = new Set(status.flags);
  if (f.has('MISSING')) return `session ${agent.name} is missing`;
  if (f.has('DEAD')) return `pane of ${agent.name} is dead`;
  if (f.has('DRIFT')) {
    return (
      status.driftReason ??
      `pane runs ${status.paneCommand ?? 'something else'}, manifest says ${status.expectedProgram}`
    );
  }
  // Silence alone only triggers a respawn when the operator asked for it and the runtime speaks the protocol.
  if (f.has('STALE') && agent.heartbeat.respawnOnStale && runtimeHeartbeats) return 'heartbeat is stale';
  return null;
}

/**
 * A drifted pane runs something other than the roster's program. It is the agent itself, and precious, when it
 * still runs the program the fleet started it with (its environment names it): the roster changed the runtime or
 * command, and that is a restart like any other, by the restart policy. Anything else in the pane (a program
 * respawned into it by hand, a shell left behind) holds none of the agent's conversation: it is respawned at
 * once, whether or not a restart is also pending. Unprovable (no environment read) counts as foreign.
 */
export function runsStartedProgram(agent: DesiredAgent, desired: DesiredFleet, observed: Observed): boolean {
  const env = livePane(observed.tmux.sockets[agent.socketName], agent.name)?.environ;
  const runtime = env?.MOSAIC_AGENT_RUNTIME;
  if (env == null || runtime === undefined || runtime === '') return false;
  const command = env.MOSAIC_AGENT_COMMAND;
  const spec = desired.runtimes[runtime];
  const runtimeCommand = env.MOSAIC_AGENT_RUNTIME_COMMAND;
  const started: DesiredAgent = {
    ...agent,
    runtime,
    command: command === undefined || command === '' ? null : command,
  };
  const startedSpec =
    spec === undefined || runtimeCommand === undefined || runtimeCommand === ''
      ? spec
      : { ...spec, command: runtimeCommand };
  return !agentStatus(started, observed, startedSpec).flags.includes('DRIFT');
}

export type RespawnDecision =
  { kind: 'respawn'; action: RespawnAction } | { kind: 'deferred'; entry: DeferredRespawn };

/** The respawn a pane needs (`why`), or its deferral while the back-off gap runs. */
export function decideRespawn(
  agent: DesiredAgent,
  status: AgentStatus,
  why: string,
  entry: BackoffEntry | undefined,
  nowMs: number,
): RespawnDecision {
  if (entry !== undefined && entry.nextAttemptMs > nowMs) {
    // Respawning on every resync would thrash a program that dies at once: wait out the gap.
    return {
      kind: 'deferred',
      entry: { agent: agent.name, reason: why, attempts: entry.attempts, nextAttemptMs: entry.nextAttemptMs },
    };
  }
  return {
    kind: 'respawn',
    action: {
      kind: 'respawn',
      agent: agent.name,
      unit: agentUnitName(agent.name),
      socketName: agent.socketName,
      session: agent.name,
      reason: entry === undefined ? why : `${why} (attempt ${entry.attempts + 1})`,
      attempt: (entry?.attempts ?? 0) + 1,
      // A drifted or stale pane still runs something: respawning it ends that.
      ...(status.sessionExists === true && !status.paneDead ? { disruptive: true } : {}),
    },
  };
}

/** Healthy again for long enough: the next crash starts from the first, short gap. */
export function backoffOver(entry: BackoffEntry | undefined, policy: BackoffPolicy, nowMs: number): boolean {
  return entry !== undefined && nowMs - entry.lastAttemptMs >= policy.resetAfterMs;
}
