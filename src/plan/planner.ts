/**
 * The planner: a pure function of (desired, observed) -> plan. No I/O, no clock; the same inputs give the same plan.
 *
 * `plan()` composes deciders (src/plan/deciders/), one per resource, each a pure function of the input and of
 * what earlier deciders produced (passed as plain values). Their actions are concatenated in dependency order:
 *   files -> one daemon-reload (only when a unit file changed or systemd says it needs one) -> enable -> start/restart
 *   -> respawn panes -> disable/stop/kill/archive (disabled agents, and orphans only with --prune).
 * A new concern (budgets, workspaces, alerts, ownership) is a new decider and one line here, never a branch in
 * an old one.
 */
import type { Action, Plan } from '../model/plan.js';
import { PLAN_FORMAT_VERSION } from '../model/plan.js';
import { observedDigest } from './digest.js';
import { decideAgents } from './deciders/agents.js';
import { decideBudgets, explainBudgets, withoutPaused } from './deciders/budgets.js';
import { decideEnvFiles } from './deciders/env.js';
import { decideFiles } from './deciders/files.js';
import { decideOwnershipOf, withOwnership } from './deciders/ownership.js';
import { scopeOf, type PlanInput } from './deciders/input.js';
import { decideRemovals, staleBackoff } from './deciders/removals.js';
import { statePatch, summarize } from './deciders/state.js';
import { decideUnits } from './deciders/units.js';
import { decideWarnings } from './deciders/warnings.js';
import { decideWorkspaces } from './deciders/workspaces.js';

export type { PlanInput } from './deciders/input.js';
export { socketLabel } from './deciders/input.js';
export { DEFAULT_RESTART } from './deciders/restart-policy.js';
export { claimSession, findOrphans, orphanSockets } from './deciders/sessions.js';
export { runtimeProgram, runtimePrograms } from './deciders/start-check.js';
export { summarize } from './deciders/state.js';

export function plan(original: PlanInput): Plan {
  const { observed } = original;
  // Budgets first: the fleet every other decider reads is the effective one (a downgrade's model), and a paused
  // agent is not among those that should run.
  const budgets = decideBudgets(original);
  const input: PlanInput = { ...original, desired: budgets.desired };
  const scope = withoutPaused(scopeOf(input.desired, observed), budgets.paused);
  // Each decider in dependency order; later ones read what earlier ones decided, nothing else is shared.
  const files = decideFiles(input, scope);
  const env = decideEnvFiles(input, scope);
  const workspaces = decideWorkspaces(input.desired, observed, input.prune);
  const units = decideUnits(input, scope, files);
  const agents = decideAgents(input, scope, { env, files, madeDirs: workspaces.madeDirs });
  const removals = decideRemovals(input, scope);

  const ordered: Action[] = [
    ...files.actions,
    ...env.actions,
    // Worktrees before any unit action: an agent's first start needs its working directory.
    ...workspaces.prepare,
    ...units,
    ...explainBudgets(agents.actions, budgets),
    // Pauses with the other stops, after every start.
    ...budgets.actions,
    ...removals.actions,
    // Last: a worktree is removed only after the session working in it has ended.
    ...workspaces.removals,
  ];
  // Many hosts: starts of agents this host does not hold are held, agents moved away are stopped once idle.
  const ownership = decideOwnershipOf(input);
  const {
    actions,
    held,
    warnings: ownershipWarnings,
  } = withOwnership({ actions: ordered, held: agents.held, warnings: [] }, ownership, observed);
  const warnings = decideWarnings(input, scope, {
    leftAlone: removals.leftAlone,
    blocked: agents.blocked,
    acting: actions.length > 0,
    madeDirs: workspaces.madeDirs,
  });
  return {
    formatVersion: PLAN_FORMAT_VERSION,
    observedDigest: observedDigest(observed),
    actions,
    orphans: removals.orphans,
    skipped: scope.skipped,
    warnings: [...budgets.warnings, ...warnings, ...workspaces.warnings, ...ownershipWarnings],
    deferred: agents.deferred,
    held,
    notRunning: agents.notRunning,
    deferredRestarts: agents.deferredRestarts,
    restartPending: agents.restartPending,
    backoffResets: [...agents.backoffResets, ...staleBackoff(input, scope)].sort(),
    ...(Object.keys(workspaces.worktrees).length > 0 ? { worktrees: workspaces.worktrees } : {}),
    ...(ownership !== null ? { ownership } : {}),
    patch: statePatch(observed, actions, scope.localFleet.sockets),
    summary: summarize(actions),
  };
}
