/**
 * Units for unattended convergence: a oneshot `fleet reconcile` service driven by a timer, or a long-running
 * `fleet reconcile --watch` service. Rendered only when the manifest asks (`reconcile.mode`), with the node
 * binary and the fleet entry point resolved to absolute paths at install time. Pure.
 */
import type { DesiredFleet } from '../model/desired.js';
import { HOLDER_UNIT, RECONCILE_SERVICE, RECONCILE_TIMER, WATCH_SERVICE } from '../base/names.js';
import { execLine, fillTemplate, type RenderContext, type RenderedFile } from './units.js';

export interface ConvergenceTemplates {
  reconcileService: string;
  reconcileTimer: string;
  watchService: string;
}

/** How to run this very reconciler from a unit: `[node, /abs/bin/fleet.js]`, plus the paths it was run with. */
export interface FleetInvocation {
  argv: readonly string[];
  manifests: string;
  /** `--source URL[#BRANCH]` when the run that installs the units was given one (docs/hosts.md). */
  source?: string;
}

function fleetArgs(ctx: RenderContext, inv: FleetInvocation, extra: string[]): string[] {
  return [
    ...inv.argv,
    '--home',
    ctx.mosaicHome,
    '--manifests',
    inv.manifests,
    '--unit-dir',
    ctx.unitDir,
    // The timer's and the watcher's runs follow the same git source as the run that installed them.
    ...(inv.source !== undefined ? ['--source', inv.source] : []),
    'reconcile',
    ...extra,
  ];
}

export function renderConvergenceUnits(
  desired: DesiredFleet,
  ctx: RenderContext,
  templates: ConvergenceTemplates,
  inv: FleetInvocation,
): RenderedFile[] {
  const file = (name: string, content: string): RenderedFile => ({
    path: `${ctx.unitDir}/${name}`,
    content,
    mode: 0o644,
    role: 'unit',
  });
  switch (desired.reconcile.mode) {
    case 'none':
      return [];
    case 'timer':
      return [
        file(
          RECONCILE_SERVICE,
          fillTemplate(RECONCILE_SERVICE, templates.reconcileService, {
            HOLDER_UNIT,
            FLEET_RECONCILE: execLine(fleetArgs(ctx, inv, [])),
          }),
        ),
        file(
          RECONCILE_TIMER,
          fillTemplate(RECONCILE_TIMER, templates.reconcileTimer, {
            INTERVAL: String(desired.reconcile.intervalSeconds),
          }),
        ),
      ];
    case 'watch':
      return [
        file(
          WATCH_SERVICE,
          fillTemplate(WATCH_SERVICE, templates.watchService, {
            HOLDER_UNIT,
            FLEET_WATCH: execLine(fleetArgs(ctx, inv, ['--watch', '--interval', '30'])),
          }),
        ),
      ];
  }
}
