/**
 * Units: one daemon-reload when systemd's view of the unit files is out of date, enable for boot (the holder and
 * every enabled agent), the tmux holder running with every holder session, and the convergence unit the manifest
 * asks for (the reconcile timer or the watch service) enabled and running.
 */
import type { Action, UnitAction } from '../../model/plan.js';
import { agentUnitName, HOLDER_UNIT } from '../../base/names.js';
import { RECONCILE_TIMER, WATCH_SERVICE } from '../../base/names.js';
import type { FilesDecision } from './files.js';
import { socketLabel, unitAction, unitActive, unitEnabled, type PlanInput, type Scope } from './input.js';

/** In plan order: the reload, the enables, the holder, the convergence unit. */
export function decideUnits(input: PlanInput, scope: Scope, files: FilesDecision): Action[] {
  return [
    ...daemonReload(input, files),
    ...enables(input, scope),
    ...holder(input, scope, files),
    ...convergence(input, files),
  ];
}

function daemonReload(input: PlanInput, files: FilesDecision): Action[] {
  if (files.changedUnits.size > 0) return [{ kind: 'daemon-reload', reason: 'unit files changed' }];
  if (input.observed.systemd.needDaemonReload)
    return [{ kind: 'daemon-reload', reason: 'systemd reports unit files changed on disk' }];
  return [];
}

function enables(input: PlanInput, scope: Scope): UnitAction[] {
  const { observed } = input;
  const out: UnitAction[] = [];
  if (scope.wanted.length > 0 && !unitEnabled(observed, HOLDER_UNIT)) {
    out.push(
      unitAction(
        'enable',
        HOLDER_UNIT,
        null,
        'not enabled: the tmux holder would not come back after reboot',
      ),
    );
  }
  for (const agent of scope.wanted) {
    const unit = agentUnitName(agent.name);
    if (!unitEnabled(observed, unit))
      out.push(unitAction('enable', unit, agent.name, 'not enabled: would not start after reboot'));
  }
  return out;
}

/** The holder first among starts: agents' sessions need its tmux server. */
function holder(input: PlanInput, scope: Scope, files: FilesDecision): UnitAction[] {
  const { observed, ctx } = input;
  if (scope.wanted.length === 0) return [];
  if (!unitActive(observed, HOLDER_UNIT))
    return [unitAction('start', HOLDER_UNIT, null, 'holder is not running')];
  // Restarting the holder is safe (KillMode=process keeps the tmux servers) and re-ensures every holder session.
  if (files.changedUnits.has(`${ctx.unitDir}/${HOLDER_UNIT}`))
    return [unitAction('restart', HOLDER_UNIT, null, 'holder unit changed')];
  const missing = scope.localFleet.sockets.filter(
    (s) => !(observed.tmux.sockets[s.socketName]?.sessions ?? []).includes(s.holderSession),
  );
  if (missing.length === 0) return [];
  const where = missing.map((s) => `${s.holderSession} on ${socketLabel(s.socketName)}`).join(', ');
  return [unitAction('restart', HOLDER_UNIT, null, `holder session missing: ${where}`)];
}

/** Unattended convergence: the timer (not its oneshot service) or the watch service is enabled and running. */
function convergence(input: PlanInput, files: FilesDecision): UnitAction[] {
  const { desired, observed, ctx } = input;
  const mode = desired.reconcile.mode;
  const unit = mode === 'timer' ? RECONCILE_TIMER : mode === 'watch' ? WATCH_SERVICE : null;
  if (unit === null) return [];
  const out: UnitAction[] = [];
  if (!unitEnabled(observed, unit))
    out.push(unitAction('enable', unit, null, `reconcile.mode is ${mode}: not enabled`));
  if (!unitActive(observed, unit))
    out.push(unitAction('start', unit, null, `reconcile.mode is ${mode}: not running`));
  else if (files.changedUnits.has(`${ctx.unitDir}/${unit}`))
    out.push(unitAction('restart', unit, null, 'unit changed'));
  return out;
}
