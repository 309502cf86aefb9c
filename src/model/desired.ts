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

export interface RuntimeSpec {
  name: string;
  /** Program the pane runs for this runtime (default: the runtime's name). Basename is compared for drift. */
  command: string;
  /** Command sent to reset a session (seed field; kept for operators' tools). */
  resetCommand: string | null;
  /** Whether agents of this runtime write heartbeats. Runtimes that do not are never respawned for silence. */
  heartbeat: boolean;
}

export interface HeartbeatPolicy {
  /** Heartbeat older than this many seconds => STALE. */
  staleAfterSeconds: number;
  /** Start-up grace: a fresh session is not judged stale before this many seconds. */
  graceSeconds: number;
  /** Respawn the pane when the heartbeat stays stale after the grace period. */
  respawnOnStale: boolean;
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
  source: SourceRef;
}

export type ConvergenceMode = 'none' | 'timer' | 'watch';

export interface ReconcileSettings {
  /** How the fleet converges when nobody runs `fleet reconcile`: a systemd timer, a watch service, or neither. */
  mode: ConvergenceMode;
  /** Timer interval in seconds (default 120). */
  intervalSeconds: number;
  /** Crash-loop back-off, in seconds (defaults 10, 300, 120); absent = the defaults. */
  backoff?: { initialSeconds: number; maxSeconds: number; resetSeconds: number };
}

export interface DesiredSocket {
  /** '' = default socket. */
  socketName: string;
  holderSession: string;
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
