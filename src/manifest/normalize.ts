/**
 * Validated manifests -> DesiredFleet: aliases resolved, defaults applied, `~` expanded, the socket rule applied.
 * PURE (lint-enforced): everything about the machine comes in through HostContext. Assumes the manifests passed
 * the schema and the semantic checks; it does not re-validate.
 */
import { posix } from 'node:path';
import type {
  DesiredAgent,
  DesiredFleet,
  DesiredSocket,
  HeartbeatPolicy,
  HostContext,
  ReconcileSettings,
  RegisterSettings,
  RuntimeSpec,
  SourceRef,
} from '../model/desired.js';
import { builtinRuntimes, plainRuntime } from './runtimes.js';
import type { RawHeartbeat, RawRoster } from './types.js';

export interface ManifestInput {
  /** The file as the operator named it. */
  file: string;
  roster: RawRoster;
  /** Where each agent is defined, parallel to `roster.agents`. */
  agentRefs: readonly SourceRef[];
}

export const DEFAULT_WORKING_DIRECTORY = '~';
export const DEFAULT_HOLDER_SESSION = '_holder';
export const DEFAULT_HEARTBEAT: HeartbeatPolicy = {
  staleAfterSeconds: 90,
  graceSeconds: 60,
  respawnOnStale: false,
};
export const DEFAULT_BACKOFF_SECONDS = { initialSeconds: 10, maxSeconds: 300, resetSeconds: 120 };
export const DEFAULT_RECONCILE: ReconcileSettings = {
  mode: 'none',
  intervalSeconds: 120,
  backoff: DEFAULT_BACKOFF_SECONDS,
};

/** `~` and `~/x` -> the user's home; the result is normalized (no `..`, no trailing slash). */
export function expandHome(path: string, userHome: string): string {
  const expanded =
    path === '~' ? userHome : path.startsWith('~/') ? posix.join(userHome, path.slice(2)) : path;
  const normalized = posix.normalize(expanded);
  return normalized.length > 1 && normalized.endsWith('/') ? normalized.slice(0, -1) : normalized;
}

function heartbeatPolicy(base: HeartbeatPolicy, raw: RawHeartbeat | undefined): HeartbeatPolicy {
  return {
    staleAfterSeconds: raw?.stale_after_seconds ?? base.staleAfterSeconds,
    graceSeconds: raw?.grace_seconds ?? base.graceSeconds,
    respawnOnStale: raw?.respawn_on_stale ?? base.respawnOnStale,
  };
}

/** `60s`, `5m`, `1h` or a number of seconds (the schema has checked the form). */
export function durationSeconds(value: number | string): number {
  if (typeof value === 'number') return value;
  const n = Number(value.slice(0, -1));
  return value.endsWith('h') ? n * 3600 : value.endsWith('m') ? n * 60 : n;
}

export const DEFAULT_LEASE_SECONDS = 60;
export const DEFAULT_TAKEOVER_AFTER_SECONDS = 300;

function registerSettings(raw: NonNullable<RawRoster['register']>, userHome: string): RegisterSettings {
  return {
    urlEnv: raw.url_env ?? null,
    urlFile: raw.url_file === undefined ? null : expandHome(raw.url_file, userHome),
    leaseSeconds: raw.lease === undefined ? DEFAULT_LEASE_SECONDS : durationSeconds(raw.lease),
    takeoverAfterSeconds:
      raw.takeover_after === undefined ? DEFAULT_TAKEOVER_AFTER_SECONDS : durationSeconds(raw.takeover_after),
  };
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function normalizeFleet(manifests: readonly ManifestInput[], ctx: HostContext): DesiredFleet {
  const runtimes = builtinRuntimes(ctx);
  const agents: DesiredAgent[] = [];
  const sockets = new Map<string, DesiredSocket>();
  const tenants = new Set<string>();
  let reconcile: ReconcileSettings = DEFAULT_RECONCILE;
  let register: RegisterSettings | undefined;

  for (const { roster, agentRefs, file } of manifests) {
    // Socket rule: absent, null or empty socket_name = the default tmux socket (no -L), never a made-up name.
    const socketName = roster.tmux?.socket_name ?? roster.tmux?.socketName ?? '';
    const holderSession = roster.tmux?.holder_session ?? roster.tmux?.holderSession ?? DEFAULT_HOLDER_SESSION;
    const tenantId = roster.tenant_id ?? null;
    if (tenantId !== null) tenants.add(tenantId);
    // YAML reads a bare `~` as null, and `working_directory: ~` is how operators write "my home": null is home.
    const fileWorkdir = roster.defaults?.working_directory ?? DEFAULT_WORKING_DIRECTORY;
    const fileHeartbeat = heartbeatPolicy(DEFAULT_HEARTBEAT, roster.defaults?.heartbeat);

    for (const [name, raw] of Object.entries(roster.runtimes ?? {})) {
      // An entry for a built-in overrides only the fields it sets. A new runtime writes no heartbeats unless it
      // says so: a runtime we know nothing about must not be respawned for a silence it never promised to break.
      // hasOwn, not just `runtimes[name]`: a runtime called `constructor` must not inherit Object's.
      const base: RuntimeSpec =
        (Object.hasOwn(runtimes, name) ? runtimes[name] : undefined) ?? plainRuntime(name);
      runtimes[name] = {
        name,
        command: raw.command ?? base.command,
        programs: raw.programs ?? base.programs,
        modelArgs: raw.model_args ?? base.modelArgs,
        args: raw.args ?? base.args,
        resumeArgs: raw.resume_args ?? base.resumeArgs,
        resume: raw.resume ?? base.resume,
        exitKeys: raw.exit_keys ?? base.exitKeys,
        resetCommand: raw.reset_command ?? base.resetCommand,
        heartbeat: raw.heartbeat ?? base.heartbeat,
        state: raw.state ?? base.state,
        quietStart: base.quietStart,
      };
    }

    if (roster.reconcile) {
      reconcile = {
        mode: roster.reconcile.mode ?? DEFAULT_RECONCILE.mode,
        intervalSeconds: roster.reconcile.interval_seconds ?? DEFAULT_RECONCILE.intervalSeconds,
        backoff: {
          initialSeconds: roster.reconcile.backoff?.initial_seconds ?? DEFAULT_BACKOFF_SECONDS.initialSeconds,
          maxSeconds: roster.reconcile.backoff?.max_seconds ?? DEFAULT_BACKOFF_SECONDS.maxSeconds,
          resetSeconds: roster.reconcile.backoff?.reset_seconds ?? DEFAULT_BACKOFF_SECONDS.resetSeconds,
        },
        ...(roster.reconcile.restart
          ? {
              restart: {
                policy: roster.reconcile.restart.policy ?? 'when-idle',
                settleSeconds: roster.reconcile.restart.settle_seconds ?? 30,
                maxUnavailable: roster.reconcile.restart.max_unavailable ?? 1,
                maxDeferSeconds: roster.reconcile.restart.max_defer_seconds ?? null,
              },
            }
          : {}),
      };
    }

    if (roster.register) register = registerSettings(roster.register, ctx.userHome);

    const fileAgents = roster.agents ?? [];
    fileAgents.forEach((a, i) => {
      sockets.set(`${socketName}\u0000${holderSession}`, { socketName, holderSession });
      agents.push({
        name: a.name,
        runtime: a.runtime,
        class: a.class ?? null,
        modelHint: a.model_hint ?? null,
        workingDirectory: expandHome(
          a.working_directory === undefined ? fileWorkdir : (a.working_directory ?? '~'),
          ctx.userHome,
        ),
        command: a.command ?? null,
        host: a.host ?? null,
        enabled: a.enabled ?? true,
        socketName,
        holderSession,
        tenantId,
        heartbeat: heartbeatPolicy(fileHeartbeat, a.heartbeat),
        resume: a.resume ?? null,
        restartPolicy: a.restart_policy ?? null,
        source: agentRefs[i] ?? { file, line: 1, col: 1 },
      });
    });
  }

  agents.sort((a, b) => compare(a.name, b.name));
  return {
    sources: manifests.map((m) => m.file),
    // One tenant across the files that name one; several (or none) leave the fleet-wide value open.
    tenantId: tenants.size === 1 ? ([...tenants][0] ?? null) : null,
    runtimes,
    agents,
    sockets: [...sockets.values()].sort(
      (a, b) => compare(a.socketName, b.socketName) || compare(a.holderSession, b.holderSession),
    ),
    reconcile,
    ...(register ? { register } : {}),
  };
}
