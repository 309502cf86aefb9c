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
  defaults?: { working_directory?: string | null; heartbeat?: RawHeartbeat };
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
  register?: {
    url_env?: string;
    url_file?: string;
    lease?: number | string;
    takeover_after?: number | string;
  };
  agents?: RawAgent[];
}
