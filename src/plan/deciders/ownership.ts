/**
 * Ownership of agents across hosts (docs/hosts.md): which host may run each agent, decided from the register's
 * ownership rows and host leases, observed at the start of the cycle. Pure.
 *
 * The rule, for this host H and an agent X:
 * - X's `host:` is H. H runs X only while the register says H holds it (`hold`). With no row, or a row another
 *   host released (it recorded that it stopped X), or a row of a host whose lease has been over for
 *   `takeover_after`, H claims it (`claim`: a compare-and-set on the epoch, after apply; the start follows in the
 *   next cycle, once the claim is observed). Otherwise H waits (`wait`): the start is held, never done.
 * - X's `host:` is another host and X runs here: H stops it once it is idle (`hand-over`), and when it no longer
 *   runs here records the release (`release`, after apply, from the fresh observation).
 * - The register could not be read: H keeps running what it runs (a register outage must not stop the fleet)
 *   and starts nothing whose ownership it cannot confirm (`unknown`).
 * A host that runs X while the register says another host holds it with a later epoch (it took X over while H
 * was cut off) has been fenced: it stops X now (`fenced`), since two copies already run.
 */
import { isLocalAgent } from '../../model/desired.js';
import type { Observed } from '../../model/observed.js';
import type { Action, HeldAction, Plan } from '../../model/plan.js';
import type { LastContact, OwnershipDecision, RegisterSnapshot } from '../../model/register.js';
import { agentUnitName } from '../../base/names.js';
import type { PlanInput } from './input.js';

export type { LastContact, OwnershipDecision, OwnershipRow, RegisterSnapshot } from '../../model/register.js';

export interface OwnershipAgent {
  name: string;
  /** The host the manifest names; null = any host (never moved: not owned through the register). */
  host: string | null;
  /** The manifest puts it on this host (its `host:` is this host's name, or its short form). */
  local: boolean;
  /** Its unit is active or its session exists here. */
  runningHere: boolean;
  /** The runtime says it is idle (or says nothing: a runtime with no state signal cannot be waited for). */
  idle: boolean;
}

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

function forLocal(
  a: OwnershipAgent,
  host: string,
  reg: RegisterSnapshot | null,
  takeoverAfterMs: number,
  last: { contact: LastContact | null; nowMs: number; why: string },
): OwnershipDecision {
  // Unreachable, but this host held it at its last contact and its lease cannot have been over for
  // takeover_after yet: nobody else can hold it, so a crashed pane is healed as usual.
  if (
    reg === null &&
    last.contact !== null &&
    last.contact.held.includes(a.name) &&
    last.nowMs < last.contact.safeUntilMs
  )
    return {
      agent: a.name,
      kind: 'hold',
      epoch: 0,
      reason: `${last.why}: held at the last contact, safe until ${new Date(last.contact.safeUntilMs).toISOString()}`,
    };
  if (reg === null)
    return {
      agent: a.name,
      kind: 'unknown',
      reason: a.runningHere
        ? `${last.why}: keeps running, its ownership unconfirmed`
        : `${last.why}: not started until its ownership is confirmed`,
    };
  const row = reg.ownership[a.name];
  if (row === undefined) return { agent: a.name, kind: 'claim', epoch: 0, reason: 'no host holds it yet' };
  if (row.holder === host && !row.released)
    return { agent: a.name, kind: 'hold', epoch: row.epoch, reason: `held by ${host} (epoch ${row.epoch})` };
  if (row.released)
    return {
      agent: a.name,
      kind: 'claim',
      epoch: row.epoch,
      reason: `${row.holder} recorded that it stopped it (epoch ${row.epoch})`,
    };
  const end = reg.leaseEnds[row.holder];
  const overForMs = end === undefined ? Infinity : reg.nowMs - end;
  if (overForMs >= takeoverAfterMs)
    return {
      agent: a.name,
      kind: 'claim',
      epoch: row.epoch,
      reason: `${row.holder}'s lease ran out ${end === undefined ? 'long' : `${Math.round(overForMs / 1000)} s`} ago (takeover after ${Math.round(takeoverAfterMs / 1000)} s)`,
    };
  if (a.runningHere)
    return {
      agent: a.name,
      kind: 'fenced',
      holder: row.holder,
      reason: `${row.holder} holds it (epoch ${row.epoch}): this host lost it and stops its copy`,
    };
  return {
    agent: a.name,
    kind: 'wait',
    holder: row.holder,
    takeoverInMs: takeoverAfterMs - overForMs,
    reason: `waits for ${row.holder} to stop it and record that, or for ${row.holder}'s lease to be over for ${Math.round(takeoverAfterMs / 1000)} s`,
  };
}

/** One decision per agent that has a `host:` (this host's, or another's while it still runs here). */
export function decideOwnership(input: {
  host: string;
  takeoverAfterMs: number;
  agents: readonly OwnershipAgent[];
  register: RegisterSnapshot | null;
  /** For an unreachable register: what the last contact said, and this host's clock now. */
  lastContact?: LastContact | null;
  nowMs?: number;
  /**
   * Why the register could not be read, for the reasons: `register unreachable` (the default), or the line of a
   * register that answered no (a role without rights, a newer schema), which waiting will not cure.
   */
  unreadable?: string;
}): OwnershipDecision[] {
  const out: OwnershipDecision[] = [];
  for (const a of input.agents) {
    if (a.host === null) continue;
    if (a.local) {
      out.push(
        forLocal(a, input.host, input.register, input.takeoverAfterMs, {
          contact: input.lastContact ?? null,
          nowMs: input.nowMs ?? 0,
          why: input.unreadable ?? 'register unreachable',
        }),
      );
    } else if (a.runningHere) {
      out.push({
        agent: a.name,
        kind: 'hand-over',
        to: a.host,
        reason: a.idle
          ? `moved to ${a.host}: stopped here while idle, so ${a.host} can start it`
          : `moved to ${a.host}: stopped here once it is idle`,
      });
    }
  }
  return out;
}

/**
 * The decider as plan() calls it: null for a fleet without a register (nothing is owned through one), else one
 * decision per agent that has a `host:`, from the register as observed at the start of the cycle.
 */
export function decideOwnershipOf(input: PlanInput): OwnershipDecision[] | null {
  const { desired, observed } = input;
  if (desired.register === undefined || observed.register === undefined) return null;
  return decideOwnership({
    host: observed.hostname,
    takeoverAfterMs: desired.register.takeoverAfterSeconds * 1000,
    agents: desired.agents.map((a) => ({
      name: a.name,
      host: a.host,
      local: isLocalAgent(a, observed.hostname),
      runningHere: runsHere(observed, a.name, a.socketName),
      idle: idle(observed, a.name),
    })),
    register: observed.register.snapshot,
    lastContact: observed.register.lastContact,
    ...(observed.register.unreadable !== null ? { unreadable: observed.register.unreadable } : {}),
    nowMs: observed.nowMs,
  });
}

/** Whether this host may start the agent now. */
export function mayStart(d: OwnershipDecision): boolean {
  return d.kind === 'hold';
}

const STARTS = new Set<Action['kind']>(['start', 'restart', 'respawn']);

/** ownership applied with this host's unit names and heartbeats (see applyOwnership). */
export function withOwnership<P extends Pick<Plan, 'actions' | 'held' | 'warnings'>>(
  plan: P,
  decisions: readonly OwnershipDecision[] | null,
  observed: Observed,
): P {
  if (decisions === null) return plan;
  return applyOwnership(plan, decisions, { unit: agentUnitName, idle: (a) => idle(observed, a) });
}

/**
 * The plan with ownership applied: starts of agents this host does not hold are held (with the reason), agents
 * moved away are stopped and disabled here once idle, a fenced copy is stopped now.
 */
export function applyOwnership<P extends Pick<Plan, 'actions' | 'held' | 'warnings'>>(
  plan: P,
  decisions: readonly OwnershipDecision[],
  units: { unit: (agent: string) => string; idle: (agent: string) => boolean },
): P {
  const blocked = new Map(
    decisions
      .filter((d) => d.kind === 'claim' || d.kind === 'wait' || d.kind === 'unknown')
      .map((d) => [d.agent, d]),
  );
  const held: HeldAction[] = [];
  const actions = plan.actions.filter((a) => {
    const agent = 'agent' in a ? a.agent : null;
    const d = agent == null ? undefined : blocked.get(agent);
    if (d === undefined) return true;
    // Enabled for boot, systemd would start it at the next boot without asking the register: not before it holds it.
    if (a.kind === 'enable') return false;
    if (!STARTS.has(a.kind)) return true;
    held.push({
      agent: d.agent,
      action: a.kind === 'restart' ? 'restart' : a.kind === 'respawn' ? 'respawn' : 'start',
      need: a.reason,
      reason: d.kind === 'claim' ? `claims it first: ${d.reason}` : d.reason,
    });
    return false;
  });
  const warnings: string[] = [];
  for (const d of decisions) {
    if (d.kind === 'hand-over' && !units.idle(d.agent)) {
      warnings.push(`${d.agent}: ${d.reason}`);
      continue;
    }
    if (d.kind !== 'hand-over' && d.kind !== 'fenced') continue;
    const unit = units.unit(d.agent);
    actions.push(
      { kind: 'stop', unit, agent: d.agent, disruptive: true, reason: d.reason },
      { kind: 'disable', unit, agent: d.agent, reason: `${d.reason}; not started here at boot` },
    );
  }
  return { ...plan, actions, held: [...plan.held, ...held], warnings: [...plan.warnings, ...warnings] };
}
