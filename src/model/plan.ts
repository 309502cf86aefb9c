/**
 * The plan: plain data, the diff between desired and observed. Apply is driven by `actions` alone;
 * reasons are for people and never steer what is done.
 */
import type { Operation } from 'fast-json-patch';
import type { WorktreeRecord } from './observed.js';
import type { OwnershipDecision } from './register.js';

export const PLAN_FORMAT_VERSION = 1;

export type FileRole = 'unit' | 'env' | 'framework';

interface Base {
  /** One line saying why, for people. */
  reason: string;
}

export interface WriteFileAction extends Base {
  kind: 'write-file';
  role: FileRole;
  path: string;
  /** Current content, null when the file does not exist (create). */
  before: string | null;
  after: string;
  mode: number;
  /** The operator edited this file since the reconciler last wrote it: copy it aside once before replacing. */
  backup: boolean;
  /** The agent this file belongs to, if any. */
  agent: string | null;
}

export interface DaemonReloadAction extends Base {
  kind: 'daemon-reload';
}

export interface UnitAction extends Base {
  kind: 'enable' | 'disable' | 'start' | 'restart' | 'stop';
  unit: string;
  agent: string | null;
  /** It ends a running agent's session (its conversation is resumed where the runtime can): said apart. */
  disruptive?: boolean;
}

/** Bring an agent's pane back (dead, missing or drifted): restarting its unit re-runs the session script. */
export interface RespawnAction extends Base {
  kind: 'respawn';
  agent: string;
  unit: string;
  socketName: string;
  session: string;
  /** Which consecutive attempt this is (1 = first since the agent was last healthy): drives the back-off. */
  attempt: number;
  /** The pane still runs something (a drifted or hung program): respawning ends it. Said apart. */
  disruptive?: boolean;
}

export interface KillSessionAction extends Base {
  kind: 'kill-session';
  agent: string | null;
  socketName: string;
  session: string;
  /**
   * The ownership marker the session must still carry when it is ended (the Mosaic home; the `@mosaic-fleet-home`
   * session option): checked again just before the kill, so a same-named session that took its place is spared.
   */
  owner?: string;
  /** It ends a running agent's session (a socket move): said apart, like a restart. */
  disruptive?: boolean;
  /**
   * End it the graceful way: run the agent's stop script (tools/fleet/stop-agent-session.sh: the runtime's exit
   * keys, a grace period, then the kill) with this environment, the session's own socket in it.
   */
  graceful?: { script: string; env: Record<string, string> };
}

/** Move a file aside (never delete): pruned agents' env files. */
export interface ArchiveFileAction extends Base {
  kind: 'archive-file';
  agent: string | null;
  path: string;
  to: string;
}

/**
 * Make an agent's git worktree (docs/workspaces.md): a new branch from `startPoint`, or the existing branch as
 * it is (never reset). Locked at once with the fleet's reason.
 */
export interface WorktreeAddAction extends Base {
  kind: 'worktree-add';
  agent: string;
  repo: string;
  path: string;
  branch: string;
  /** The commit a new branch starts from; null = the branch exists and is checked out as it is. */
  startPoint: string | null;
  /** Recorded as the branch's base (git config `branch.<b>.mosaicfleetbase`) when no base is recorded yet. */
  recordBase: string | null;
  /** git still lists this (locked) worktree but its directory was deleted by hand: added again over that entry. */
  stale: boolean;
  lockReason: string;
}

/** Lock an agent's worktree with git's own lock, so a `git worktree prune` by hand leaves it alone. */
export interface WorktreeLockAction extends Base {
  kind: 'worktree-lock';
  agent: string;
  repo: string;
  path: string;
  lockReason: string;
}

/** Move an agent's worktree to the path the manifest now gives (same repository and branch): nothing is lost. */
export interface WorktreeMoveAction extends Base {
  kind: 'worktree-move';
  agent: string;
  repo: string;
  path: string;
  to: string;
  lockReason: string;
}

/**
 * Remove a worktree the fleet made (its agent pruned, or its workspace changed), planned only when it was clean;
 * checked again right before: no uncommitted or untracked file, no commit outside `safe` and the upstream.
 */
export interface WorktreeRemoveAction extends Base {
  kind: 'worktree-remove';
  agent: string;
  repo: string;
  path: string;
  branch: string | null;
  /** Commits whose history is safe: the base (recorded, and as the manifest names it now). */
  safe: string[];
  /** `prune_branches: merged`: the branch is deleted too when its tip is in this commit's history. */
  deleteBranchIfMergedInto: string | null;
}

export type WorkspaceAction =
  WorktreeAddAction | WorktreeLockAction | WorktreeMoveAction | WorktreeRemoveAction;

export type Action =
  | WriteFileAction
  | DaemonReloadAction
  | UnitAction
  | RespawnAction
  | KillSessionAction
  | ArchiveFileAction
  | WorkspaceAction;

export type ActionKind = Action['kind'];

export interface Orphan {
  agent: string;
  unit: string | null;
  session: string | null;
  socketName: string | null;
  envFile: string | null;
}

export interface SkippedAgent {
  agent: string;
  host: string;
  reason: string;
}

/** A respawn the crash-loop back-off holds back until `nextAttemptMs`. */
export interface DeferredRespawn {
  agent: string;
  reason: string;
  attempts: number;
  nextAttemptMs: number;
}

/**
 * A start, restart or respawn the planner will not do now although the agent needs it, because doing it would
 * end a working session for one known to fail, or start one that cannot run (docs/runtimes.md). Pending: the
 * fleet is not converged, and a later run does it once the cause is gone.
 */
export interface HeldAction {
  agent: string;
  action: 'start' | 'restart' | 'respawn';
  /** Why the agent needs it. */
  need: string;
  /** Why it is held back. */
  reason: string;
}

/**
 * An agent of the manifests this plan leaves not running because its start is known to fail: its unit's start,
 * or the respawn of its missing session or dead pane, is held. A run that leaves one fails (exit 1) once it has
 * done everything else; a restart held or deferred for an agent that still runs is not that.
 */
export interface NotRunning {
  agent: string;
  action: 'start' | 'respawn';
  /** Why it cannot start (the held action's reason). */
  reason: string;
}

/** A restart a running agent needs, not done in this run: the policy or the budget defers it. Pending. */
export interface DeferredRestart {
  agent: string;
  /** Why it needs a restart. */
  need: string;
  /** Why not now (busy, waiting, manual policy, budget). */
  reason: string;
  /** Unix ms since when it has been deferred. */
  sinceMs: number;
}

/** Crash-loop back-off: the gap after attempt n is min(initial * 2^(n-1), max). */
export interface BackoffPolicy {
  initialMs: number;
  maxMs: number;
  /** An agent healthy for this long after its last respawn starts again from the first gap. */
  resetAfterMs: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { initialMs: 10_000, maxMs: 300_000, resetAfterMs: 120_000 };

export function backoffDelayMs(policy: BackoffPolicy, attempt: number): number {
  return Math.min(policy.initialMs * 2 ** Math.max(0, attempt - 1), policy.maxMs);
}

export interface PlanSummary {
  add: number;
  change: number;
  remove: number;
  /** Units started/restarted/reloaded and panes respawned. */
  other: number;
}

export interface Plan {
  formatVersion: typeof PLAN_FORMAT_VERSION;
  /** Digest of the observed state the plan was made from; a saved plan is refused when it no longer matches. */
  observedDigest: string;
  actions: Action[];
  orphans: Orphan[];
  skipped: SkippedAgent[];
  warnings: string[];
  /** Respawns held back by the crash-loop back-off: the fleet is not converged, but acting now would thrash. */
  deferred: DeferredRespawn[];
  /** Starts, restarts and respawns held back because the new start is known to fail. */
  held: HeldAction[];
  /** Agents left not running because their start is held (a subset of `held`): the run fails. */
  notRunning: NotRunning[];
  /** Restarts of running agents deferred by the restart policy or the disruption budget. */
  deferredRestarts: DeferredRestart[];
  /** The state file's record of deferred restarts after this plan (agent -> since, unix ms). */
  restartPending: Record<string, number>;
  /** Agents whose back-off record is over (healthy long enough, or gone): dropped from the state file. */
  backoffResets: string[];
  /** The state file's record of the fleet's worktrees after this plan (by path); absent = none. */
  worktrees?: Record<string, WorktreeRecord>;
  /**
   * Many hosts: who may run each agent, from the register (src/plan/deciders/ownership.ts); its claims are made
   * with the cycle's publication. Absent for a fleet without `register:`.
   */
  ownership?: OwnershipDecision[];
  /** Structured state changes (observed projection -> desired projection) as RFC 6902 JSON Patch. */
  patch: Operation[];
  summary: PlanSummary;
}
