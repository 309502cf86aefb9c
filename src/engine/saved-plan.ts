/**
 * `fleet plan --out FILE` and `fleet apply FILE`: the saved plan's file (the plan and what the machine looked
 * like when it was made), and whether it is still what planning now would do. A saved plan applies only while it
 * is: a machine that changed, or manifests edited since, make it stale, said with what changed.
 */
import { readFile } from '../fs-async.js';
import { UserError } from '../errors.js';
import type { Runner } from '../exec.js';
import { writeFileAtomic } from '../base/atomic.js';
import { loadDesired } from '../manifest/load.js';
import { PLAN_FORMAT_VERSION, type Plan } from '../model/plan.js';
import { hostContext, type FleetPaths } from '../paths.js';
import { actionsDigest, observedDigest, observedSummary, summaryChanges } from '../plan/digest.js';
import { actionTarget, actionVerb } from '../render/plan-text.js';
import { planFor, type Session } from './session.js';
import { localFleet, type SourceCommit } from './source.js';
import { fleetAtCommit } from '../source/follow.js';
import type { DesiredFleet } from '../model/desired.js';

export interface SavedPlan {
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
  /** The git source's commit the plan was made from (docs/hosts.md); absent without a git source. */
  source?: SourceCommit;
}

/** Save a session's plan to `out` (atomically, owner-only), with what the machine looked like. */
export async function savePlan(s: Session, prune: boolean, out: string): Promise<void> {
  const saved: SavedPlan = {
    format_version: PLAN_FORMAT_VERSION,
    kind: 'mosaic-fleet-plan',
    created_at: new Date(s.observed.nowMs).toISOString(),
    mosaic_home: s.paths.mosaicHome,
    unit_dir: s.paths.unitDir,
    manifests: s.paths.manifests,
    prune,
    plan: s.plan,
    observed: observedSummary(s.observed),
    ...(s.source !== undefined ? { source: s.source } : {}),
  };
  await writeFileAtomic(out, `${JSON.stringify(saved, null, 2)}\n`, 0o600);
}

export async function readSavedPlan(file: string): Promise<SavedPlan> {
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

/**
 * The fleet a saved plan was made from: its manifests; with a git source, the commit it names, read from the
 * checkout (the checkout itself moves at the next reconcile). A host that follows another source refuses it.
 */
async function savedFleet(saved: SavedPlan, paths: FleetPaths, runner: Runner): Promise<DesiredFleet> {
  if (saved.source === undefined) return loadDesired([saved.manifests], hostContext(paths));
  const local = await localFleet(paths);
  if (
    local.kind !== 'source' ||
    local.settings.url !== saved.source.url ||
    local.settings.ref !== saved.source.ref
  )
    throw new UserError(
      `the saved plan was made from the git source ${saved.source.url}#${saved.source.ref}, which this host no longer follows; plan again`,
    );
  return fleetAtCommit(local.settings, paths.stateDir, hostContext(paths), runner, saved.source.commit);
}

/**
 * Plan again, now, from the manifests the saved plan was made from (under the caller's lock): the fresh session,
 * and why the saved plan is stale (null when it is not). Stale when the machine changed (units, sessions, files),
 * or when planning now would act differently (a pane that drifted since, a manifest edited since): then the
 * reviewed plan is no longer what apply would do.
 */
export async function replanSaved(
  saved: SavedPlan,
  paths: FleetPaths,
  runner: Runner,
): Promise<{ fresh: Session; stale: string | null }> {
  const desired = await savedFleet(saved, paths, runner);
  const fresh = await planFor(desired, paths, saved.prune, runner, { source: saved.source });
  const stale =
    observedDigest(fresh.observed) !== saved.plan.observedDigest
      ? `the machine changed since it was made${whatChanged(saved.observed, observedSummary(fresh.observed))}`
      : actionsDigest(fresh.plan.actions) !== actionsDigest(saved.plan.actions)
        ? `planning now would do something else (the manifests or the fleet changed since it was made)${actionChanges(saved.plan, fresh.plan)}`
        : null;
  return { fresh, stale };
}
