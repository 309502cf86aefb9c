/**
 * Removals: agents the manifest keeps but disables; convergence units no longer asked for; agents no manifest
 * names, only with --prune (otherwise listed as orphans). Grouped by kind (every stop, then every disable, kill
 * and archive) so systemd gets one call per kind however many agents go, and nothing is moved aside while a
 * unit that uses it still runs. Nothing is deleted: files are archived.
 */
import type { Action, KillSessionAction, Orphan } from '../../model/plan.js';
import { agentUnitName } from '../../base/names.js';
import { CONVERGENCE_UNITS } from '../../base/names.js';
import { renderConvergenceUnits } from '../../render/convergence.js';
import { unitAction, unitActive, type PlanInput, type Scope } from './input.js';
import { claimSession, findOrphans, orphanSockets } from './sessions.js';

export interface RemovalsDecision {
  /** Stops, disables, kills, archives; then a daemon-reload when unit files were moved aside. */
  actions: Action[];
  /** Agents the reconciler once managed that no manifest names (listed, not removed, without --prune). */
  orphans: Orphan[];
  /** Sessions named like an agent being removed that the fleet cannot prove are its own: reported, left alone. */
  leftAlone: string[];
}

interface Removals {
  stops: Action[];
  disables: Action[];
  kills: Action[];
  archives: Action[];
  leftAlone: string[];
}

export function decideRemovals(input: PlanInput, scope: Scope): RemovalsDecision {
  const r: Removals = { stops: [], disables: [], kills: [], archives: [], leftAlone: [] };
  disabledAgents(input, scope, r);
  unwantedConvergence(input, r);
  const orphans = findOrphans(input.desired, input.observed, input.ctx);
  if (input.prune) pruneOrphans(input, orphans, r);
  const actions = [...r.stops, ...r.disables, ...r.kills, ...r.archives];
  // Unit files moved aside: systemd must forget them too (one more reload, after the removals).
  if (actions.some((a) => a.kind === 'archive-file' && a.path.startsWith(`${input.ctx.unitDir}/`))) {
    actions.push({ kind: 'daemon-reload', reason: 'unit files removed' });
  }
  return { actions, orphans: input.prune ? [] : orphans, leftAlone: r.leftAlone };
}

/** Stop (said apart when it ends a live session) and disable a unit that should not run. */
function retire(input: PlanInput, r: Removals, unit: string, agent: string | null, why: string): void {
  const { observed } = input;
  if (unitActive(observed, unit)) {
    const stop = unitAction('stop', unit, agent, why);
    // Stopping an agent's unit ends its session: said apart, like a restart.
    r.stops.push(agent !== null && liveSession(input, agent) ? { ...stop, disruptive: true } : stop);
  }
  if (observed.systemd.units[unit]?.unitFileState === 'enabled')
    r.disables.push(unitAction('disable', unit, agent, why));
}

function liveSession(input: PlanInput, agent: string): boolean {
  return Object.values(input.observed.tmux.sockets).some((sock) =>
    sock.panes.some((p) => p.session === agent && !p.dead),
  );
}

function killSession(
  input: PlanInput,
  agent: string,
  socketName: string,
  session: string,
  reason: string,
): KillSessionAction {
  return { kind: 'kill-session', agent, socketName, session, reason, owner: input.observed.paths.mosaicHome };
}

function disabledAgents(input: PlanInput, scope: Scope, r: Removals): void {
  const why = 'agent is disabled in the manifest';
  for (const agent of scope.local.filter((a) => !a.enabled)) {
    const unit = agentUnitName(agent.name);
    retire(input, r, unit, agent.name, why);
    // A session with no running unit to end it (its start script run by hand, or its stop failed): end it
    // directly, if it is provably the fleet's: on the agent's socket, carrying this home's marker.
    if (!unitActive(input.observed, unit)) {
      const claim = claimSession(agent.name, new Set([agent.socketName]), input.observed);
      r.leftAlone.push(...claim.foreign);
      if (claim.socketName !== null)
        r.kills.push(killSession(input, agent.name, claim.socketName, agent.name, why));
    }
  }
}

function unwantedConvergence(input: PlanInput, r: Removals): void {
  const { desired, observed, ctx } = input;
  const stamp = input.stamp ?? String(observed.nowMs);
  const keep = new Set(
    renderConvergenceUnits(desired, ctx, input.convergence, input.invocation).map((f) => f.path),
  );
  const why = `reconcile.mode is ${desired.reconcile.mode}`;
  for (const name of CONVERGENCE_UNITS) {
    const path = `${ctx.unitDir}/${name}`;
    if (keep.has(path)) continue;
    retire(input, r, name, null, why);
    if (observed.files[path]?.content != null) {
      r.archives.push({
        kind: 'archive-file',
        agent: null,
        path,
        to: `${ctx.mosaicHome}/fleet/archive/${name}.${stamp}`,
        reason: `${why}: unit no longer wanted (archived, not deleted)`,
      });
    }
  }
}

function pruneOrphans(input: PlanInput, orphans: readonly Orphan[], r: Removals): void {
  const { desired, observed, ctx } = input;
  const stamp = input.stamp ?? String(observed.nowMs);
  const why = 'no manifest names this agent';
  for (const o of orphans) {
    if (o.unit) retire(input, r, o.unit, o.agent, why);
    // The unit's ExecStop kills the session; kill it directly only when the unit will not (not active), and
    // only a session findOrphans proved is the fleet's (its socket, its marker). Any other of that name is
    // reported and left alone.
    const unitEndsIt = o.unit !== null && unitActive(observed, o.unit);
    if (!unitEndsIt)
      r.leftAlone.push(
        ...claimSession(o.agent, orphanSockets(o.agent, desired, observed, ctx), observed).foreign,
      );
    if (o.session !== null && o.socketName !== null && !unitEndsIt)
      r.kills.push(killSession(input, o.agent, o.socketName, o.session, why));
    if (o.envFile) {
      r.archives.push({
        kind: 'archive-file',
        agent: o.agent,
        path: o.envFile,
        to: `${ctx.mosaicHome}/fleet/archive/${o.agent}.${stamp}.env`,
        reason: `${why} (archived, not deleted)`,
      });
    }
  }
}

/** Back-off records of agents that no longer should run here: dropped from the state file. */
export function staleBackoff(input: PlanInput, scope: Scope): string[] {
  const wanted = new Set(scope.wanted.map((a) => a.name));
  return Object.keys(input.observed.state.backoff)
    .sort()
    .filter((name) => !wanted.has(name));
}
