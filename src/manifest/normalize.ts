/**
 * Validated manifests -> DesiredFleet: aliases resolved, defaults applied, `~` expanded, the socket rule applied.
 * PURE (lint-enforced): everything about the machine comes in through HostContext. Assumes the manifests passed
 * the schema and the semantic checks; it does not re-validate.
 */
import { posix } from 'node:path';
import type {
  Budget,
  ModelPrice,
  AlertRule,
  DesiredAgent,
  DesiredFleet,
  DesiredSocket,
  HeartbeatPolicy,
  HostContext,
  ReconcileSettings,
  RegisterSettings,
  RuntimeSpec,
  SourceRef,
  SourceSettings,
} from '../model/desired.js';
import { builtinRuntimes, plainRuntime } from '../runtimes/index.js';
import type { RawAlert, RawBudget, RawHeartbeat, RawRoster } from './types.js';
import { mergedWorkspace, resolveWorkspace } from './workspace.js';

export interface ManifestInput {
  /** The file as the operator named it. */
  file: string;
  roster: RawRoster;
  /** Where each agent is defined, parallel to `roster.agents`. */
  agentRefs: readonly SourceRef[];
  /** Where `source:` is set, when it is. */
  sourceRef?: SourceRef;
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

/** A manifest duration (`90`, `90s`, `2m`, `1h`; the schema checked the form) in seconds; null when absent. */
export function durationSeconds(raw: string | number | undefined): number | null {
  if (raw === undefined) return null;
  if (typeof raw === 'number') return raw;
  const m = /^([0-9]+(?:\.[0-9]+)?)(s|m|h)?$/.exec(raw);
  if (m === null) return null;
  const unit = m[2] === 'h' ? 3600 : m[2] === 'm' ? 60 : 1;
  return Number(m[1]) * unit;
}

function alertRule(raw: RawAlert, index: number, file: string): AlertRule {
  const send: AlertRule['send'] =
    raw.send.webhook !== undefined
      ? { kind: 'webhook', urlEnv: raw.send.webhook.url_env }
      : { kind: 'command', argv: [...(raw.send.command ?? [])] };
  return {
    name: raw.name ?? `alert-${index + 1}`,
    when: [...raw.when],
    agents: raw.agents === undefined ? null : [...raw.agents],
    afterSeconds: durationSeconds(raw.after),
    send,
    source: { file, line: 1, col: 1 },
  };
}

export const DEFAULT_LEASE_SECONDS = 60;
/** The branch a git source follows when `ref:` is not given. */
export const DEFAULT_SOURCE_REF = 'main';
export const DEFAULT_TAKEOVER_AFTER_SECONDS = 300;

function registerSettings(raw: NonNullable<RawRoster['register']>, userHome: string): RegisterSettings {
  return {
    urlEnv: raw.url_env ?? null,
    urlFile: raw.url_file === undefined ? null : expandHome(raw.url_file, userHome),
    leaseSeconds: durationSeconds(raw.lease) ?? DEFAULT_LEASE_SECONDS,
    takeoverAfterSeconds: durationSeconds(raw.takeover_after) ?? DEFAULT_TAKEOVER_AFTER_SECONDS,
  };
}

function budgetOf(raw: RawBudget, source: SourceRef): Budget {
  return {
    window: raw.window,
    tokens: raw.tokens ?? null,
    usd: raw.usd ?? null,
    resetAt: raw.reset_at ?? null,
    onExceed: raw.on_exceed ?? 'warn',
    fallbackModel: raw.fallback_model ?? null,
    source,
  };
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

type RawRuntime = NonNullable<RawRoster['runtimes']>[string];
type RawReconcile = NonNullable<RawRoster['reconcile']>;
type RawSource = NonNullable<RawRoster['source']>;
type RawAgent = NonNullable<RawRoster['agents']>[number];

/**
 * An entry for a built-in overrides only the fields it sets. A new runtime writes no heartbeats unless it says
 * so: a runtime we know nothing about must not be respawned for a silence it never promised to break.
 */
function runtimeSpec(name: string, raw: RawRuntime, base: RuntimeSpec): RuntimeSpec {
  return {
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
  };
}

function reconcileSettings(raw: RawReconcile): ReconcileSettings {
  return {
    mode: raw.mode ?? DEFAULT_RECONCILE.mode,
    intervalSeconds: raw.interval_seconds ?? DEFAULT_RECONCILE.intervalSeconds,
    backoff: {
      initialSeconds: raw.backoff?.initial_seconds ?? DEFAULT_BACKOFF_SECONDS.initialSeconds,
      maxSeconds: raw.backoff?.max_seconds ?? DEFAULT_BACKOFF_SECONDS.maxSeconds,
      resetSeconds: raw.backoff?.reset_seconds ?? DEFAULT_BACKOFF_SECONDS.resetSeconds,
    },
    ...(raw.restart
      ? {
          restart: {
            policy: raw.restart.policy ?? 'when-idle',
            settleSeconds: raw.restart.settle_seconds ?? 30,
            maxUnavailable: raw.restart.max_unavailable ?? 1,
            maxDeferSeconds: raw.restart.max_defer_seconds ?? null,
          },
        }
      : {}),
  };
}

function sourceSettings(raw: RawSource, origin: SourceRef): SourceSettings {
  return {
    url: raw.git,
    ref: raw.ref ?? DEFAULT_SOURCE_REF,
    // `a/b/`, `./a` and `.` name the same directory as `a/b`, `a` and the top.
    path: posix
      .normalize(raw.path ?? '.')
      .replace(/^\.$/, '')
      .replace(/\/$/, ''),
    origin,
  };
}

/** What a manifest file gives each of its agents: its socket, tenant and defaults. */
interface FileDefaults {
  roster: RawRoster;
  socketName: string;
  holderSession: string;
  tenantId: string | null;
  workdir: string;
  heartbeat: HeartbeatPolicy;
  userHome: string;
}

function desiredAgent(a: RawAgent, ref: SourceRef, f: FileDefaults): DesiredAgent {
  // An agent with a workspace works in its worktree (docs/workspaces.md).
  const workspace = resolveWorkspace(
    a.name,
    mergedWorkspace(f.roster.defaults?.workspace, a.workspace),
    f.userHome,
  );
  return {
    name: a.name,
    runtime: a.runtime,
    class: a.class ?? null,
    modelHint: a.model_hint ?? null,
    workingDirectory:
      workspace?.path ??
      expandHome(a.working_directory === undefined ? f.workdir : (a.working_directory ?? '~'), f.userHome),
    command: a.command ?? null,
    host: a.host ?? null,
    enabled: a.enabled ?? true,
    socketName: f.socketName,
    holderSession: f.holderSession,
    tenantId: f.tenantId,
    heartbeat: heartbeatPolicy(f.heartbeat, a.heartbeat),
    resume: a.resume ?? null,
    restartPolicy: a.restart_policy ?? null,
    ...(workspace !== null ? { workspace } : {}),
    ...agentBudget(a.budget, f.roster.defaults?.budget, ref),
    source: ref,
  };
}

function fileDefaults(roster: RawRoster, userHome: string): FileDefaults {
  return {
    roster,
    // Socket rule: absent, null or empty socket_name = the default tmux socket (no -L), never a made-up name.
    socketName: roster.tmux?.socket_name ?? roster.tmux?.socketName ?? '',
    holderSession: roster.tmux?.holder_session ?? roster.tmux?.holderSession ?? DEFAULT_HOLDER_SESSION,
    tenantId: roster.tenant_id ?? null,
    // YAML reads a bare `~` as null, and `working_directory: ~` is how operators write "my home": null is home.
    workdir: roster.defaults?.working_directory ?? DEFAULT_WORKING_DIRECTORY,
    heartbeat: heartbeatPolicy(DEFAULT_HEARTBEAT, roster.defaults?.heartbeat),
    userHome,
  };
}

export function normalizeFleet(manifests: readonly ManifestInput[], ctx: HostContext): DesiredFleet {
  const runtimes = builtinRuntimes(ctx);
  const agents: DesiredAgent[] = [];
  const sockets = new Map<string, DesiredSocket>();
  const tenants = new Set<string>();
  let reconcile: ReconcileSettings = DEFAULT_RECONCILE;
  const pricing: Record<string, ModelPrice> = {};
  const alerts: AlertRule[] = [];
  let register: RegisterSettings | undefined;
  let source: SourceSettings | undefined;
  const tenantBudgets: Record<string, Budget> = {};

  for (const { roster, agentRefs, file, sourceRef } of manifests) {
    const top: SourceRef = { file, line: 1, col: 1 };
    const f = fileDefaults(roster, ctx.userHome);
    if (f.tenantId !== null) tenants.add(f.tenantId);
    for (const [name, raw] of Object.entries(roster.runtimes ?? {}))
      // hasOwn, not just `runtimes[name]`: a runtime called `constructor` must not inherit Object's.
      runtimes[name] = runtimeSpec(
        name,
        raw,
        (Object.hasOwn(runtimes, name) ? runtimes[name] : undefined) ?? plainRuntime(name),
      );
    if (roster.reconcile) reconcile = reconcileSettings(roster.reconcile);
    // All four prices are required (the schema): a guessed cache price would be a wrong dollar figure.
    for (const [model, p] of Object.entries(roster.pricing ?? {}))
      pricing[model] = {
        input: p.input,
        output: p.output,
        cache_read: p.cache_read,
        cache_write: p.cache_write,
      };
    for (const raw of roster.alerts ?? []) alerts.push(alertRule(raw, alerts.length, file));
    if (roster.register) register = registerSettings(roster.register, ctx.userHome);
    if (roster.source) source = sourceSettings(roster.source, sourceRef ?? top);
    for (const [tenant, raw] of Object.entries(roster.tenant_budgets ?? {}))
      tenantBudgets[tenant] = budgetOf(raw, top);
    (roster.agents ?? []).forEach((a, i) => {
      sockets.set(`${f.socketName}\u0000${f.holderSession}`, {
        socketName: f.socketName,
        holderSession: f.holderSession,
      });
      agents.push(desiredAgent(a, agentRefs[i] ?? top, f));
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
    ...(Object.keys(pricing).length > 0 ? { pricing } : {}),
    // Absent when no manifest has rules, so a fleet without alerts is the same data as before they existed.
    ...(alerts.length > 0 ? { alerts } : {}),
    ...(register ? { register } : {}),
    ...(source ? { source } : {}),
    ...(Object.keys(tenantBudgets).length > 0 ? { tenantBudgets } : {}),
  };
}

/** An agent's own budget replaces the file's default one; its null opts out. Absent when it has none. */
function agentBudget(
  own: RawBudget | null | undefined,
  fileDefault: RawBudget | null | undefined,
  source: SourceRef,
): { budget?: Budget } {
  const raw = own === undefined ? fileDefault : own;
  return raw === undefined || raw === null ? {} : { budget: budgetOf(raw, source) };
}
