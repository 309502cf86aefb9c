/**
 * What a host publishes about its share, from one observation: a status row per agent of its share, and one per
 * agent moved to another host that still runs here (flagged MOVING: its stop waits for it to be idle), so the
 * register shows what runs, not only what the manifest says. Pure: the same desired fleet and observation give
 * the same rows, so a no-op cycle writes no agent row (only the lease).
 */
import { isLocalAgent, type DesiredFleet } from '../model/desired.js';
import type { Observed } from '../model/observed.js';
import { agentStatus, fleetStatus, type AgentStatus } from '../plan/health.js';
import { runsHere } from '../plan/deciders/ownership.js';
import { ENV_DIGEST_KEY } from '../render/env.js';
import { UNIT_DIGEST_KEY } from '../render/units.js';

export interface StatusRow {
  agent: string;
  tenant_id: string | null;
  /** The runtime's own state (idle, busy, ...), else running / dead / down / disabled. */
  state: string;
  /** Since when it has been in that state (ISO); kept by the register while the state does not change. */
  state_since: string;
  flags: string[];
  pid: number | null;
  /** `active/enabled` and the like; null when systemd has no such unit. */
  unit: string | null;
  /** The tmux session's name while it exists. */
  session: string | null;
  env_digest: string | null;
  unit_digest: string | null;
  /** Spend of the current window where metered; null until spend is metered (docs/hosts.md). */
  spend_usd: number | null;
}

function stateOf(s: AgentStatus): string {
  if (!s.wanted) return 'disabled';
  if (s.sessionExists === true && !s.paneDead) return s.state?.state ?? 'running';
  if (s.paneDead) return 'dead';
  return 'down';
}

/** The digests the running agent was started with (its pane processes' environment). */
function digests(observed: Observed, s: AgentStatus): { env: string | null; unit: string | null } {
  const pane = observed.tmux.sockets[s.socketName]?.panes.find((p) => p.session === s.session);
  const env = pane?.dead === false ? pane.environ : null;
  return { env: env?.[ENV_DIGEST_KEY] ?? null, unit: env?.[UNIT_DIGEST_KEY] ?? null };
}

/** The flag of an agent moved to another host that still runs on this one, until this host stops it. */
export const MOVING_FLAG = 'MOVING';

function rowOf(observed: Observed, s: AgentStatus, extraFlags: readonly string[]): StatusRow {
  const d = digests(observed, s);
  const running = s.sessionExists === true && !s.paneDead;
  // Whole seconds: the same state reported twice must not look like a change.
  const sinceMs = Math.floor((observed.nowMs - (s.state?.forSeconds ?? 0) * 1000) / 1000) * 1000;
  return {
    agent: s.agent,
    tenant_id: s.tenantId,
    state: stateOf(s),
    state_since: new Date(sinceMs).toISOString(),
    flags: [...s.flags, ...extraFlags],
    pid: running ? s.panePid : null,
    unit:
      s.unitActiveState === '' && s.unitFileState === null
        ? null
        : `${s.unitActiveState || '?'}/${s.unitFileState ?? 'no-file'}`,
    session: s.sessionExists === true ? s.session : null,
    env_digest: d.env,
    unit_digest: d.unit,
    spend_usd: null,
  };
}

/**
 * One row per agent of this host's share (the agents whose `host:` is this host, or unset), and one per agent
 * moved away that still runs here: without it the register would show a busy agent, whose hand-over waits for
 * its turn to end, as running nowhere (its old host's row deleted, its new host's saying `down`).
 */
export function statusRows(desired: DesiredFleet, observed: Observed): StatusRow[] {
  const share = fleetStatus(desired, observed)
    .filter((s) => s.local)
    .map((s) => rowOf(observed, s, []));
  const leaving = desired.agents
    .filter((a) => !isLocalAgent(a, observed.hostname))
    .map((a) => agentStatus({ ...a, host: null }, observed, desired.runtimes[a.runtime]))
    .filter((s) => runsHere(observed, s.agent, s.socketName))
    .map((s) => rowOf(observed, s, [MOVING_FLAG]));
  return [...share, ...leaving];
}
