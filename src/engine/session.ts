/**
 * The read-only half of convergence: load the manifests, observe the machine, and make the plan. A `Session` is
 * the three states of one run (desired, observed, plan) plus what it takes to act on them (paths, runner).
 * Usable without the lock (a dry-run, `fleet plan`); writes nothing and prints nothing.
 */
import { foreignUnits } from '../plan/unit-owner.js';
import { runtimePrograms } from '../plan/planner.js';
import { join } from 'node:path';
import { loadAssets, type Assets } from '../assets.js';
import type { GlobalOptions } from '../options.js';
import { UserError } from '../errors.js';
import { refuseLinks } from '../base/safe-path.js';
import { createRunner, type Runner } from '../exec.js';
import type { LoadedDesired } from '../manifest/cache.js';
import type { DesiredFleet } from '../model/desired.js';
import { removalCandidates, workspaceRefusals } from '../plan/deciders/workspaces.js';
import { observeWorks, observeWorkspaces } from '../workspaces/observe.js';
import type { Observed } from '../model/observed.js';
import type { ObservedRegister } from '../model/register.js';
import { DEFAULT_BACKOFF, type BackoffPolicy, type Plan } from '../model/plan.js';
import { observe } from '../observe/index.js';
import { fleetHostName, packageRoot, resolvePaths, type FleetPaths } from '../paths.js';
import { plan as makePlan, type PlanInput } from '../plan/planner.js';
import type { FleetInvocation } from '../render/convergence.js';
import type { RenderContext } from '../render/units.js';
import { meterFleet } from './meter.js';
import { observeSpend } from './spend-observe.js';
import { fleetForRun, localFleet, sourceCommit, type SourceCommit } from './source.js';
import type { SourceRun } from '../source/follow.js';

export interface Session {
  paths: FleetPaths;
  runner: Runner;
  desired: DesiredFleet;
  observed: Observed;
  plan: Plan;
  /** Metering's warnings when this session metered before planning (under the lock); absent = not metered. */
  meterWarnings?: string[];
  /** The git source's commit this session converges to (docs/hosts.md); absent without a git source. */
  source?: SourceCommit;
}

export function renderContext(paths: FleetPaths): RenderContext {
  return { mosaicHome: paths.mosaicHome, unitDir: paths.unitDir, toolsDir: paths.toolsDir };
}

/**
 * How a unit runs this same reconciler: this node binary and this package's entry point, absolute; and the git
 * source given by `--source` / `$MOSAIC_SOURCE`, so the timer's runs follow it too.
 */
export function fleetInvocation(paths: FleetPaths, env: NodeJS.ProcessEnv = process.env): FleetInvocation {
  const source = env.MOSAIC_SOURCE;
  return {
    argv: [process.execPath, join(packageRoot(), 'bin', 'fleet.js')],
    manifests: paths.manifests,
    ...(source !== undefined && source.trim() !== '' ? { source } : {}),
  };
}

/** The systemd and tmux conditions a plan cannot be made (or applied) without. */
export function requireTools(observed: Observed): void {
  if (!observed.systemd.ok)
    throw new UserError(observed.systemd.error ?? 'cannot reach the systemd user manager');
  if (!observed.tmux.ok) throw new UserError(observed.tmux.error ?? 'tmux is not usable');
  // A link where a file or directory of the fleet belongs: refused before any plan (or write) is made.
  refuseLinks(observed.links ?? []);
  // Units another Mosaic home rendered into this unit directory are that home's: never rewritten, stopped or
  // archived from here.
  const foreign = foreignUnits(observed);
  if (foreign.length > 0) {
    const homes = [...new Set(foreign.map((f) => f.home))];
    throw new UserError(
      `${observed.paths.unitDir} holds units of another Mosaic home (${homes.join(', ')}: ${foreign.map((f) => f.unit).join(', ')}); ` +
        `refusing to change them for ${observed.paths.mosaicHome}. Give this home its own unit directory (--unit-dir) or use that home.`,
    );
  }
}

export async function observeFor(
  desired: DesiredFleet,
  paths: FleetPaths,
  runner: Runner,
): Promise<Observed> {
  return observe(
    {
      paths,
      sockets: desired.sockets.map((s) => s.socketName),
      dirs: desired.agents.map((a) => a.workingDirectory),
      programs: runtimePrograms(desired, renderContext(paths), fleetHostName()),
    },
    runner,
  );
}

/**
 * Crash-loop back-off policy: the manifest's `reconcile.backoff` (default 10 s doubling to 5 min, reset after 2
 * healthy minutes), each value overridable by `FLEET_BACKOFF_INITIAL_SECONDS` / `FLEET_BACKOFF_MAX_SECONDS` /
 * `FLEET_BACKOFF_RESET_SECONDS` in the environment (for tests and emergencies).
 */
export function backoffPolicy(env: NodeJS.ProcessEnv = process.env, desired?: DesiredFleet): BackoffPolicy {
  const fromManifest = desired?.reconcile.backoff;
  const seconds = (name: string, manifestSeconds: number | undefined, fallbackMs: number): number => {
    const raw = env[name];
    if (raw === undefined || raw === '') {
      return manifestSeconds === undefined ? fallbackMs : Math.round(manifestSeconds * 1000);
    }
    const n = Number(raw);
    if (!Number.isFinite(n) || n <= 0) {
      throw new UserError(`${name} must be a positive number of seconds, got "${raw}"`);
    }
    return Math.round(n * 1000);
  };
  return {
    initialMs: seconds(
      'FLEET_BACKOFF_INITIAL_SECONDS',
      fromManifest?.initialSeconds,
      DEFAULT_BACKOFF.initialMs,
    ),
    maxMs: seconds('FLEET_BACKOFF_MAX_SECONDS', fromManifest?.maxSeconds, DEFAULT_BACKOFF.maxMs),
    resetAfterMs: seconds(
      'FLEET_BACKOFF_RESET_SECONDS',
      fromManifest?.resetSeconds,
      DEFAULT_BACKOFF.resetAfterMs,
    ),
  };
}

/** Everything the pure planner needs, from the loaded pieces. */
export function planInput(
  desired: DesiredFleet,
  observed: Observed,
  paths: FleetPaths,
  prune: boolean,
  assets: Assets,
  env: NodeJS.ProcessEnv = process.env,
): PlanInput {
  return {
    desired,
    observed,
    ctx: renderContext(paths),
    templates: assets.templates,
    framework: assets.framework,
    convergence: assets.convergence,
    invocation: fleetInvocation(paths),
    prune,
    backoff: backoffPolicy(env, desired),
  };
}

/**
 * The agents' git worktrees, into `observed` (docs/workspaces.md): the repositories first; bad input they show
 * refuses the run before anything is made; then the work in the few worktrees the plan would remove.
 */
export async function observeWorkspacesFor(
  desired: DesiredFleet,
  observed: Observed,
  prune: boolean,
  runner: Runner,
): Promise<void> {
  const workspaces = await observeWorkspaces(desired, observed.state, observed.hostname, runner);
  if (workspaces === undefined) return;
  observed.workspaces = workspaces;
  const refusals = workspaceRefusals(desired, observed);
  if (refusals.length > 0) throw new UserError(refusals.join('\n'));
  const candidates = removalCandidates(desired, observed, prune);
  if (candidates.length > 0) {
    workspaces.work = await observeWorks(
      candidates.map((c) => ({ path: c.path, safe: c.safe })),
      runner,
    );
  }
}

/**
 * Observe and plan for a given desired fleet. Read-only (usable for a dry-run without the lock) unless `meter`:
 * then, under the caller's lock, the spend is metered after observing and before planning, so the budgets are
 * judged on what the agents have spent up to now (converge then does not meter again).
 */
export async function planFor(
  desired: DesiredFleet,
  paths: FleetPaths,
  prune: boolean,
  runner: Runner,
  opts: { meter?: boolean; source?: SourceCommit | undefined } = {},
): Promise<Session> {
  // The package's own files and the register (many hosts) are read while observation's commands run.
  const [assets, observed, register] = await Promise.all([
    loadAssets(),
    observeFor(desired, paths, runner),
    observeRegisterFor(desired, paths),
  ]);
  requireTools(observed);
  if (register !== undefined) observed.register = register;
  await observeWorkspacesFor(desired, observed, prune, runner);
  const metered = opts.meter ? await meterFleet(desired, paths, runner, observed.nowMs) : undefined;
  const spend = observeSpend(desired, paths.stateDir, observed.nowMs, metered?.result?.state);
  if (spend !== undefined) observed.spend = spend;
  const plan = makePlan(planInput(desired, observed, paths, prune, assets));
  return {
    paths,
    runner,
    desired,
    observed,
    plan,
    ...(metered !== undefined ? { meterWarnings: metered.warnings } : {}),
    ...(opts.source !== undefined ? { source: opts.source } : {}),
  };
}

/** Many hosts: the register's ownership rows, for the ownership decider; the client is loaded only for a register. */
async function observeRegisterFor(
  desired: DesiredFleet,
  paths: FleetPaths,
): Promise<ObservedRegister | undefined> {
  if (desired.register === undefined) return undefined;
  const { observeRegister } = await import('../register/observe.js');
  return observeRegister(desired, paths);
}

/**
 * The fleet the manifests describe, from the cache when they have not changed since a reconcile remembered it
 * (src/manifest/cache.ts); with a git source, the checkout's as it is (no fetch: src/source/follow.ts `read`).
 * Throws a ManifestError for a bad manifest, as loadDesired does.
 */
export async function loadFleet(paths: FleetPaths, runner: Runner = createRunner()): Promise<LoadedDesired> {
  return (await fleetForRun(await localFleet(paths), paths, runner, 'read')).loaded;
}

/**
 * Load, observe and plan, for a dry run. Read-only: with a git source, the branch is fetched into the
 * checkout's remote-tracking ref and the plan is made from the fetched commit; the checkout does not move.
 */
export async function makeSession(
  g: GlobalOptions,
  prune: boolean,
  runner: Runner = createRunner(),
): Promise<Session & { sourceRun: SourceRun | null }> {
  const paths = resolvePaths(g);
  const fleet = await fleetForRun(await localFleet(paths), paths, runner, 'dry-run');
  const session = await planFor(fleet.desired, paths, prune, runner, { source: sourceCommit(fleet.source) });
  return { ...session, sourceRun: fleet.source };
}

/** Whether a plan leaves work undone: actions to apply, or respawns held back by back-off. */
export function pending(plan: Plan): boolean {
  return (
    plan.actions.length > 0 ||
    plan.deferred.length > 0 ||
    plan.held.length > 0 ||
    plan.deferredRestarts.length > 0
  );
}

/**
 * One line per agent of the manifests a run leaves not running because its start is known to fail (held). Such a
 * run fails (exit 1) after doing everything else, so a timer's unit does not look healthy while an agent never
 * ran; a restart deferred or held for an agent that still runs is not a failure.
 */
export function notStartedLines(plan: Plan): string[] {
  return (plan.notRunning ?? []).map(
    (n) => `${n.agent} is not running: its ${n.action} is held: ${n.reason}`,
  );
}
