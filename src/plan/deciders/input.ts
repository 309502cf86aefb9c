/**
 * What every decider is given: the planner's input, and the scope of this host derived from it once (which agents
 * are this machine's, which of them should run). Units' states are read through the same two rules everywhere.
 */
import type { DesiredAgent, DesiredFleet } from '../../model/desired.js';
import type { Observed } from '../../model/observed.js';
import type { BackoffPolicy, SkippedAgent, UnitAction } from '../../model/plan.js';
import type { FrameworkAssets } from '../../render/framework.js';
import type { RenderContext, UnitTemplates } from '../../render/units.js';
import type { ConvergenceTemplates, FleetInvocation } from '../../render/convergence.js';
import { isLocalAgent } from '../../model/desired.js';

export interface PlanInput {
  desired: DesiredFleet;
  observed: Observed;
  ctx: RenderContext;
  templates: UnitTemplates;
  framework: FrameworkAssets;
  convergence: ConvergenceTemplates;
  /** How units run this reconciler (timer / watch service ExecStart). */
  invocation: FleetInvocation;
  /** Stop, disable, kill and archive agents no manifest names. */
  prune: boolean;
  /** Crash-loop back-off for respawns (default 10 s doubling to 5 min, reset after 2 healthy minutes). */
  backoff?: BackoffPolicy;
  /** Archive file names carry this stamp (passed in: the planner has no clock). Default: observed.nowMs. */
  stamp?: string;
}

/** The agents this plan is about. */
export interface Scope {
  /** This machine's agents, by name. */
  local: DesiredAgent[];
  /** Of those, the ones the manifest wants running. */
  wanted: DesiredAgent[];
  /** Other hosts' agents: named in the plan, never acted on. */
  skipped: SkippedAgent[];
  /** The desired fleet reduced to this machine's agents and the sockets they use. */
  localFleet: DesiredFleet;
}

export function scopeOf(desired: DesiredFleet, observed: Observed): Scope {
  // Sorted here too, not only by the normalizer: the plan's order must not depend on how the caller built the fleet.
  const byName = [...desired.agents].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const local = byName.filter((a) => isLocalAgent(a, observed.hostname));
  const skipped: SkippedAgent[] = byName
    .filter((a) => !isLocalAgent(a, observed.hostname))
    .map((a) => ({
      agent: a.name,
      host: a.host ?? '',
      reason: `runs on ${a.host ?? '?'}, this is ${observed.hostname}`,
    }));
  const localFleet: DesiredFleet = {
    ...desired,
    agents: local,
    sockets: desired.sockets.filter((s) => local.some((a) => a.socketName === s.socketName)),
  };
  return { local, wanted: local.filter((a) => a.enabled), skipped, localFleet };
}

/**
 * Only `enabled` survives a reboot (`enabled-runtime` lives in /run; `linked` is not enabled at all), the same
 * rule `fleet ps` flags BOOT-ENABLE by. `static` units cannot be enabled: asking would never converge.
 */
export function unitEnabled(observed: Observed, unit: string): boolean {
  const s = observed.systemd.units[unit]?.unitFileState;
  return s === 'enabled' || s === 'static';
}

export function unitActive(observed: Observed, unit: string): boolean {
  const s = observed.systemd.units[unit]?.activeState;
  return s === 'active' || s === 'activating' || s === 'reloading';
}

export function unitAction(
  kind: UnitAction['kind'],
  unit: string,
  agent: string | null,
  reason: string,
): UnitAction {
  return { kind, unit, agent, reason };
}

export function socketLabel(socketName: string): string {
  return socketName === '' ? 'the default socket' : `socket ${socketName}`;
}
