/**
 * `fleet reconcile`, `fleet plan`, `fleet apply`: parse options, call the engine (src/engine/), print.
 * Loading, observing, planning, applying and journaling are the engine's; what reaches the terminal is decided here.
 */
import { readFile } from '../fs-async.js';
import type { GlobalOptions, ReconcileOptions } from '../options.js';
import { UserError } from '../errors.js';
import { createRunner } from '../exec.js';
import { loadDesired } from '../manifest/load.js';
import { PLAN_FORMAT_VERSION, type Plan } from '../model/plan.js';
import { preflight } from '../observe/preflight.js';
import { hostContext, resolvePaths } from '../paths.js';
import { actionsDigest, observedDigest, observedSummary, summaryChanges } from '../plan/digest.js';
import { planToJson } from '../render/plan-json.js';
import {
  actionTarget,
  actionVerb,
  disruptiveActions,
  renderPlanText,
  summaryLine,
} from '../render/plan-text.js';
import type { ActionResult, ApplyResult } from '../apply/executor.js';
import { acquireLock } from '../apply/lock.js';
import { writeFileAtomic } from '../base/atomic.js';
import { applyAndJournal, converge, outcomeCounts, type ConvergeHooks } from '../engine/converge.js';
import { alertLines } from '../alerts/watch.js';
import { loadFleet, makeSession, notStartedLines, pending, planFor } from '../engine/session.js';
import { rememberDesired } from '../manifest/cache.js';

function colorOk(): boolean {
  return Boolean(process.stdout.isTTY) && !process.env.NO_COLOR;
}

/** Progress while applying: one line per action, done to stdout, failed or not run to stderr. */
function printResult(r: ActionResult): void {
  const line = r.outcome === 'done' ? `  ${r.message}` : `  ${r.message}${r.error ? `: ${r.error}` : ''}`;
  (r.outcome === 'done' ? process.stdout : process.stderr).write(
    `${line}${r.backupPath ? ` (previous version saved to ${r.backupPath})` : ''}\n`,
  );
}

/** The apply hooks for a run: progress lines in text mode, none with --json (the document says it all). */
function hooksFor(json: boolean): ConvergeHooks {
  const onWarning = (line: string): void => void process.stderr.write(`fleet: ${line}\n`);
  return json
    ? { onWarning }
    : {
        onResult: printResult,
        onWarning,
        onAlerts: (outcome, error) => process.stdout.write(alertLines(outcome, error).join('')),
      };
}

/** After a failed apply: what failed and what did not run (the per-action lines were printed as they happened). */
function printResults(result: ApplyResult): void {
  const counts = outcomeCounts(result);
  if (counts.failed + counts.notRun > 0) {
    process.stderr.write(
      `\nApply stopped: ${counts.failed} failed, ` +
        `${counts.notRun} not run. The next reconcile continues from here.\n`,
    );
  }
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

/** The plan as one or a few agents see it: their actions, deferrals and holds (all of it when none is named). */
function onlyAgents(plan: Plan, names: readonly string[], known: readonly string[]): Plan {
  if (names.length === 0) return plan;
  const unknown = names.filter((n) => !known.includes(n));
  if (unknown.length > 0) {
    throw new UserError(
      `no agent named ${unknown.map((n) => JSON.stringify(n)).join(', ')} in the manifests`,
    );
  }
  const keep = new Set(names);
  const mine = (agent: string | null | undefined) => agent != null && keep.has(agent);
  return {
    ...plan,
    actions: plan.actions.filter((a) => 'agent' in a && mine(a.agent)),
    deferred: plan.deferred.filter((d) => mine(d.agent)),
    held: plan.held.filter((h) => mine(h.agent)),
    deferredRestarts: plan.deferredRestarts.filter((d) => mine(d.agent)),
    orphans: [],
    skipped: plan.skipped.filter((x) => mine(x.agent)),
  };
}

/** ": unit x: active/enabled -> inactive/enabled; …" (the first few changes), or '' when unknown. */
function whatChanged(before: Record<string, string> | undefined, after: Record<string, string>): string {
  if (before === undefined) return '';
  const changes = summaryChanges(before, after);
  if (changes.length === 0) return '';
  const shown = changes.slice(0, 5).join('; ');
  return `: ${shown}${changes.length > 5 ? `; and ${changes.length - 5} more` : ''}`;
}

/** ": now also …; no longer …" for the actions a fresh plan adds or drops. */
function actionChanges(saved: Plan, fresh: Plan): string {
  const line = (a: Plan['actions'][number]) => `${actionVerb(a)} ${actionTarget(a)}`;
  const before = new Set(saved.actions.map(line));
  const after = new Set(fresh.actions.map(line));
  const added = [...after].filter((l) => !before.has(l));
  const dropped = [...before].filter((l) => !after.has(l));
  const parts = [
    added.length > 0 ? `now also: ${added.slice(0, 3).join(', ')}${added.length > 3 ? ', …' : ''}` : null,
    dropped.length > 0
      ? `no longer: ${dropped.slice(0, 3).join(', ')}${dropped.length > 3 ? ', …' : ''}`
      : null,
  ].filter((x) => x !== null);
  return parts.length > 0 ? `: ${parts.join('; ')}` : '';
}

async function confirm(question: string): Promise<boolean> {
  // Loaded only here: only a person at a terminal is asked, and readline is not free to load.
  const { createInterface } = await import('node:readline/promises');
  const rl = createInterface({ input: process.stdin, output: process.stdout });
  try {
    return /^y(es)?$/i.test((await rl.question(question)).trim());
  } finally {
    rl.close();
  }
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
  if ((o.agent ?? []).length > 0 && !o.dryRun) {
    throw new UserError('--agent filters what a plan shows: use it with --dry-run (or `fleet plan --agent`)');
  }
  if (o.dryRun) {
    const s = await makeSession(o, o.prune);
    const shown = onlyAgents(
      s.plan,
      o.agent ?? [],
      s.desired.agents.map((a) => a.name),
    );
    process.stdout.write(
      o.json
        ? jsonResult(shown, { dry_run: true })
        : renderPlanText(shown, { color: colorOk(), diff: o.diff === true }),
    );
    return o.detailedExitcode && pending(shown) ? 2 : 0;
  }
  const paths = resolvePaths(o);
  // Fail on a bad manifest or a missing tool before taking the lock or touching anything.
  const loaded = await loadFleet(paths);
  const { desired } = loaded;
  preflight();
  const command = `fleet reconcile${o.prune ? ' --prune' : ''}`;
  const lock = await acquireLock(paths.stateDir, command);
  try {
    let s = await planFor(desired, paths, o.prune, createRunner(), { meter: true });
    if (!o.json) process.stdout.write(renderPlanText(s.plan, { color: colorOk(), diff: o.diff === true }));
    const ends = disruptiveActions(s.plan);
    if (ends.length > 0 && !o.yes && !o.json && process.stdin.isTTY && process.stdout.isTTY) {
      // A person at a terminal decides; the timer, watch mode and scripts leave it to the restart policy.
      if (
        !(await confirm(
          `\nEnd ${ends.length} running agent${ends.length === 1 ? '' : 's'} (${ends.map((a) => ('agent' in a ? a.agent : null) ?? '?').join(', ')})? [y/N] `,
        ))
      ) {
        const keep = new Set(ends);
        s = { ...s, plan: { ...s.plan, actions: s.plan.actions.filter((a) => !keep.has(a)) } };
        process.stdout.write('Leaving them running; their restarts stay pending for a later reconcile.\n');
      }
    }
    if (!o.json && s.plan.actions.length > 0) process.stdout.write('\nApplying:\n');
    const result = await converge(s, command, hooksFor(o.json));
    // The next run (the timer's, `fleet ps`) need not parse these manifests again.
    await rememberDesired(paths.stateDir, paths.mosaicHome, loaded);
    if (o.json) process.stdout.write(jsonResult(s.plan, { dry_run: false }, result ?? undefined));
    else if (result) {
      printResults(result);
      if (result.ok) process.stdout.write(`\nApplied: ${summaryLine(s.plan).replace(/^Plan: /, '')}\n`);
    }
    // After everything else was done: an agent that could not be started fails the run, one line each.
    const notStarted = notStartedLines(s.plan);
    for (const line of notStarted) process.stderr.write(`fleet: ${line}\n`);
    return (result === null || result.ok) && notStarted.length === 0 ? 0 : 1;
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
  /** What the machine looked like (observedSummary), so a refusal can say what changed. Optional: older files. */
  observed?: Record<string, string>;
}

export async function planCommand(
  o: GlobalOptions & {
    out?: string;
    prune: boolean;
    json: boolean;
    detailedExitcode: boolean;
    diff?: boolean;
    agent?: string[];
  },
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
      observed: observedSummary(s.observed),
    };
    await writeFileAtomic(o.out, `${JSON.stringify(saved, null, 2)}\n`, 0o600);
  }
  process.stdout.write(
    o.json
      ? jsonResult(
          onlyAgents(
            s.plan,
            o.agent ?? [],
            s.desired.agents.map((a) => a.name),
          ),
          { dry_run: true },
        )
      : renderPlanText(
          onlyAgents(
            s.plan,
            o.agent ?? [],
            s.desired.agents.map((a) => a.name),
          ),
          {
            color: colorOk(),
            diff: o.diff === true,
          },
        ),
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
        ? `the machine changed since it was made${whatChanged(saved.observed, observedSummary(observed))}`
        : actionsDigest(fresh.plan.actions) !== actionsDigest(saved.plan.actions)
          ? `planning now would do something else (the manifests or the fleet changed since it was made)${actionChanges(saved.plan, fresh.plan)}`
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
      hooksFor(o.json),
    );
    if (o.json) process.stdout.write(jsonResult(saved.plan, { dry_run: false }, result));
    else printResults(result);
    return result.ok ? 0 : 1;
  } finally {
    await lock.release();
  }
}
