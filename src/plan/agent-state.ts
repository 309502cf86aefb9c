/**
 * What an agent's heartbeat says: its age and health (the heartbeat protocol), and the runtime's own report of
 * what it is doing (STATE), trusted only while fresh and written for the process now in the pane.
 */
import type { DesiredAgent, RuntimeSpec } from '../model/desired.js';
import type { AgentState, StateStatus } from '../model/agent-state.js';
import type { Observed, ObservedPane } from '../model/observed.js';

const AGENT_STATES: ReadonlySet<string> = new Set(['starting', 'busy', 'idle', 'waiting', 'exited']);

/**
 * healthy   a heartbeat within `staleAfterSeconds`
 * stale     older than that, past the start-up grace
 * grace     no fresh heartbeat yet, but the session is younger than `graceSeconds`
 * malformed the file exists without a numeric `ts` (`ts=x`): health unknown
 * missing   no heartbeat file
 * none      the runtime does not speak the heartbeat protocol and wrote none, or the agent is another host's
 */
export type HeartbeatHealth = 'healthy' | 'stale' | 'grace' | 'malformed' | 'missing' | 'none';

export interface HeartbeatStatus {
  ageSeconds: number | null;
  health: HeartbeatHealth;
  /** Whether this agent's runtime is expected to write heartbeats at all. */
  expected: boolean;
}

export function heartbeatStatus(
  agent: DesiredAgent,
  runtime: RuntimeSpec | undefined,
  observed: Observed,
  pane: ObservedPane | null,
): HeartbeatStatus {
  const expected = runtime?.heartbeat ?? true;
  const hb = observed.heartbeats[agent.name];
  const nowSec = observed.nowMs / 1000;
  // The grace runs from the session's creation: a new pane has not had time to write its first heartbeat, and the
  // file it finds may be its predecessor's.
  const inGrace =
    pane !== null &&
    !pane.dead &&
    pane.created !== null &&
    nowSec - pane.created < agent.heartbeat.graceSeconds;
  if (hb === undefined || !hb.exists) {
    if (!expected) return { ageSeconds: null, health: 'none', expected };
    return { ageSeconds: null, health: inGrace ? 'grace' : 'missing', expected };
  }
  if (hb.malformed || hb.ageSeconds === null) return { ageSeconds: null, health: 'malformed', expected };
  if (hb.ageSeconds <= agent.heartbeat.staleAfterSeconds)
    return { ageSeconds: hb.ageSeconds, health: 'healthy', expected };
  return { ageSeconds: hb.ageSeconds, health: inGrace ? 'grace' : 'stale', expected };
}

/**
 * The runtime's own report, read from its heartbeat. Trusted only while the heartbeat is fresh and was written
 * for the runtime now in the pane (its `pid=` is the pane's process): a report from a previous run, or one that
 * stopped being refreshed, is `unknown`, never a stale "idle".
 */
export function stateStatus(
  runtime: RuntimeSpec | undefined,
  observed: Observed,
  agent: DesiredAgent,
  pane: ObservedPane | null,
  heartbeat: HeartbeatStatus,
): StateStatus | null {
  const hb = observed.heartbeats[agent.name];
  const reported = hb?.keys.state;
  const speaks = (runtime?.state ?? 'none') !== 'none' && agent.command === null;
  if (!speaks && reported === undefined) return null;
  if (pane === null || pane.dead) return null;
  const nowSec = observed.nowMs / 1000;
  const since = Number(hb?.keys.since);
  const session = hb?.keys.session || null;
  const event = hb?.keys.event || null;
  const unknown: StateStatus = { state: 'unknown', forSeconds: null, event, session };
  if (hb === undefined || reported === undefined || !AGENT_STATES.has(reported)) {
    return heartbeat.health === 'grace'
      ? { state: 'starting', forSeconds: null, event: null, session: null }
      : unknown;
  }
  const pid = Number(hb.keys.pid);
  const current = !Number.isInteger(pid) || pid <= 0 || pane.panePid === null || pid === pane.panePid;
  if (!current) {
    return heartbeat.health === 'grace' ||
      pane.created === null ||
      nowSec - pane.created < agent.heartbeat.graceSeconds
      ? {
          state: 'starting',
          forSeconds: pane.created === null ? null : Math.max(0, Math.floor(nowSec - pane.created)),
          event: null,
          session: null,
        }
      : unknown;
  }
  if (heartbeat.health !== 'healthy') return unknown;
  // `starting` stays `starting` until the runtime's own ready signal (src/runtimes/ready.ts): never guessed idle.
  return {
    state: reported as AgentState,
    forSeconds: Number.isFinite(since) ? Math.max(0, Math.floor(nowSec - since)) : null,
    event,
    session,
  };
}
