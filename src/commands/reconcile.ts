/**
 * `fleet reconcile`, `fleet plan`, `fleet apply`: parse options, call the engine (src/engine/), print.
 * Loading, observing, planning, applying and journaling are the engine's; what reaches the terminal is decided here.
 */
import type { GlobalOptions, ReconcileOptions } from '../options.js';
import { UserError } from '../errors.js';
import { createRunner } from '../exec.js';
import type { Plan } from '../model/plan.js';
import { resolvePaths, type FleetPaths } from '../paths.js';
import { planToJson } from '../render/plan-json.js';
import { disruptiveActions, renderPlanText, summaryLine } from '../render/plan-text.js';
import type { ActionResult, ApplyResult } from '../apply/executor.js';
import {
  applyAndJournal,
  convergeAndRemember,
  outcomeCounts,
  type ConvergeHooks,
} from '../engine/converge.js';
import { alertLines } from '../alerts/watch.js';
import { lockForRun } from '../engine/run-lock.js';
import { readSavedPlan, replanSaved, savePlan } from '../engine/saved-plan.js';
import { makeSession, notStartedLines, pending, planFor, type Session } from '../engine/session.js';
import {
  advanceText,
  fleetForRun,
  journalAdvance,
  localFleet,
  sourceCommit,
  type SourceRun,
} from '../engine/source.js';

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
    // The git source: a refusal on stderr, a move the next reconcile would make in the plan's text.
    if (s.sourceRun?.notice) process.stderr.write(`fleet: ${s.sourceRun.notice}\n`);
    const move = s.sourceRun ? advanceText(s.sourceRun, true) : null;
    if (move !== null && !o.json) process.stdout.write(`${move}\n`);
    const shown = onlyAgents(
      s.plan,
      o.agent ?? [],
      s.desired.agents.map((a) => a.name),
    );
    process.stdout.write(
      o.json
        ? jsonResult(shown, { dry_run: true, ...sourceField(s.source) })
        : renderPlanText(shown, { color: colorOk(), diff: o.diff === true }),
    );
    return o.detailedExitcode && pending(shown) ? 2 : 0;
  }
  const paths = resolvePaths(o);
  // Fail on a bad manifest or a missing tool before taking the lock or touching anything.
  const local = await localFleet(paths);
  const command = `fleet reconcile${o.prune ? ' --prune' : ''}`;
  const lock = await lockForRun(paths, command);
  try {
    const runner = createRunner();
    // The git source (docs/hosts.md): fetched and fast-forwarded under the lock, before planning.
    const fleet = await fleetForRun(local, paths, runner, 'apply');
    const { desired, loaded } = fleet;
    if (fleet.source !== null) await sourceStep(fleet.source, paths, command, o.json);
    let s = await planFor(desired, paths, o.prune, runner, {
      meter: true,
      source: sourceCommit(fleet.source),
    });
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
    const result = await convergeAndRemember(s, command, hooksFor(o.json), loaded);
    // Many hosts: publish this host's lease, share and journal to the register, after apply (docs/hosts.md).
    if (desired.register !== undefined) {
      const { publishAfterApply } = await import('../register/cycle.js');
      await publishAfterApply(s, result !== null, (line) => process.stderr.write(`fleet: ${line}\n`));
    }
    if (o.json)
      process.stdout.write(
        jsonResult(s.plan, { dry_run: false, ...sourceField(s.source) }, result ?? undefined),
      );
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

/** The JSON document's `source` (docs/plan-format.md): the git source's commit the plan is made from. */
function sourceField(source: Session['source']): Record<string, unknown> {
  return source === undefined ? {} : { source };
}

/** The git source's step said: a refusal on stderr (once per problem), a move on stdout and in the journal. */
async function sourceStep(run: SourceRun, paths: FleetPaths, command: string, json: boolean): Promise<void> {
  if (run.notice !== null) process.stderr.write(`fleet: ${run.notice}\n`);
  const move = advanceText(run);
  if (move === null) return;
  if (!json) process.stdout.write(`${move}\n`);
  await journalAdvance(paths, command, run);
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
  if (o.out) await savePlan(s, o.prune, o.out);
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

export async function applyCommand(file: string, o: GlobalOptions & { json: boolean }): Promise<number> {
  const saved = await readSavedPlan(file);
  const paths = resolvePaths(o);
  if (saved.mosaic_home !== paths.mosaicHome || saved.unit_dir !== paths.unitDir) {
    throw new UserError(
      `${file} was made for home ${saved.mosaic_home} and unit dir ${saved.unit_dir}, not ${paths.mosaicHome} and ${paths.unitDir}`,
    );
  }
  const lock = await lockForRun(paths, `fleet apply ${file}`);
  try {
    const runner = createRunner();
    const { fresh, stale } = await replanSaved(saved, paths, runner);
    const { observed, desired, source } = fresh;
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
      { paths, runner, observed, desired, ...(source !== undefined ? { source } : {}) },
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
