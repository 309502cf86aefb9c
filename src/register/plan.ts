/**
 * Ownership in a cycle's plan (docs/hosts.md): read the register's ownership rows and leases (bounded by the
 * connection and statement timeouts; null when unreachable), decide with the pure decider, and hold or add the
 * actions it says. Read-only: claims and releases are written after apply, with the publication.
 */
import type { DesiredFleet } from '../model/desired.js';
import type { Observed } from '../model/observed.js';
import type { Plan } from '../model/plan.js';
import {
  applyOwnership,
  decideOwnership,
  type OwnershipAgent,
  type OwnershipDecision,
  type RegisterSnapshot,
} from '../plan/deciders/ownership.js';
import { isLocalAgent } from '../model/desired.js';
import { agentUnitName } from '../base/names.js';
import { registerDsn, registerProblem, withRegister } from './connect.js';
import { readSnapshot } from './ownership.js';
import { lastContact } from './notice.js';
import type { FleetPaths } from '../paths.js';
import { requireSchema } from './schema.js';

/** Whether an agent runs on this host: its unit is active or activating, or its session exists. */
export function runsHere(observed: Observed, agent: string, socketName: string): boolean {
  const unit = observed.systemd.units[agentUnitName(agent)];
  if (unit !== undefined && (unit.activeState === 'active' || unit.activeState === 'activating')) return true;
  return observed.tmux.sockets[socketName]?.sessions.includes(agent) ?? false;
}

/** The runtime says idle, or says nothing at all (then there is nothing to wait for). */
function idle(observed: Observed, agent: string): boolean {
  const state = observed.heartbeats[agent]?.keys.state;
  return state === undefined || state === 'idle';
}

export function ownershipAgents(desired: DesiredFleet, observed: Observed): OwnershipAgent[] {
  return desired.agents.map((a) => ({
    name: a.name,
    host: a.host,
    local: isLocalAgent(a, observed.hostname),
    runningHere: runsHere(observed, a.name, a.socketName),
    idle: idle(observed, a.name),
  }));
}

/**
 * The register's ownership rows and leases, or why they could not be read: `register unreachable` for an outage,
 * else the one line of the refusal (the plan's reasons say which, since only an outage passes by itself).
 */
export async function readRegisterSnapshot(
  desired: DesiredFleet,
): Promise<{ snapshot: RegisterSnapshot; unreadable: null } | { snapshot: null; unreadable: string }> {
  if (desired.register === undefined) return { snapshot: null, unreadable: 'no register' };
  try {
    const snapshot = await withRegister(await registerDsn(desired.register), async (c) => {
      await requireSchema(c);
      return readSnapshot(c);
    });
    return { snapshot, unreadable: null };
  } catch (error) {
    // The publish step says so, once. Here it only means "ownership unknown".
    const problem = registerProblem(error);
    return {
      snapshot: null,
      unreadable: problem.kind === 'unreachable' ? 'register unreachable' : problem.message,
    };
  }
}

export async function planOwnership(
  desired: DesiredFleet,
  observed: Observed,
  plan: Plan,
  paths: FleetPaths,
): Promise<{ plan: Plan; decisions: OwnershipDecision[] }> {
  const register = desired.register;
  if (register === undefined) return { plan, decisions: [] };
  const { snapshot, unreadable } = await readRegisterSnapshot(desired);
  const decisions = decideOwnership({
    host: observed.hostname,
    takeoverAfterMs: register.takeoverAfterSeconds * 1000,
    agents: ownershipAgents(desired, observed),
    register: snapshot,
    lastContact: snapshot === null ? await lastContact(paths) : null,
    nowMs: observed.nowMs,
    ...(unreadable !== null ? { unreadable } : {}),
  });
  return {
    plan: applyOwnership(plan, decisions, { unit: agentUnitName, idle: (a) => idle(observed, a) }),
    decisions,
  };
}

/** Agents moved to another host that no longer run here: their stop is recorded with the publication. */
export function releasesDue(desired: DesiredFleet, observed: Observed): string[] {
  return desired.agents
    .filter(
      (a) =>
        a.host !== null && !isLocalAgent(a, observed.hostname) && !runsHere(observed, a.name, a.socketName),
    )
    .map((a) => a.name);
}
