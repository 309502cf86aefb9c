import type { AlertCondition } from './desired.js';
import type { ObservedRegister } from './register.js';

/**
 * The observed fleet: one snapshot of the machine, taken by src/observe/ with a constant number of spawns.
 * Everything the planner needs (file bytes, "now", linger, back-off state) is in here, so planning is pure.
 */

export interface ObservedUnit {
  /** Full unit name, e.g. `mosaic-agent@coder0.service`. */
  name: string;
  /** loaded | not-found | masked | error | '' when systemd does not know it. */
  loadState: string;
  /** active | inactive | failed | activating | deactivating | reloading | '' */
  activeState: string;
  /** exited | running | dead | failed | ... */
  subState: string;
  /** enabled | disabled | static | linked | masked | indirect | null when there is no unit file. */
  unitFileState: string | null;
}

export interface ObservedProcess {
  pid: number;
  ppid: number;
  /** argv from /proc/<pid>/cmdline (falls back to [comm] for kernel threads or zombies). */
  argv: string[];
  /** The executable (/proc/<pid>/exe, links resolved); null when it cannot be read. */
  exe?: string | null;
}

/** A runtime program looked up on the user manager's PATH (as the start script will look it up). */
export interface ResolvedProgram {
  /** Where PATH finds it; null when it is not there (or not executable). */
  path: string | null;
  /** That path with every link resolved (an npm bin link -> the real script or binary). */
  realPath: string | null;
}

export interface ObservedPane {
  session: string;
  window: number;
  pane: number;
  panePid: number | null;
  /** tmux's #{pane_current_command}: the foreground process name. */
  currentCommand: string;
  dead: boolean;
  deadStatus: number | null;
  /** Signal that killed the pane's program (#{pane_dead_signal}); null when it exited or is alive. */
  deadSignal?: number | null;
  /** The command the pane was started with (#{pane_start_command}). */
  startCommand: string;
  /** Unix seconds of last activity in the pane's session (#{session_activity} / #{window_activity}). */
  activity: number | null;
  /** Unix seconds the session was created (#{session_created}). */
  created: number | null;
  path: string;
  /** The pane process and its descendants, pane process first (from one read of the process table). */
  processes: ObservedProcess[];
  /**
   * The `MOSAIC_*` variables the pane's process was started with (/proc/PID/environ): what the running agent
   * sees of its env file and unit. null when it cannot be read (a dead pane, another user's process).
   */
  environ?: Record<string, string> | null;
}

export interface ObservedSocket {
  /** '' = default socket. */
  socketName: string;
  /** false when no tmux server listens on the socket (not an error). */
  serverRunning: boolean;
  /** Session names on the socket (including ones with no panes listed). */
  sessions: string[];
  panes: ObservedPane[];
  /**
   * The fleet's ownership marker per session: the `@mosaic-fleet-home` session option the start script sets when
   * it creates an agent's session (the Mosaic home it belongs to). Sessions without it are absent. A session is
   * ended by the reconciler only when this names its own home (and the socket is one the fleet uses or used).
   */
  owners?: Record<string, string>;
}

export interface ObservedHeartbeat {
  agent: string;
  path: string;
  exists: boolean;
  /** Parsed `ts=` in unix seconds; null when missing or malformed. */
  ts: number | null;
  /** now - ts, in seconds; null when unknown. */
  ageSeconds: number | null;
  /** true when the file exists but `ts` is missing or not a number (`ts=x`). Unknown health, never a crash. */
  malformed: boolean;
  /** Every `key=value` line in the file. */
  keys: Record<string, string>;
  /**
   * The runtime's own record of the conversation (the `transcript=` file its hooks name): its size and last
   * change. Absent when the heartbeat names none; null when it names one that cannot be stat'ed.
   */
  record?: { path: string; bytes: number; mtimeMs: number } | null;
}

export interface ObservedFile {
  path: string;
  /** File content (utf8); null when the file does not exist. */
  content: string | null;
  /** Permission bits (e.g. 0o644); null when missing. */
  mode: number | null;
  /** Set when a symbolic link stands where the file belongs: its target. The target is never read. */
  link?: string;
}

/** A tool we could not reach is a typed condition, not an exception. */
export interface Availability {
  ok: boolean;
  /** One clear line when not ok, e.g. "tmux not found on PATH". */
  error: string | null;
}

/** Crash-loop back-off per agent and what the reconciler last wrote, persisted in the state file. */
export interface BackoffEntry {
  /** Consecutive respawn attempts without a healthy period. */
  attempts: number;
  /** Unix ms of the last respawn attempt. */
  lastAttemptMs: number;
  /** Unix ms before which no respawn is attempted. */
  nextAttemptMs: number;
}

/** One entry of `git worktree list --porcelain`. */
export interface ObservedWorktree {
  path: string;
  /** The commit checked out; null for a bare repository. */
  head: string | null;
  /** The branch's short name (`fleet/a`); null when detached or bare. */
  branch: string | null;
  /** The lock's reason ('' when locked without one); null when not locked. */
  locked: string | null;
  /** Whether the directory is there (a locked worktree deleted by hand stays listed, its directory gone). */
  exists: boolean;
}

/** A repository some agent's workspace names: one `git worktree list` and two small questions, per repository. */
export interface ObservedRepo {
  repo: string;
  /** One line when git cannot read it (not a git repository, git missing); then nothing else is known. */
  error: string | null;
  /** The main worktree first, as git lists them. */
  worktrees: ObservedWorktree[];
  /** Revisions asked about (`HEAD`, bases, `refs/heads/<branch>`) -> the commit; null when there is none. */
  commits: Record<string, string | null>;
  /** Per branch, the base commit recorded when the fleet made its worktree (`branch.<b>.mosaicfleetbase`). */
  recordedBases: Record<string, string>;
}

/** What may be lost with a worktree: asked only about the few the plan would remove. */
export interface WorktreeWork {
  path: string;
  /** Tracked files changed (staged or not), or conflicted. */
  uncommitted: number;
  untracked: number;
  /** Commits on its HEAD in neither the base(s) nor the branch's upstream. */
  unmerged: number;
  /** The branch's upstream (`origin/x`); null when it has none. */
  upstream: string | null;
  /** One line when git could not say (then it counts as not clean). */
  error: string | null;
}

/** An agent's worktree as `fleet ps` shows it. */
export interface WorkspaceStatus {
  path: string;
  /** The branch checked out there (null: detached, or no worktree). */
  branch: string | null;
  /** Whether git lists the worktree and its directory is there. */
  present: boolean;
  /** Uncommitted (tracked) and untracked files; null when unknown (no worktree, or git could not say). */
  uncommitted: number | null;
  untracked: number | null;
  /** Why the rest is unknown, when it is. */
  error: string | null;
}

export interface ObservedWorkspaces {
  /** By the repository path the manifests (or the state's records) give. */
  repos: Record<string, ObservedRepo>;
  /** What stands at each desired worktree path that git does not list: absent, or something else. */
  paths: Record<string, 'absent' | 'present'>;
  /** By worktree path: the work in the worktrees the plan would remove (the second, narrow pass). */
  work: Record<string, WorktreeWork>;
}

/** A worktree the fleet made, remembered so a pruned agent's worktree is still found (and its repository asked). */
export interface WorktreeRecord {
  agent: string;
  repo: string;
  branch: string;
  /** The manifest's base (`main`) when it named one: what "not in base" is judged against, and named. */
  base?: string;
  /** The manifest's `prune_branches: merged`, remembered for when the agent is pruned. */
  pruneBranches?: 'merged';
}

export interface ReconcilerState {
  version: 1;
  /** sha256 of the bytes the reconciler last wrote, per absolute path: tells operator edits apart. */
  written: Record<string, string>;
  backoff: Record<string, BackoffEntry>;
  /**
   * Per agent, the tmux sockets the reconciler told it to use (recorded when it writes the agent's env file, or
   * respawns it): the servers its sessions may be on, and so the only ones where the reconciler may end them.
   */
  sessionSockets?: Record<string, string[]>;
  /**
   * Per agent, since when (unix ms) a restart it needs has been deferred (by the restart policy or the budget).
   * Only the "since" is remembered: whether a restart is needed at all is derived from observation every time.
   */
  restartPending?: Record<string, number>;
  /** The worktrees the fleet made for its agents, by worktree path (docs/workspaces.md). */
  worktrees?: Record<string, WorktreeRecord>;
  /**
   * Per agent over a `warn` budget, when (unix ms) that was last journaled: once per window, not every run
   * (src/plan/deciders/budget-warn.ts).
   */
  budgetWarned?: Record<string, number>;
  /**
   * Alert episodes (docs/alerts.md): open ones, and resolved ones whose message is still to be delivered. Kept
   * here, not in memory, so a restarted watcher never fires an open episode again.
   */
  alerts?: AlertEpisode[];
}

/** One notification of an episode: pending until a sink took it, failed after its bounded attempts. */
export interface AlertDelivery {
  status: 'pending' | 'delivered' | 'failed';
  attempts: number;
  /** Unix ms of the last attempt; null before the first. */
  lastAttemptMs: number | null;
  /** The last attempt's failure, one line. */
  error?: string;
}

/** A condition holding for one agent under one rule, from its start to its end (Alertmanager's "alert"). */
export interface AlertEpisode {
  rule: string;
  agent: string;
  condition: AlertCondition;
  /** Unix ms the condition began (as observation tells, or when it was first seen). */
  sinceMs: number;
  /** Unix ms it fired (held for the rule's `after`); null while it holds but not yet for that long. */
  firedAtMs: number | null;
  /** Unix ms it was seen to end; null while open. */
  resolvedAtMs: number | null;
  /** The agent's state as its runtime last reported it (busy, waiting, ...), when known. */
  state: string | null;
  /** One line: what holds and why. */
  detail: string;
  fire: AlertDelivery | null;
  resolve: AlertDelivery | null;
}

/** A temp file one of the fleet's writers makes next to its target (see src/base/temp-files.ts for the names). */
export interface ObservedTempFile {
  path: string;
  /** The writer's pid, from the name. */
  pid: number;
  /** Whether a process with that pid is running now (it may be another process that reused the pid). */
  writerAlive: boolean;
  /** Last modification, unix ms. */
  mtimeMs: number;
}

export interface Observed {
  /** Unix milliseconds when the snapshot was taken. */
  nowMs: number;
  hostname: string;
  paths: {
    mosaicHome: string;
    unitDir: string;
  };
  systemd: Availability & {
    /** Every `mosaic-*` unit systemd knows (loaded or with a unit file), by name. */
    units: Record<string, ObservedUnit>;
    /** systemd has unit files newer than what it loaded. */
    needDaemonReload: boolean;
    /** Linger for this user: null when unknown. */
    linger: boolean | null;
  };
  tmux: Availability & {
    /** Per socket name ('' = default socket). */
    sockets: Record<string, ObservedSocket>;
  };
  heartbeats: Record<string, ObservedHeartbeat>;
  /** Files the reconciler manages or might: unit files, env files, framework files; by absolute path. */
  files: Record<string, ObservedFile>;
  /** Agent names that have an env file in `<home>/fleet/agents/` (to find orphans). */
  envFileAgents: string[];
  /**
   * Symbolic links standing where a file or directory of the fleet belongs (an env file, a tool, a unit the
   * reconciler writes, fleet/agents/, fleet/reconciler/, fleet/archive/, ...): never followed, never read.
   * A plan is not made while there is one (src/base/safe-path.ts).
   */
  links?: { path: string; target: string }[];
  /**
   * Temporary files of the fleet's own writers (the reconciler's atomic writes, the heartbeat scripts) found in
   * the fleet's own directories. Absent when there are none. Which are leftovers is decided in src/base/temp-files.ts.
   */
  tempFiles?: ObservedTempFile[];
  /** The user manager's PATH (`systemctl --user show-environment`); null when it could not be read. */
  managerPath?: string | null;
  /** Runtime programs the caller asked about, looked up on `managerPath`, by the name the env file gives. */
  programs?: Record<string, ResolvedProgram>;
  /** Whether each directory the caller asked about (agents' working directories) exists; absent = not asked. */
  dirs?: Record<string, boolean>;
  /** Git worktrees of the agents' workspaces; absent when no agent has one and none is recorded. */
  workspaces?: ObservedWorkspaces;
  /**
   * The spend ledger's hourly buckets of the last 7 days per agent, read when some agent has a budget (absent
   * otherwise): what the budgets decider judges (docs/spend.md).
   */
  spend?: ObservedSpend;
  /** Ownership in the register, read at the start of the cycle; absent for a fleet without `register:`. */
  register?: ObservedRegister;
  state: ReconcilerState;
}

/** One agent's spend in one hour of the ledger. */
export interface SpendBucket {
  /** Start of the hour, unix ms. */
  at: number;
  tokens: number;
  /** USD; null when a model it used has no price. */
  usd: number | null;
}

export interface ObservedSpend {
  /** Per agent, buckets in time order. */
  agents: Record<string, SpendBucket[]>;
}
