/**
 * The workspaces decider (docs/workspaces.md): each agent's git worktree made, locked, moved, or removed, from
 * (desired, observed). Pure. Three questions, one function each:
 *   workspaceRefusals   bad input the machine shows (not a repository, no such base, a path in the way): the
 *                       whole run is refused before anything is made;
 *   removalCandidates   the fleet's worktrees this plan would remove: their work is observed (a second, narrow
 *                       pass) before deciding;
 *   decideWorkspaces    the actions: add / move / lock before the agents start, removals of clean worktrees last.
 */
import type { DesiredAgent, DesiredFleet, DesiredWorkspace } from '../../model/desired.js';
import type { Observed, ObservedRepo, ObservedWorktree, WorktreeRecord } from '../../model/observed.js';
import type { WorkspaceAction, WorktreeRemoveAction } from '../../model/plan.js';
import { agentOfLock, lockReason } from '../../workspaces/git.js';
import { describeWork, isClean } from '../../workspaces/work.js';
import { isLocalAgent } from '../../model/desired.js';
import { livePane } from '../lookup.js';

export interface WorkspaceDecision {
  /** Before any unit action (an agent's first start needs its worktree): adds, moves, locks. */
  prepare: WorkspaceAction[];
  /** Last, after the stops of pruned agents: removals of worktrees that hold no work. */
  removals: WorktreeRemoveAction[];
  /** Worktrees kept although the plan would have removed them, and why. */
  warnings: string[];
  /** The state's record of the fleet's worktrees once this plan is applied, by path. */
  worktrees: Record<string, WorktreeRecord>;
  /** Working directories this plan makes (a worktree added or moved there): their absence holds no start back. */
  madeDirs: Set<string>;
}

/** A worktree of the fleet the plan would remove (when it holds no work). */
export interface RemovalCandidate {
  agent: string;
  repo: string;
  path: string;
  branch: string | null;
  why: string;
  /** How the base is named in messages (`main`); null = "its base". */
  baseLabel: string | null;
  /** Commits whose history is safe: the recorded base and the base as it is now. */
  safe: string[];
  /** With `prune_branches: merged`: the commit the branch must be merged into to be deleted too. */
  mergedInto: string | null;
  /** The agent is pruned (its session is ended earlier in the same plan), not kept with a new workspace. */
  pruned: boolean;
}

function sortedAgents(desired: DesiredFleet, observed: Observed): DesiredAgent[] {
  return desired.agents
    .filter((a) => a.workspace != null && a.enabled && isLocalAgent(a, observed.hostname))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

function workspaceOf(a: DesiredAgent): DesiredWorkspace {
  if (a.workspace == null) throw new Error(`agent ${a.name} has no workspace`);
  return a.workspace;
}

function repoOf(observed: Observed, repo: string): ObservedRepo | undefined {
  return observed.workspaces?.repos[repo];
}

/** The revision the base is read from now: the manifest's base, else the repository's HEAD. */
function baseRev(base: string | null | undefined): string {
  return base ?? 'HEAD';
}

/** Bad input only the machine can show, one line each; any of them refuses the whole run (nothing is made). */
export function workspaceRefusals(desired: DesiredFleet, observed: Observed): string[] {
  const out: string[] = [];
  const allListed = Object.values(observed.workspaces?.repos ?? {}).flatMap((r) => r.worktrees);
  for (const agent of sortedAgents(desired, observed)) {
    const ws = workspaceOf(agent);
    const who = `agent ${agent.name}: workspace`;
    const repo = repoOf(observed, ws.repo);
    if (repo === undefined) continue;
    if (repo.error !== null) {
      out.push(`${who} repo ${ws.repo} is not a git repository (git: ${repo.error})`);
      continue;
    }
    if (ws.base !== null && (repo.commits[ws.base] ?? null) === null) {
      out.push(`${who} base ${JSON.stringify(ws.base)} is not a commit in ${ws.repo}`);
      continue;
    }
    const here = repo.worktrees.find((w) => w.path === ws.path);
    if (here !== undefined) {
      if (here.branch !== ws.branch) {
        out.push(
          `${who} path ${ws.path} is a worktree on ${here.branch ?? 'a detached HEAD'}, the manifest says branch ${ws.branch}; switch it or move it away by hand`,
        );
      }
      continue;
    }
    const around = allListed.find((w) => ws.path.startsWith(`${w.path}/`));
    if (around !== undefined) {
      out.push(`${who} path ${ws.path} is inside the worktree ${around.path}`);
      continue;
    }
    if (observed.workspaces?.paths[ws.path] === 'present') {
      out.push(
        `${who} path ${ws.path} exists and is not a worktree of ${ws.repo}; move it away or choose another path`,
      );
      continue;
    }
    const other = repo.worktrees.find((w) => w.branch === ws.branch && w.exists);
    if (other !== undefined && movedFrom(agent, repo, observed) === undefined) {
      out.push(`${who} branch ${ws.branch} is already checked out at ${other.path}`);
      continue;
    }
    const branchExists = (repo.commits[`refs/heads/${ws.branch}`] ?? null) !== null;
    if (!branchExists && (repo.commits[baseRev(ws.base)] ?? null) === null) {
      out.push(
        `${who} repo ${ws.repo} has no commit to start branch ${ws.branch} from (an empty repository?)`,
      );
    }
  }
  return out;
}

/** The agent's own worktree elsewhere in the same repository on the same branch: moved, not made anew. */
function movedFrom(
  agent: DesiredAgent,
  repo: ObservedRepo,
  observed: Observed,
): ObservedWorktree | undefined {
  const ws = workspaceOf(agent);
  const owner = (w: ObservedWorktree) =>
    agentOfLock(w.locked) ?? observed.state.worktrees?.[w.path]?.agent ?? null;
  return repo.worktrees.find(
    (w) => w.path !== ws.path && w.exists && w.branch === ws.branch && owner(w) === agent.name,
  );
}

/** Every worktree of the fleet git lists (locked with the fleet's reason, or recorded in the state), with its agent. */
function fleetWorktrees(observed: Observed): { repo: ObservedRepo; w: ObservedWorktree; agent: string }[] {
  const out: { repo: ObservedRepo; w: ObservedWorktree; agent: string }[] = [];
  for (const repo of Object.values(observed.workspaces?.repos ?? {})) {
    for (const w of repo.worktrees) {
      const agent = agentOfLock(w.locked) ?? observed.state.worktrees?.[w.path]?.agent ?? null;
      if (agent !== null) out.push({ repo, w, agent });
    }
  }
  return out.sort((a, b) => (a.w.path < b.w.path ? -1 : a.w.path > b.w.path ? 1 : 0));
}

/** The fleet's worktrees this plan would remove: pruned agents' (only with `prune`), and replaced ones. */
export function removalCandidates(
  desired: DesiredFleet,
  observed: Observed,
  prune: boolean,
): RemovalCandidate[] {
  const out: RemovalCandidate[] = [];
  for (const { repo, w, agent } of fleetWorktrees(observed)) {
    if (!w.exists) continue;
    const named = desired.agents.find((a) => a.name === agent);
    const record = observed.state.worktrees?.[w.path];
    let why: string;
    let base = record?.base ?? null;
    let pruneBranches = record?.pruneBranches === 'merged';
    if (named === undefined) {
      if (!prune) continue;
      why = `no manifest names agent ${agent}`;
    } else {
      if (!isLocalAgent(named, observed.hostname)) continue;
      const ws = named.workspace;
      if (ws != null && ws.path === w.path) continue;
      if (ws != null && named.enabled && ws.repo === repo.repo && ws.branch === w.branch) continue; // a move
      why = ws == null ? `agent ${agent} no longer has a workspace` : `agent ${agent}'s workspace changed`;
      if (ws != null && ws.repo === repo.repo) {
        base = ws.base;
        pruneBranches = ws.pruneBranches === 'merged';
      }
    }
    const now = repo.commits[baseRev(base)] ?? null;
    const recorded = w.branch !== null ? repo.recordedBases[w.branch] : undefined;
    const safe = [...new Set([recorded, now].filter((x): x is string => typeof x === 'string'))];
    out.push({
      agent,
      repo: repo.repo,
      path: w.path,
      branch: w.branch,
      why,
      baseLabel: base,
      safe,
      mergedInto: pruneBranches ? now : null,
      pruned: named === undefined,
    });
  }
  return out;
}

/** Whether the agent's running session still works in `path` (what its pane was started with). */
function runsIn(agent: string, path: string, observed: Observed): boolean {
  return Object.values(observed.tmux.sockets).some(
    (s) => livePane(s, agent)?.environ?.MOSAIC_AGENT_WORKDIR === path,
  );
}

function prepareFor(agent: DesiredAgent, observed: Observed): WorkspaceAction | null {
  const ws = workspaceOf(agent);
  const repo = repoOf(observed, ws.repo);
  if (repo === undefined || repo.error !== null) return null;
  const reason = lockReason(agent.name);
  const base = { agent: agent.name, repo: ws.repo, path: ws.path, lockReason: reason };
  const here = repo.worktrees.find((w) => w.path === ws.path);
  const branchTip = repo.commits[`refs/heads/${ws.branch}`] ?? null;
  const startFrom = repo.commits[baseRev(ws.base)] ?? null;
  const recordBase = repo.recordedBases[ws.branch] === undefined ? startFrom : null;
  if (here !== undefined && !here.exists) {
    return {
      kind: 'worktree-add',
      ...base,
      branch: ws.branch,
      startPoint: null,
      recordBase,
      stale: true,
      reason: `worktree directory was deleted: added again from branch ${ws.branch}, with its commits`,
    };
  }
  if (here !== undefined) {
    if (here.locked !== null) return null;
    return { kind: 'worktree-lock', ...base, reason: 'not locked: a `git worktree prune` could drop it' };
  }
  const from = movedFrom(agent, repo, observed);
  if (from !== undefined) {
    return {
      kind: 'worktree-move',
      ...base,
      path: from.path,
      to: ws.path,
      reason: `the manifest moved ${agent.name}'s worktree (same branch ${ws.branch}; nothing in it is lost)`,
    };
  }
  return {
    kind: 'worktree-add',
    ...base,
    branch: ws.branch,
    startPoint: branchTip === null ? startFrom : null,
    recordBase,
    stale: false,
    reason:
      branchTip === null
        ? `no worktree: new branch ${ws.branch} from ${ws.base ?? 'HEAD'} (${(startFrom ?? '?').slice(0, 12)})`
        : `no worktree: branch ${ws.branch} exists and is checked out as it is`,
  };
}

export function decideWorkspaces(
  desired: DesiredFleet,
  observed: Observed,
  prune: boolean,
): WorkspaceDecision {
  const decision: WorkspaceDecision = {
    prepare: [],
    removals: [],
    warnings: [],
    worktrees: {},
    madeDirs: new Set(),
  };
  if (observed.workspaces === undefined) return decision;
  // What the state remembers stays remembered while git still lists it; what the manifests ask for is added.
  for (const { repo, w, agent } of fleetWorktrees(observed)) {
    const old = observed.state.worktrees?.[w.path];
    decision.worktrees[w.path] = old ?? { agent, repo: repo.repo, branch: w.branch ?? '' };
  }
  for (const agent of sortedAgents(desired, observed)) {
    const ws = workspaceOf(agent);
    const a = prepareFor(agent, observed);
    if (a !== null) decision.prepare.push(a);
    if (a !== null && a.kind !== 'worktree-lock') decision.madeDirs.add(agent.workingDirectory);
    if (repoOf(observed, ws.repo)?.error === null) {
      decision.worktrees[ws.path] = {
        agent: agent.name,
        repo: ws.repo,
        branch: ws.branch,
        ...(ws.base !== null ? { base: ws.base } : {}),
        ...(ws.pruneBranches === 'merged' ? { pruneBranches: 'merged' as const } : {}),
      };
    }
  }
  decision.worktrees = Object.fromEntries(
    Object.entries(decision.worktrees).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
  );
  for (const c of removalCandidates(desired, observed, prune)) {
    const work = observed.workspaces.work[c.path];
    const kept = (detail: string) =>
      decision.warnings.push(`${c.agent}: worktree ${c.path} kept: ${detail} (${c.why})`);
    // A pruned agent's session is ended before the removals; a kept agent may still work in its old worktree.
    if (!c.pruned && runsIn(c.agent, c.path, observed)) {
      kept('the agent still runs in it; it is removed once the agent restarts elsewhere');
    } else if (work === undefined) {
      kept('its work was not looked at');
    } else if (!isClean(work)) {
      kept(describeWork(work, c.baseLabel));
    } else {
      decision.removals.push({
        kind: 'worktree-remove',
        agent: c.agent,
        repo: c.repo,
        path: c.path,
        branch: c.branch,
        safe: c.safe,
        deleteBranchIfMergedInto: c.mergedInto,
        reason: `${c.why}; it holds no work${c.branch !== null ? (c.mergedInto !== null ? ` (branch ${c.branch} deleted only if merged)` : ` (branch ${c.branch} is kept)`) : ''}`,
      });
    }
  }
  return decision;
}
