/**
 * The desired fleet: what the manifests ask for, normalized (aliases resolved, defaults applied, `~` expanded,
 * the socket rule applied). Built by src/manifest/, consumed by src/render/ and src/plan/. Plain data.
 */

/** Where a value came from, for messages that name the manifest line. */
export interface SourceRef {
  file: string;
  line: number;
  col: number;
}

/**
 * How a runtime tells the fleet whether it is busy, idle or waiting (docs/runtimes.md):
 * claude-hooks   Claude Code hooks, passed with `--settings`
 * codex-notify   Codex `notify` (and hooks), passed with `-c`
 * pi-extension   a pi extension, passed with `-e`
 * opencode-events opencode's event stream, through a plugin passed in its config
 * none           no state signal (a plain program, the stub)
 */
export type StateSource = 'claude-hooks' | 'codex-notify' | 'pi-extension' | 'opencode-events' | 'none';

/**
 * A runtime adapter: plain data (built-in defaults in src/runtimes/index.ts, overridden or extended by a
 * roster's `runtimes:`). Everything the fleet does with a runtime's program is read from here.
 */
export interface RuntimeSpec {
  name: string;
  /** Program the pane runs for this runtime (default: the runtime's name). */
  command: string;
  /**
   * Program names that count as this runtime in a pane's process tree, besides the command's own basename: the
   * native binary an npm shim starts (`codex` under `node codex.js`), a process title (`pi`).
   */
  programs: string[];
  /** Arguments that pass the agent's `model_hint`, `{model}` standing for it; [] = the runtime takes none. */
  modelArgs: string[];
  /** Arguments always passed after the integration's own (operator's choice). */
  args: string[];
  /**
   * Arguments that resume the previous conversation, `{session}` standing for the id the runtime reported;
   * placed right after the program. [] = this runtime cannot resume.
   */
  resumeArgs: string[];
  /** Whether a start resumes the agent's previous conversation when one is known (per agent overridable). */
  resume: boolean;
  /**
   * How to ask the runtime to exit its own way: tmux keys sent in order (a literal text, or a key name such as
   * `Enter` or `C-d` when it is one). [] = it cannot be asked; the session is ended.
   */
  exitKeys: string[];
  /** Command typed to reset a session's conversation (`/clear`); null = none. */
  resetCommand: string | null;
  /** Whether agents of this runtime write heartbeats. Runtimes that do not are never respawned for silence. */
  heartbeat: boolean;
  /** How the runtime reports busy / idle / waiting. */
  state: StateSource;
}

export interface HeartbeatPolicy {
  /** Heartbeat older than this many seconds => STALE. */
  staleAfterSeconds: number;
  /** Start-up grace: a fresh session is not judged stale before this many seconds. */
  graceSeconds: number;
  /** Respawn the pane when the heartbeat stays stale after the grace period. */
  respawnOnStale: boolean;
}

/**
 * A git worktree of its own for an agent (docs/workspaces.md): the agent's working directory. Paths absolute.
 */
export interface DesiredWorkspace {
  /** The repository (its main working tree, or any directory git finds the repository from). */
  repo: string;
  /** The agent's branch (default `fleet/<agent>`); an existing branch is reused, never reset. */
  branch: string;
  /** Where a new branch starts; null = the repository's HEAD when the worktree is first made. */
  base: string | null;
  /** The worktree (default `<repo>.worktrees/<agent>`). */
  path: string;
  /** `merged`: when the worktree is removed, its branch goes too if it is merged; null = branches are kept. */
  pruneBranches: 'merged' | null;
}

export interface DesiredAgent {
  name: string;
  runtime: string;
  /** Program the pane should run: the runtime's command, or the agent's `command` escape hatch. */
  class: string | null;
  modelHint: string | null;
  /** Absolute, `~` expanded. */
  workingDirectory: string;
  /** The operator's escape hatch (`MOSAIC_AGENT_COMMAND`); null when the manifest does not set it. */
  command: string | null;
  /** Host the agent runs on; null = any/this host. */
  host: string | null;
  /** false = the manifest keeps the agent but wants it stopped and disabled. */
  enabled: boolean;
  /** '' = the default tmux socket (no -L); otherwise `tmux -L <socketName>`. */
  socketName: string;
  holderSession: string;
  tenantId: string | null;
  heartbeat: HeartbeatPolicy;
  /** The agent's override of its runtime's `resume`; null = the runtime decides. */
  resume: boolean | null;
  /** The agent's override of the fleet's restart policy; null = the fleet's. */
  restartPolicy?: RestartPolicyName | null;
  /** Its own git worktree, which is then its working directory; absent/null = none. */
  workspace?: DesiredWorkspace | null;
  /** Its spend budget (its own, else the file's `defaults.budget`); absent/null = none (docs/spend.md). */
  budget?: Budget | null;
  source: SourceRef;
}

/** The windows a budget is counted over. */
export type BudgetWindow = '5h' | '1d' | '7d';

/** What going over a budget does (docs/spend.md, "Budgets"). */
export type BudgetAction = 'warn' | 'downgrade' | 'pause';

/** A spend budget: at most `tokens` and/or `usd` per window. */
export interface Budget {
  window: BudgetWindow;
  /** Tokens of every kind per window; null = no token limit. */
  tokens: number | null;
  /** USD per window (priced models only); null = no dollar limit. */
  usd: number | null;
  /** `HH:MM` UTC: fixed windows, starting at that time and every window length from it; null = rolling. */
  resetAt: string | null;
  onExceed: BudgetAction;
  /** The model a `downgrade` switches to; null otherwise. */
  fallbackModel: string | null;
  source: SourceRef;
}

export type ConvergenceMode = 'none' | 'timer' | 'watch';

/**
 * When a running agent that needs a restart (its environment, command line or unit changed) is restarted
 * (docs/lifecycle.md): when-idle waits for the runtime's own "idle" held for settleSeconds; immediate does it
 * now; manual only on `fleet restart NAME`.
 */
export type RestartPolicyName = 'when-idle' | 'immediate' | 'manual';

export interface RestartSettings {
  policy: RestartPolicyName;
  /** How long an agent must have been idle before a when-idle restart (default 30). */
  settleSeconds: number;
  /** At most this many running agents are restarted in one reconcile (default 1). */
  maxUnavailable: number;
  /** After this long deferred, the restart happens anyway (null = never). */
  maxDeferSeconds: number | null;
}

export interface ReconcileSettings {
  /** How the fleet converges when nobody runs `fleet reconcile`: a systemd timer, a watch service, or neither. */
  mode: ConvergenceMode;
  /** Timer interval in seconds (default 120). */
  intervalSeconds: number;
  /** Crash-loop back-off, in seconds (defaults 10, 300, 120); absent = the defaults. */
  backoff?: { initialSeconds: number; maxSeconds: number; resetSeconds: number };
  /** Restarts of running agents; absent = the defaults (when-idle, 30 s settle, 1 at a time, no max defer). */
  restart?: RestartSettings;
}

/** The register of many hosts (docs/hosts.md); absent for a fleet of one host. */
export interface RegisterSettings {
  /** The environment variable holding the DSN; null when `urlFile` names it. */
  urlEnv: string | null;
  /** A file holding the DSN (absolute, `~` expanded); null when `urlEnv` names it. */
  urlFile: string | null;
  /** A host's lease lasts this long after each publish (default 60). */
  leaseSeconds: number;
  /** Another host starts a dead host's agents only after its lease ran out this long ago (default 300). */
  takeoverAfterSeconds: number;
}

/** The git source of the manifests (docs/hosts.md, "The git source"). */
export interface SourceSettings {
  /** The repository, as `git fetch` takes it. Never credentials (refused by validation). */
  url: string;
  /** The branch followed (default `main`). */
  ref: string;
  /** The repository's directory holding the manifests; '' = its top. */
  path: string;
  /** Where it was set: a manifest's `source:` key, or (file `--source`) the flag or `$MOSAIC_SOURCE`. */
  origin: SourceRef;
}

export interface DesiredSocket {
  /** '' = default socket. */
  socketName: string;
  holderSession: string;
}

/** What a model costs, in USD per million tokens of each kind (reasoning is billed as output). */
export interface ModelPrice {
  input: number;
  output: number;
  cache_read: number;
  cache_write: number;
}

export interface DesiredFleet {
  /** Manifest files that contributed, in load order. */
  sources: string[];
  tenantId: string | null;
  runtimes: Record<string, RuntimeSpec>;
  /** Sorted by name. */
  agents: DesiredAgent[];
  /** Distinct sockets the agents use, sorted by socket name; each gets a holder session. */
  sockets: DesiredSocket[];
  reconcile: ReconcileSettings;
  /** The register (`register:`); absent: this host publishes nothing and never loads a PostgreSQL client. */
  register?: RegisterSettings;
  /**
   * The git source (`source:`): set only by the host's own manifest, whose fleet then has nothing else; the
   * desired state is the repository's (src/source/). Absent: the manifests are the desired state.
   */
  source?: SourceSettings;
  /** Prices by model (`pricing:`), absent when no manifest gives any. */
  pricing?: Record<string, ModelPrice>;
  /** Alert rules of every manifest, in load order (docs/alerts.md); absent or empty = no alerts. */
  alerts?: AlertRule[];
  /** Budgets per tenant (`tenant_budgets:`), over the summed spend of its agents; absent = none. */
  tenantBudgets?: Record<string, Budget>;
}

/** What an alert rule can fire on (docs/alerts.md). `over-budget` is judged only where a budget verdict exists. */
export type AlertCondition =
  'waiting' | 'wedged' | 'crash-loop' | 'stale' | 'over-budget' | 'restart-deferred';

/** Where an alert goes: a program run without a shell (the alert on stdin), or an HTTP POST to a URL kept in the environment. */
export type AlertSink = { kind: 'command'; argv: string[] } | { kind: 'webhook'; urlEnv: string };

export interface AlertRule {
  /** The manifest's `name`, else `alert-N` (N: its place among all rules, 1-based, in load order). */
  name: string;
  when: AlertCondition[];
  /** Agent names or globs (`*`, `?`); null = every agent. */
  agents: string[] | null;
  /** How long a condition holds before it fires; null = the condition's default (src/alerts/judge.ts). */
  afterSeconds: number | null;
  send: AlertSink;
  source: SourceRef;
}

/** Facts about this machine the desired model is resolved against (passed in: normalization does no I/O). */
export interface HostContext {
  /** The user's home directory, for `~` expansion. */
  userHome: string;
  /** Absolute Mosaic home (`$MOSAIC_HOME`, `--home`, or `~/.config/mosaic`). */
  mosaicHome: string;
  /** This machine's hostname, to tell local agents from remote ones. */
  hostname: string;
}

/** Whether an agent runs on this machine: no host, this machine's name (short or fully qualified), or loopback. */
export function isLocalAgent(agent: DesiredAgent, hostname: string): boolean {
  if (agent.host === null || agent.host === '' || agent.host === 'localhost') return true;
  const short = (h: string): string => h.split('.')[0] ?? h;
  return agent.host === hostname || short(agent.host) === short(hostname);
}
