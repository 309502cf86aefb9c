/**
 * `fleet reconcile`, `fleet plan`, `fleet apply`: load -> observe -> plan -> render -> (apply + journal).
 * Orchestration only; the decisions are in src/plan/, the effects in src/apply/.
 */
import { readFile } from 'node:fs/promises';
import { loadAssets, type Assets } from '../assets.js';
import type { GlobalOptions, ReconcileOptions } from '../cli.js';
import { UserError } from '../errors.js';
import { createRunner, type Runner } from '../exec.js';
import { loadDesired } from '../manifest/load.js';
import type { DesiredFleet } from '../model/desired.js';
import type { Observed } from '../model/observed.js';
import { DEFAULT_BACKOFF, PLAN_FORMAT_VERSION, type BackoffPolicy, type Plan } from '../model/plan.js';
import { writeState } from '../apply/state.js';
import { observe } from '../observe/index.js';
import { preflight } from '../observe/preflight.js';
import { join } from 'node:path';
import { hostContext, packageRoot, resolvePaths, type FleetPaths } from '../paths.js';
import type { FleetInvocation } from '../render/convergence.js';
import { actionsDigest, observedDigest } from '../plan/digest.js';
import { plan as makePlan, type PlanInput } from '../plan/planner.js';
import { planToJson } from '../render/plan-json.js';
import { actionTarget, renderPlanText, summaryLine } from '../render/plan-text.js';
import type { RenderContext } from '../render/units.js';
import { applyPlan, type ApplyResult } from '../apply/executor.js';
import { acquireLock } from '../apply/lock.js';
import { appendJournal, type JournalEntry } from '../apply/journal.js';
import { writeFileAtomic } from '../apply/atomic.js';

export interface Session {
  paths: FleetPaths;
  runner: Runner;
  desired: DesiredFleet;
  observed: Observed;
  plan: Plan;
}

export function renderContext(paths: FleetPaths): RenderContext {
  return { mosaicHome: paths.mosaicHome, unitDir: paths.unitDir, toolsDir: paths.toolsDir };
}

/** How a unit runs this same reconciler: this node binary and this package's entry point, absolute. */
export function fleetInvocation(paths: FleetPaths): FleetInvocation {
  return { argv: [process.execPath, join(packageRoot(), 'bin', 'fleet.js')], manifests: paths.manifests };
}

/** The systemd and tmux conditions a plan cannot be made (or applied) without. */
export function requireTools(observed: Observed): void {
  if (!observed.systemd.ok)
    throw new UserError(observed.systemd.error ?? 'cannot reach the systemd user manager');
  if (!observed.tmux.ok) throw new UserError(observed.tmux.error ?? 'tmux is not usable');
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

/** Observe and plan for a given desired fleet. Read-only: usable for a dry-run without the lock. */
export async function planFor(
  desired: DesiredFleet,
  paths: FleetPaths,
  prune: boolean,
  runner: Runner,
): Promise<Session> {
  const assets = await loadAssets();
  const observed = await observeFor(desired, paths, runner);
  requireTools(observed);
  const plan = makePlan(planInput(desired, observed, paths, prune, assets));
  return { paths, runner, desired, observed, plan };
}

/** Load, observe and plan. Read-only. */
export async function makeSession(
  g: GlobalOptions,
  prune: boolean,
  runner: Runner = createRunner(),
): Promise<Session> {
  const paths = resolvePaths(g);
  const desired = await loadDesired([paths.manifests], hostContext(paths));
  return planFor(desired, paths, prune, runner);
}

/** Whether a plan leaves work undone: actions to apply, or respawns held back by back-off. */
export function pending(plan: Plan): boolean {
  return plan.actions.length > 0 || plan.deferred.length > 0;
}

/**
 * Converge under the lock (taken by the caller): apply the plan's actions, journal them, and persist back-off
 * bookkeeping even when there is nothing to apply (a healthy agent's back-off record expiring is not an action).
 */
export async function converge(s: Session, command: string, json: boolean): Promise<ApplyResult | null> {
  if (s.plan.actions.length > 0) return applyAndJournal(s, s.plan, command, json);
  if (s.plan.backoffResets.length > 0)
    await writeState(s.paths.stateDir, stateAfterResets(s.observed, s.plan));
  return null;
}

/** The state file's content once the plan's expired back-off records are dropped (the observed state is kept). */
function stateAfterResets(observed: Observed, plan: Plan): Observed['state'] {
  const state = structuredClone(observed.state);
  for (const name of plan.backoffResets) delete state.backoff[name];
  return state;
}

function colorOk(): boolean {
  return Boolean(process.stdout.isTTY) && !process.env.NO_COLOR;
}

/** After a failed apply: what failed and what did not run (the per-action lines were printed as they happened). */
export function printResults(result: ApplyResult): void {
  const failed = result.results.filter((r) => r.outcome !== 'done');
  if (failed.length > 0) {
    process.stderr.write(
      `\nApply stopped: ${failed.filter((r) => r.outcome === 'failed').length} failed, ` +
        `${failed.filter((r) => r.outcome === 'not-run').length} not run. The next reconcile continues from here.\n`,
    );
  }
}

/** Apply under the lock (taken by the caller) and journal the run. */
export async function applyAndJournal(
  session: Pick<Session, 'paths' | 'runner' | 'observed' | 'desired'>,
  plan: Plan,
  command: string,
  json: boolean,
): Promise<ApplyResult> {
  const started = new Date();
  const state = stateAfterResets(session.observed, plan);
  const result = await applyPlan(plan.actions, {
    runner: session.runner,
    backoff: backoffPolicy(process.env, session.desired),
    stateDir: session.paths.stateDir,
    state,
    nowMs: session.observed.nowMs,
    onResult: (r) => {
      if (json) return;
      const line = r.outcome === 'done' ? `  ${r.message}` : `  ${r.message}${r.error ? `: ${r.error}` : ''}`;
      (r.outcome === 'done' ? process.stdout : process.stderr).write(
        `${line}${r.backupPath ? ` (previous version saved to ${r.backupPath})` : ''}\n`,
      );
    },
  });
  const entry: JournalEntry = {
    format_version: 1,
    started_at: started.toISOString(),
    finished_at: new Date().toISOString(),
    command,
    pid: process.pid,
    result: result.ok ? 'ok' : 'failed',
    summary: {
      done: result.results.filter((r) => r.outcome === 'done').length,
      failed: result.results.filter((r) => r.outcome === 'failed').length,
      not_run: result.results.filter((r) => r.outcome === 'not-run').length,
    },
    actions: result.results.map((r) => ({
      kind: r.action.kind,
      target: actionTarget(r.action),
      message: r.message,
      reason: r.action.reason,
      outcome: r.outcome,
      ...(r.error ? { error: r.error } : {}),
    })),
  };
  await appendJournal(session.paths.stateDir, entry);
  return result;
}

function jsonResult(plan: Plan, extra: Record<string, unknown>, result?: ApplyResult): string {
  const doc = planToJson(plan, extra);
  if (result) {
    doc.applied = {
      ok: result.ok,
      results: result.results.map((r) => ({
        kind: r.action.kind,
        message: r.message,
        outcome: r.outcome,
        ...(r.error ? { error: r.error } : {}),
        ...(r.backupPath ? { backup: r.backupPath } : {}),
      })),
    };
  }
  return `${JSON.stringify(doc, null, 2)}\n`;
}

export async function reconcileCommand(o: ReconcileOptions): Promise<number> {
  if (o.watch) {
    const { watchCommand } = await import('./watch.js');
    return watchCommand(o);
  }
  if (o.detailedExitcode && !o.dryRun) {
    throw new UserError(
      '--detailed-exitcode only makes sense with --dry-run (or use `fleet plan --detailed-exitcode`)',
    );
  }
  if (o.dryRun) {
    const s = await makeSession(o, o.prune);
    process.stdout.write(
      o.json ? jsonResult(s.plan, { dry_run: true }) : renderPlanText(s.plan, { color: colorOk() }),
    );
    return o.detailedExitcode && pending(s.plan) ? 2 : 0;
  }
  const paths = resolvePaths(o);
  // Fail on a bad manifest or a missing tool before taking the lock or touching anything.
  const desired = await loadDesired([paths.manifests], hostContext(paths));
  preflight();
  const command = `fleet reconcile${o.prune ? ' --prune' : ''}`;
  const lock = await acquireLock(paths.stateDir, command);
  try {
    const s = await planFor(desired, paths, o.prune, createRunner());
    if (!o.json) {
      process.stdout.write(renderPlanText(s.plan, { color: colorOk() }));
      if (s.plan.actions.length > 0) process.stdout.write('\nApplying:\n');
    }
    const result = await converge(s, command, o.json);
    if (o.json) process.stdout.write(jsonResult(s.plan, { dry_run: false }, result ?? undefined));
    else if (result) {
      printResults(result);
      if (result.ok) process.stdout.write(`\nApplied: ${summaryLine(s.plan).replace(/^Plan: /, '')}\n`);
    }
    return result === null || result.ok ? 0 : 1;
  } finally {
    await lock.release();
  }
}

interface SavedPlan {
  format_version: number;
  kind: 'mosaic-fleet-plan';
  created_at: string;
  mosaic_home: string;
  unit_dir: string;
  manifests: string;
  prune: boolean;
  plan: Plan;
}

export async function planCommand(
  o: GlobalOptions & { out?: string; prune: boolean; json: boolean; detailedExitcode: boolean },
): Promise<number> {
  const s = await makeSession(o, o.prune);
  if (o.out) {
    const saved: SavedPlan = {
      format_version: PLAN_FORMAT_VERSION,
      kind: 'mosaic-fleet-plan',
      created_at: new Date(s.observed.nowMs).toISOString(),
      mosaic_home: s.paths.mosaicHome,
      unit_dir: s.paths.unitDir,
      manifests: s.paths.manifests,
      prune: o.prune,
      plan: s.plan,
    };
    await writeFileAtomic(o.out, `${JSON.stringify(saved, null, 2)}\n`, 0o600);
  }
  process.stdout.write(
    o.json ? jsonResult(s.plan, { dry_run: true }) : renderPlanText(s.plan, { color: colorOk() }),
  );
  if (o.out && !o.json)
    process.stdout.write(`\nSaved the plan to ${o.out}. Apply exactly it with: fleet apply ${o.out}\n`);
  return o.detailedExitcode && pending(s.plan) ? 2 : 0;
}

async function readSavedPlan(file: string): Promise<SavedPlan> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new UserError(`cannot read plan ${file}: ${(error as Error).message}`);
  }
  let saved: SavedPlan;
  try {
    saved = JSON.parse(text) as SavedPlan;
  } catch {
    throw new UserError(`${file} is not a saved plan (not JSON)`);
  }
  if (saved.kind !== 'mosaic-fleet-plan' || typeof saved.plan !== 'object' || saved.plan === null) {
    throw new UserError(`${file} is not a saved plan from \`fleet plan --out\``);
  }
  if (saved.format_version !== PLAN_FORMAT_VERSION || saved.plan.formatVersion !== PLAN_FORMAT_VERSION) {
    throw new UserError(
      `${file} has plan format ${String(saved.format_version)}; this fleet reads format ${PLAN_FORMAT_VERSION}`,
    );
  }
  return saved;
}

export async function applyCommand(file: string, o: GlobalOptions & { json: boolean }): Promise<number> {
  const saved = await readSavedPlan(file);
  const paths = resolvePaths(o);
  if (saved.mosaic_home !== paths.mosaicHome || saved.unit_dir !== paths.unitDir) {
    throw new UserError(
      `${file} was made for home ${saved.mosaic_home} and unit dir ${saved.unit_dir}, not ${paths.mosaicHome} and ${paths.unitDir}`,
    );
  }
  preflight();
  const lock = await acquireLock(paths.stateDir, `fleet apply ${file}`);
  try {
    const runner = createRunner();
    const desired = await loadDesired([saved.manifests], hostContext(paths));
    // Stale when the machine changed (units, sessions, files), or when planning now would act differently (a pane
    // that drifted since, a manifest edited since): then the reviewed plan is no longer what apply would do.
    const fresh = await planFor(desired, paths, saved.prune, runner);
    const observed = fresh.observed;
    const stale =
      observedDigest(observed) !== saved.plan.observedDigest
        ? 'the machine changed since it was made'
        : actionsDigest(fresh.plan.actions) !== actionsDigest(saved.plan.actions)
          ? 'planning now would do something else (the manifests or the fleet changed since it was made)'
          : null;
    if (stale !== null) {
      throw new UserError(
        `the saved plan ${file} is stale: ${stale} (${saved.created_at}); run \`fleet plan\` again`,
      );
    }

    if (saved.plan.actions.length === 0) {
      process.stdout.write(
        o.json ? jsonResult(saved.plan, { dry_run: false }) : `${summaryLine(saved.plan)}\n`,
      );
      return 0;
    }
    if (!o.json) process.stdout.write(`Applying ${file}:\n`);
    const result = await applyAndJournal(
      { paths, runner, observed, desired },
      saved.plan,
      `fleet apply ${file}`,
      o.json,
    );
    if (o.json) process.stdout.write(jsonResult(saved.plan, { dry_run: false }, result));
    else printResults(result);
    return result.ok ? 0 : 1;
  } finally {
    await lock.release();
  }
}
