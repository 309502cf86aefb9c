/**
 * A roster manifest as written in YAML, after it passed the schema (framework/fleet/roster.schema.json).
 * Field names are the manifest's own (snake_case, plus the camelCase tmux aliases); normalize.ts turns
 * this into the DesiredFleet model.
 */

export interface RawHeartbeat {
  stale_after_seconds?: number;
  grace_seconds?: number;
  respawn_on_stale?: boolean;
}

export interface RawRuntime {
  command?: string;
  programs?: string[];
  model_args?: string[];
  args?: string[];
  resume_args?: string[];
  resume?: boolean;
  exit_keys?: string[];
  state?: 'claude-hooks' | 'codex-notify' | 'pi-extension' | 'opencode-events' | 'none';
  reset_command?: string;
  heartbeat?: boolean;
  description?: string;
}

export interface RawWorkspace {
  repo?: string;
  branch?: string;
  base?: string;
  path?: string;
  prune_branches?: 'merged' | 'never';
}

export interface RawBudget {
  window: '5h' | '1d' | '7d';
  tokens?: number;
  usd?: number;
  reset_at?: string;
  on_exceed?: 'warn' | 'downgrade' | 'pause';
  fallback_model?: string;
}

export interface RawAgent {
  name: string;
  runtime: string;
  class?: string;
  model_hint?: string;
  /** null: a bare `~` in YAML (which YAML reads as null) — the user's home. */
  working_directory?: string | null;
  command?: string;
  host?: string;
  enabled?: boolean;
  heartbeat?: RawHeartbeat;
  resume?: boolean;
  restart_policy?: 'when-idle' | 'immediate' | 'manual';
  /** null: explicitly none (opting out of the file's `defaults.workspace`). */
  workspace?: RawWorkspace | null;
  /** null: explicitly none (opting out of the file's `defaults.budget`). */
  budget?: RawBudget | null;
  description?: string;
}

export interface RawRoster {
  version: 1;
  transport?: 'tmux';
  tenant_id?: string;
  tmux?: {
    socket_name?: string | null;
    socketName?: string | null;
    holder_session?: string;
    holderSession?: string;
  };
  defaults?: {
    working_directory?: string | null;
    heartbeat?: RawHeartbeat;
    workspace?: RawWorkspace | null;
    budget?: RawBudget | null;
  };
  runtimes?: Record<string, RawRuntime>;
  reconcile?: {
    mode?: 'none' | 'timer' | 'watch';
    interval_seconds?: number;
    backoff?: { initial_seconds?: number; max_seconds?: number; reset_seconds?: number };
    restart?: {
      policy?: 'when-idle' | 'immediate' | 'manual';
      settle_seconds?: number;
      max_unavailable?: number;
      max_defer_seconds?: number;
    };
  };
  /** USD per million tokens, by model (docs/spend.md). */
  pricing?: Record<string, { input: number; output: number; cache_read: number; cache_write: number }>;
  /** Budgets per tenant (docs/spend.md). */
  tenant_budgets?: Record<string, RawBudget>;
  alerts?: RawAlert[];
  register?: {
    url_env?: string;
    url_file?: string;
    lease?: number | string;
    takeover_after?: number | string;
  };
  /** The git source (docs/hosts.md): the manifests come from this repository's branch. */
  source?: { git: string; ref?: string; path?: string };
  agents?: RawAgent[];
}

export interface RawAlert {
  name?: string;
  when: ('waiting' | 'wedged' | 'crash-loop' | 'stale' | 'over-budget' | 'restart-deferred')[];
  agents?: string[];
  /** Seconds, or `90s` / `2m` / `1h`. */
  after?: string | number;
  send: { command?: string[]; webhook?: { url_env: string } };
}
