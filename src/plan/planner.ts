/**
 * The planner: a pure function of (desired, observed) -> plan. No I/O, no clock; the same inputs give the same plan.
 *
 * Order (each step depends on the ones before it):
 *   files -> one daemon-reload (only when a unit file changed or systemd says it needs one) -> enable -> start/restart
 *   -> respawn panes -> disable/stop/kill/archive (disabled agents, and orphans only with --prune).
 */
import jsonpatch from 'fast-json-patch';
import type { Operation } from 'fast-json-patch';
import type { DesiredAgent, DesiredFleet, DesiredSocket, RestartSettings } from '../model/desired.js';
import type { Observed, ObservedFile } from '../model/observed.js';
import type {
  Action,
  BackoffPolicy,
  DeferredRespawn,
  DeferredRestart,
  HeldAction,
  Orphan,
  Plan,
  PlanSummary,
  SkippedAgent,
  UnitAction,
  WriteFileAction,
} from '../model/plan.js';
import { DEFAULT_BACKOFF, PLAN_FORMAT_VERSION } from '../model/plan.js';
import { assertNever } from '../errors.js';
import { ENV_DIGEST_KEY, parseEnvFile, renderEnvFileParsed } from '../render/env.js';
import { renderFrameworkFiles, type FrameworkAssets } from '../render/framework.js';
import { AGENT_TEMPLATE_UNIT, agentNameFromUnit, agentUnitName, HOLDER_UNIT } from '../render/names.js';
import {
  declaredUnitDigest,
  effectiveUnitDigest,
  renderUnits,
  UNIT_DIGEST_KEY,
  type RenderContext,
  type RenderedFile,
  type UnitTemplates,
} from '../render/units.js';
import {
  CONVERGENCE_UNITS,
  RECONCILE_TIMER,
  renderConvergenceUnits,
  WATCH_SERVICE,
  type ConvergenceTemplates,
  type FleetInvocation,
} from '../render/convergence.js';
import { contentSha256, observedDigest, sha256 } from './digest.js';
import { agentStatus, isLocalAgent, type AgentStatus } from './health.js';
import { hasSession, livePane, sessionPanes } from './lookup.js';
import { decideWorkspaces } from './deciders/workspaces.js';

export interface PlanInput {
  desired: DesiredFleet;
  observed: Observed;
  ctx: RenderContext;
  templates: UnitTemplates;
  framework: FrameworkAssets;
  convergence: ConvergenceTemplates;
  /** How units run this reconciler (timer / watch service ExecStart). */
  invocation: FleetInvocation;
  /** Stop, disable, kill and archive agents no manifest names. */
  prune: boolean;
  /** Crash-loop back-off for respawns (default 10 s doubling to 5 min, reset after 2 healthy minutes). */
  backoff?: BackoffPolicy;
  /** Archive file names carry this stamp (passed in: the planner has no clock). Default: observed.nowMs. */
  stamp?: string;
}

/** Restarts of running agents when the manifest says nothing (docs/lifecycle.md). */
export const DEFAULT_RESTART: RestartSettings = {
  policy: 'when-idle',
  settleSeconds: 30,
  maxUnavailable: 1,
  maxDeferSeconds: null,
};

/** File modes the reconciler writes with. Env files may hold the operator's secrets. */
const ENV_MODE = 0o600;

function fileAction(
  file: RenderedFile | { path: string; content: string; mode: number; role: 'env' },
  observedFile: ObservedFile | undefined,
  written: Record<string, string>,
  agent: string | null,
): WriteFileAction | null {
  const before = observedFile?.content ?? null;
  const contentSame = before === file.content;
  // Mode matters for scripts (must be executable) and env files (private); an operator's chmod is drift too.
  const modeSame = observedFile?.mode === file.mode;
  if (contentSame && modeSame) return null;
  let reason: string;
  if (before === null) reason = `${file.role} file not installed`;
  else if (contentSame)
    reason = `mode is ${(observedFile?.mode ?? 0).toString(8)}, want ${file.mode.toString(8)}`;
  else if (file.role === 'env') reason = 'managed keys differ from the manifest';
  else if (written[file.path] === undefined) reason = `${file.role} file differs from the rendered one`;
  else if (written[file.path] !== sha256(before))
    reason = `${file.role} file was edited by hand since the last reconcile`;
  else reason = `${file.role} file out of date with the manifest`;
  // Framework-owned files and units the operator changed (or that we never wrote) are copied aside once before
  // being replaced. Env files are merged, never clobbered, so they need no backup.
  const backup =
    file.role !== 'env' && before !== null && !contentSame && written[file.path] !== sha256(before);
  return {
    kind: 'write-file',
    role: file.role,
    path: file.path,
    before,
    after: file.content,
    mode: file.mode,
    backup,
    reason,
    agent,
  };
}

/** Why an agent's pane needs to come back, from its status; null when it is fine. */
function respawnReason(agent: DesiredAgent, status: AgentStatus, runtimeHeartbeats: boolean): string | null {
  const f = new Set(status.flags);
  if (f.has('MISSING')) return `session ${agent.name} is missing`;
  if (f.has('DEAD')) return `pane of ${agent.name} is dead`;
  if (f.has('DRIFT')) {
    return (
      status.driftReason ??
      `pane runs ${status.paneCommand ?? 'something else'}, manifest says ${status.expectedProgram}`
    );
  }
  // Silence alone only triggers a respawn when the operator asked for it and the runtime speaks the protocol.
  if (f.has('STALE') && agent.heartbeat.respawnOnStale && runtimeHeartbeats) return 'heartbeat is stale';
  return null;
}

function envSocketOf(file: ObservedFile | undefined): string | null {
  if (!file?.content) return null;
  const v = parseEnvFile(file.content).entries.get('MOSAIC_TMUX_SOCKET');
  return v === undefined ? null : v;
}

export function plan(input: PlanInput): Plan {
  const { desired, observed, ctx } = input;
  const written = observed.state.written;
  const units = observed.systemd.units;
  // Sorted here too, not only by the normalizer: the plan's order must not depend on how the caller built the fleet.
  const byName = [...desired.agents].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const local = byName.filter((a) => isLocalAgent(a, observed.hostname));
  const skipped: SkippedAgent[] = byName
    .filter((a) => !isLocalAgent(a, observed.hostname))
    .map((a) => ({
      agent: a.name,
      host: a.host ?? '',
      reason: `runs on ${a.host ?? '?'}, this is ${observed.hostname}`,
    }));
  const localFleet: DesiredFleet = {
    ...desired,
    agents: local,
    sockets: desired.sockets.filter((s) => local.some((a) => a.socketName === s.socketName)),
  };

  // 1. Files: framework scripts and schema, unit files, env files.
  const files: WriteFileAction[] = [];
  const rendered = [
    ...renderFrameworkFiles(input.framework, ctx),
    ...(local.length > 0 ? renderUnits(localFleet, ctx, input.templates) : []),
    ...renderConvergenceUnits(desired, ctx, input.convergence, input.invocation),
  ];
  for (const file of rendered) {
    const a = fileAction(file, observed.files[file.path], written, null);
    if (a) files.push(a);
  }
  const envChanged = new Set<string>();
  // Each agent's rendered env file, as systemd will read it (parsed once here, asked about below).
  const renderedEnv = new Map<string, ReadonlyMap<string, string>>();
  for (const agent of local) {
    const path = `${ctx.mosaicHome}/fleet/agents/${agent.name}.env`;
    const existing = observed.files[path];
    const { text: content, entries } = renderEnvFileParsed(
      agent,
      ctx,
      existing?.content ?? null,
      desired.runtimes,
    );
    renderedEnv.set(agent.name, entries);
    const a = fileAction({ path, content, mode: ENV_MODE, role: 'env' }, existing, written, agent.name);
    if (a) {
      // Only a content change is a reason to restart the agent; a chmod is not.
      if (a.before !== a.after) envChanged.add(agent.name);
      files.push(a);
    }
  }
  files.sort(
    (a, b) => roleOrder(a.role) - roleOrder(b.role) || (a.path < b.path ? -1 : a.path > b.path ? 1 : 0),
  );

  const unitFileChanged = (unitFile: string) =>
    files.some((f) => f.role === 'unit' && f.path === `${ctx.unitDir}/${unitFile}` && f.before !== f.after);
  // What a running agent sees of the template is its settings: a comment edit changes nothing for it.
  const templatePath = `${ctx.unitDir}/${AGENT_TEMPLATE_UNIT}`;
  const renderedTemplate = rendered.find((f) => f.path === templatePath)?.content ?? null;
  const observedTemplate = observed.files[templatePath]?.content ?? null;
  const templateChanged =
    renderedTemplate !== null &&
    observedTemplate !== null &&
    effectiveUnitDigest(observedTemplate) !== effectiveUnitDigest(renderedTemplate);
  const wantedUnitDigest = declaredUnitDigest(renderedTemplate);
  const holderChanged = unitFileChanged(HOLDER_UNIT);

  const actions: Action[] = [...files];
  // Worktrees before any unit action: an agent's first start needs its working directory (docs/workspaces.md).
  const workspaces = decideWorkspaces(desired, observed, input.prune);
  actions.push(...workspaces.prepare);
  // A worktree this plan makes (or moves) is there before the agent starts: its absence holds nothing back.
  const makesWorktree = (agent: string) =>
    workspaces.prepare.some((a) => a.agent === agent && a.kind !== 'worktree-lock');

  // 2. One daemon-reload, only when systemd's view of unit files is out of date.
  if (files.some((f) => f.role === 'unit' && f.before !== f.after)) {
    actions.push({ kind: 'daemon-reload', reason: 'unit files changed' });
  } else if (observed.systemd.needDaemonReload) {
    actions.push({ kind: 'daemon-reload', reason: 'systemd reports unit files changed on disk' });
  }

  const unitAction = (
    kind: UnitAction['kind'],
    unit: string,
    agent: string | null,
    reason: string,
  ): UnitAction => ({
    kind,
    unit,
    agent,
    reason,
  });
  // Only `enabled` survives a reboot (`enabled-runtime` lives in /run; `linked` is not enabled at all), the same
  // rule `fleet ps` flags BOOT-ENABLE by. `static` units cannot be enabled: asking would never converge.
  const enabled = (unit: string) => {
    const s = units[unit]?.unitFileState;
    return s === 'enabled' || s === 'static';
  };
  const active = (unit: string) => {
    const s = units[unit]?.activeState;
    return s === 'active' || s === 'activating' || s === 'reloading';
  };
  const wanted = local.filter((a) => a.enabled);

  // 3. Enable for boot: the holder and every enabled agent.
  const enables: UnitAction[] = [];
  if (wanted.length > 0 && !enabled(HOLDER_UNIT)) {
    enables.push(
      unitAction(
        'enable',
        HOLDER_UNIT,
        null,
        'not enabled: the tmux holder would not come back after reboot',
      ),
    );
  }
  for (const agent of wanted) {
    const unit = agentUnitName(agent.name);
    if (!enabled(unit))
      enables.push(unitAction('enable', unit, agent.name, 'not enabled: would not start after reboot'));
  }
  actions.push(...enables);

  // 4. Start / restart. The holder first: agents' sessions need its tmux server.
  if (wanted.length > 0) {
    if (!active(HOLDER_UNIT)) {
      actions.push(unitAction('start', HOLDER_UNIT, null, 'holder is not running'));
    } else {
      // Restarting the holder is safe (KillMode=process keeps the tmux servers) and re-ensures every holder session.
      const missing = localFleet.sockets.filter(
        (s) => !(observed.tmux.sockets[s.socketName]?.sessions ?? []).includes(s.holderSession),
      );
      if (holderChanged) actions.push(unitAction('restart', HOLDER_UNIT, null, 'holder unit changed'));
      else if (missing.length > 0) {
        const where = missing.map((s) => `${s.holderSession} on ${socketLabel(s.socketName)}`).join(', ');
        actions.push(unitAction('restart', HOLDER_UNIT, null, `holder session missing: ${where}`));
      }
    }
  }

  // Unattended convergence: the timer (not its oneshot service) or the watch service is enabled and running.
  const convergenceUnit =
    desired.reconcile.mode === 'timer'
      ? RECONCILE_TIMER
      : desired.reconcile.mode === 'watch'
        ? WATCH_SERVICE
        : null;
  if (convergenceUnit !== null) {
    if (!enabled(convergenceUnit)) {
      actions.push(
        unitAction(
          'enable',
          convergenceUnit,
          null,
          `reconcile.mode is ${desired.reconcile.mode}: not enabled`,
        ),
      );
    }
    if (!active(convergenceUnit)) {
      actions.push(
        unitAction(
          'start',
          convergenceUnit,
          null,
          `reconcile.mode is ${desired.reconcile.mode}: not running`,
        ),
      );
    } else if (unitFileChanged(convergenceUnit)) {
      actions.push(unitAction('restart', convergenceUnit, null, 'unit changed'));
    }
  }

  // A runtime program the user manager cannot find: starting the agent would fail, and ending its running session
  // for that would destroy work. Such agents' starts, restarts and respawns are held back (and said so).
  const held: HeldAction[] = [];
  const missing = new Map<string, string[]>();
  const cannotStart = (agent: DesiredAgent): string | null => {
    // The session script refuses to guess a directory: the start would fail (the warning below says so too).
    if (observed.dirs?.[agent.workingDirectory] === false && !makesWorktree(agent.name)) {
      return `working directory ${agent.workingDirectory} does not exist`;
    }
    const program = runtimeProgram(agent, desired, ctx);
    if (program === null) return null;
    // A PATH of the agent's own (an operator line in its env file) is what the start script searches: the
    // manager's PATH says nothing about it, so it is not judged here.
    if (renderedEnv.get(agent.name)?.has('PATH') === true) return null;
    const found = observed.programs?.[program];
    if (found === undefined || found.path !== null) return null;
    const list = missing.get(program) ?? [];
    if (!list.includes(agent.name)) list.push(agent.name);
    missing.set(program, list);
    return `runtime program '${program}' is not on the user manager's PATH`;
  };
  const hold = (agent: DesiredAgent, action: HeldAction['action'], need: string): boolean => {
    const reason = cannotStart(agent);
    if (reason === null) return false;
    held.push({ agent: agent.name, action, need, reason });
    return true;
  };

  // Restarts of running agents: only when what the agent sees would change, judged from what it runs with now
  // (its environment, read from /proc), so a restart that was planned but never done is still found.
  const restartSettings = desired.reconcile.restart ?? DEFAULT_RESTART;
  let restartsLeft = restartSettings.maxUnavailable;
  const deferredRestarts: DeferredRestart[] = [];
  const restartPending: Record<string, number> = {};
  const restartNeed = (agent: DesiredAgent): string | null => {
    const pane = livePane(observed.tmux.sockets[agent.socketName], agent.name);
    const env = pane?.environ;
    const wantedEnv = renderedEnv.get(agent.name);
    if (env != null && env[ENV_DIGEST_KEY] !== undefined && wantedEnv !== undefined) {
      const reasons: string[] = [];
      if (env[ENV_DIGEST_KEY] !== wantedEnv.get(ENV_DIGEST_KEY)) {
        const changed = [...wantedEnv]
          .filter(([k, v]) => k.startsWith('MOSAIC_') && k !== ENV_DIGEST_KEY && env[k] !== v)
          .map(([k]) => k);
        reasons.push(
          changed.length > 0
            ? `its environment differs from its env file (${changed.join(', ')})`
            : "its environment differs from its env file (keys of the operator's)",
        );
      }
      if (wantedUnitDigest !== null && env[UNIT_DIGEST_KEY] !== wantedUnitDigest)
        reasons.push('its unit settings changed');
      return reasons.length > 0 ? `running agent: ${reasons.join('; ')}` : null;
    }
    // Started before the fleet recorded digests in agents' environments: the files' own changes decide.
    if (envChanged.has(agent.name)) return 'env file changed';
    if (templateChanged) return 'agent unit template settings changed';
    return null;
  };
  /** The socket (not the agent's own) where the fleet's live session of this agent runs; null when none. */
  const movedSession = (agent: DesiredAgent): string | null => {
    if (livePane(observed.tmux.sockets[agent.socketName], agent.name) !== undefined) return null;
    const used = orphanSockets(agent.name, desired, observed, ctx);
    used.delete(agent.socketName);
    for (const socketName of [...used].sort()) {
      const sock = observed.tmux.sockets[socketName];
      if (sock === undefined || sock.owners?.[agent.name] !== observed.paths.mosaicHome) continue;
      if (livePane(sock, agent.name) !== undefined) return socketName;
    }
    return null;
  };
  const restartDecision = (
    agent: DesiredAgent,
    status: AgentStatus,
  ): { now: true; note: string } | { now: false; reason: string } => {
    const name = agent.restartPolicy ?? restartSettings.policy;
    if (name === 'manual')
      return { now: false, reason: `restart policy is manual: run \`fleet restart ${agent.name}\`` };
    if (name === 'immediate') return { now: true, note: ' (restart policy: immediate)' };
    const settle = restartSettings.settleSeconds;
    const st = status.state;
    let wait: string | null;
    if (st === null) {
      // No state signal (a plain command): the pane's output quiet for the settle period is the best there is.
      const quiet = status.idleSeconds;
      wait =
        quiet !== null && quiet >= settle
          ? null
          : `no state signal; its pane printed ${quiet === null ? 'at an unknown time' : `${quiet}s ago`} (waits for ${settle}s of quiet)`;
    } else if ((st.state === 'idle' && (st.forSeconds ?? 0) >= settle) || st.state === 'exited') {
      wait = null;
    } else {
      const what = st.state === 'waiting' ? 'waiting for a permission answer' : st.state;
      wait = `${what}${st.forSeconds === null ? '' : ` for ${st.forSeconds}s`}; restarts once idle for ${settle}s`;
    }
    if (wait === null) return { now: true, note: ' (idle)' };
    const since = observed.state.restartPending?.[agent.name];
    const maxDefer = restartSettings.maxDeferSeconds;
    if (maxDefer !== null && since !== undefined && observed.nowMs - since >= maxDefer * 1000) {
      return {
        now: true,
        note: ` (deferred since ${new Date(since).toISOString()}, past max_defer ${maxDefer}s: ${wait})`,
      };
    }
    return { now: false, reason: wait };
  };

  /** What the stop script needs to end an agent's session its own way on `socketName`: its env file's keys. */
  const gracefulEnv = (agent: DesiredAgent, socketName: string): Record<string, string> => {
    const env: Record<string, string> = {};
    for (const [k, v] of renderedEnv.get(agent.name) ?? []) {
      if (k.startsWith('MOSAIC_')) env[k] = v;
    }
    return { ...env, MOSAIC_TMUX_SOCKET: socketName };
  };
  /** A running agent needs a restart: held (start known to fail), done now (policy and budget allow), or deferred. */
  const planRestart = (agent: DesiredAgent, status: AgentStatus, need: string, before: Action[]): void => {
    if (hold(agent, 'restart', need)) return;
    const decision = restartDecision(agent, status);
    if (decision.now && restartsLeft > 0) {
      restartsLeft -= 1;
      const unit = agentUnitName(agent.name);
      actions.push(...before, {
        ...unitAction('restart', unit, agent.name, `${need}${decision.note}`),
        disruptive: true,
      });
      return;
    }
    const sinceMs = observed.state.restartPending?.[agent.name] ?? observed.nowMs;
    restartPending[agent.name] = sinceMs;
    deferredRestarts.push({
      agent: agent.name,
      need,
      reason: decision.now
        ? `disruption budget: at most ${restartSettings.maxUnavailable} running agent(s) restarted per reconcile`
        : decision.reason,
      sinceMs,
    });
  };

  const policy = input.backoff ?? DEFAULT_BACKOFF;
  const respawns: Action[] = [];
  const deferred: DeferredRespawn[] = [];
  const backoffResets: string[] = [];
  for (const agent of wanted) {
    const unit = agentUnitName(agent.name);
    const status = agentStatus(agent, observed, desired.runtimes[agent.runtime]);
    if (!active(unit)) {
      const state = units[unit]?.activeState;
      const why = state === 'failed' ? 'unit failed' : 'unit is not running';
      if (!hold(agent, 'start', why)) actions.push(unitAction('start', unit, agent.name, why));
      continue;
    }
    // The agent's socket changed: its running session is still on the old one. Moving it ends that session
    // (after the policy allows) and starts it on the new socket, so it never runs twice.
    const moved = movedSession(agent);
    if (moved !== null) {
      const oldStatus = agentStatus(
        { ...agent, socketName: moved },
        observed,
        desired.runtimes[agent.runtime],
      );
      const need = `socket changed: its session runs on ${socketLabel(moved)}, the manifest says ${socketLabel(agent.socketName)}`;
      const kill: Action = {
        kind: 'kill-session',
        agent: agent.name,
        socketName: moved,
        session: agent.name,
        owner: observed.paths.mosaicHome,
        reason: `${need} (ended before it starts on the new socket)`,
        disruptive: true,
        graceful: {
          script: `${ctx.toolsDir}/stop-agent-session.sh`,
          env: gracefulEnv(agent, moved),
        },
      };
      planRestart(agent, oldStatus, need, [kill]);
      continue;
    }
    const live = status.sessionExists === true && !status.paneDead;
    const need = live ? restartNeed(agent) : null;
    if (need !== null) {
      planRestart(agent, status, need, []);
      continue;
    }
    const runtime = desired.runtimes[agent.runtime];
    const why = respawnReason(agent, status, runtime?.heartbeat ?? false);
    const entry = observed.state.backoff[agent.name];
    if (why === null) {
      // Healthy again for long enough: the next crash starts from the first, short gap.
      if (entry !== undefined && observed.nowMs - entry.lastAttemptMs >= policy.resetAfterMs) {
        backoffResets.push(agent.name);
      }
      continue;
    }
    if (entry !== undefined && entry.nextAttemptMs > observed.nowMs) {
      // Respawning on every resync would thrash a program that dies at once: wait out the gap.
      deferred.push({
        agent: agent.name,
        reason: why,
        attempts: entry.attempts,
        nextAttemptMs: entry.nextAttemptMs,
      });
      continue;
    }
    if (hold(agent, 'respawn', why)) continue;
    respawns.push({
      kind: 'respawn',
      agent: agent.name,
      unit,
      socketName: agent.socketName,
      session: agent.name,
      reason: entry === undefined ? why : `${why} (attempt ${entry.attempts + 1})`,
      attempt: (entry?.attempts ?? 0) + 1,
      // A drifted or stale pane still runs something: respawning it ends that.
      ...(status.sessionExists === true && !status.paneDead ? { disruptive: true } : {}),
    });
  }
  actions.push(...respawns);

  // 5. Removals: agents the manifest keeps but disables; convergence units no longer asked for; orphans only
  // with --prune. Grouped by kind (every stop, then every disable, kill and archive) so systemd gets one call
  // per kind however many agents go, and nothing is moved aside while a unit that uses it still runs.
  const stops: Action[] = [];
  const disables: Action[] = [];
  const kills: Action[] = [];
  const archives: Action[] = [];
  const stamp = input.stamp ?? String(observed.nowMs);
  const liveSession = (agent: string): boolean =>
    Object.values(observed.tmux.sockets).some((sock) =>
      sock.panes.some((p) => p.session === agent && !p.dead),
    );
  const retire = (unit: string, agent: string | null, why: string) => {
    if (active(unit)) {
      const stop = unitAction('stop', unit, agent, why);
      // Stopping an agent's unit ends its session: said apart, like a restart.
      stops.push(agent !== null && liveSession(agent) ? { ...stop, disruptive: true } : stop);
    }
    if (units[unit]?.unitFileState === 'enabled') disables.push(unitAction('disable', unit, agent, why));
  };

  // Sessions named like an agent being removed that the fleet cannot prove are its own: reported, left alone.
  const leftAlone: string[] = [];
  for (const agent of local.filter((a) => !a.enabled)) {
    const unit = agentUnitName(agent.name);
    retire(unit, agent.name, 'agent is disabled in the manifest');
    // A session with no running unit to end it (its start script run by hand, or its stop failed): end it
    // directly, if it is provably the fleet's: on the agent's socket, carrying this home's marker.
    if (!active(unit)) {
      const claim = claimSession(agent.name, new Set([agent.socketName]), observed);
      leftAlone.push(...claim.foreign);
      if (claim.socketName !== null) {
        kills.push({
          kind: 'kill-session',
          agent: agent.name,
          socketName: claim.socketName,
          session: agent.name,
          reason: 'agent is disabled in the manifest',
          owner: observed.paths.mosaicHome,
        });
      }
    }
  }

  const keepConvergence = new Set(
    renderConvergenceUnits(desired, ctx, input.convergence, input.invocation).map((f) => f.path),
  );
  const retireWhy = `reconcile.mode is ${desired.reconcile.mode}`;
  for (const name of CONVERGENCE_UNITS) {
    const path = `${ctx.unitDir}/${name}`;
    if (keepConvergence.has(path)) continue;
    retire(name, null, retireWhy);
    if (observed.files[path]?.content != null) {
      archives.push({
        kind: 'archive-file',
        agent: null,
        path,
        to: `${ctx.mosaicHome}/fleet/archive/${name}.${stamp}`,
        reason: `${retireWhy}: unit no longer wanted (archived, not deleted)`,
      });
    }
  }

  const wantedNames = new Set(wanted.map((a) => a.name));
  for (const name of Object.keys(observed.state.backoff).sort()) {
    if (!wantedNames.has(name) && !backoffResets.includes(name)) backoffResets.push(name);
  }

  const orphans = findOrphans(desired, observed, ctx);
  if (input.prune) {
    const why = 'no manifest names this agent';
    for (const o of orphans) {
      if (o.unit) retire(o.unit, o.agent, why);
      // The unit's ExecStop kills the session; kill it directly only when the unit will not (not active), and
      // only a session findOrphans proved is the fleet's (its socket, its marker). Any other of that name is
      // reported and left alone.
      const unitEndsIt = o.unit !== null && active(o.unit);
      if (!unitEndsIt)
        leftAlone.push(
          ...claimSession(o.agent, orphanSockets(o.agent, desired, observed, ctx), observed).foreign,
        );
      if (o.session !== null && o.socketName !== null && !unitEndsIt) {
        kills.push({
          kind: 'kill-session',
          agent: o.agent,
          socketName: o.socketName,
          session: o.session,
          reason: why,
          owner: observed.paths.mosaicHome,
        });
      }
      if (o.envFile) {
        archives.push({
          kind: 'archive-file',
          agent: o.agent,
          path: o.envFile,
          to: `${ctx.mosaicHome}/fleet/archive/${o.agent}.${stamp}.env`,
          reason: `${why} (archived, not deleted)`,
        });
      }
    }
  }
  actions.push(...stops, ...disables, ...kills, ...archives, ...workspaces.removals);

  // Unit files moved aside: systemd must forget them too (one more reload, after the removals).
  if (actions.some((a) => a.kind === 'archive-file' && a.path.startsWith(`${ctx.unitDir}/`))) {
    actions.push({ kind: 'daemon-reload', reason: 'unit files removed' });
  }

  const warnings: string[] = [...leftAlone, ...workspaces.warnings];
  for (const agent of wanted) {
    // The session script refuses to guess a directory; say why the start will fail before it does.
    if (observed.dirs?.[agent.workingDirectory] === false && !makesWorktree(agent.name)) {
      warnings.push(
        `${agent.name}: working directory ${agent.workingDirectory} does not exist; its session cannot start until it does`,
      );
    }
  }
  for (const [program, names] of missing) {
    warnings.push(
      `runtime program '${program}' is not on the user manager's PATH (${observed.managerPath ?? '?'}): ` +
        `${names.join(', ')} not started or restarted until it is (install it, or set the manager's PATH with ` +
        '`systemctl --user set-environment PATH=...`)',
    );
  }
  // Said when there is something to do, not on every quiet run of the timer.
  if (observed.systemd.linger === false && wanted.length > 0 && actions.length > 0) {
    warnings.push(
      'linger is off for this user: user units stop at logout (enable it with `loginctl enable-linger`)',
    );
  }

  const patch = statePatch(observed, actions, localFleet.sockets);
  return {
    formatVersion: PLAN_FORMAT_VERSION,
    observedDigest: observedDigest(observed),
    actions,
    orphans: input.prune ? [] : orphans,
    skipped,
    warnings,
    deferred,
    held,
    deferredRestarts,
    restartPending,
    backoffResets: [...backoffResets].sort(),
    ...(Object.keys(workspaces.worktrees).length > 0 ? { worktrees: workspaces.worktrees } : {}),
    patch,
    summary: summarize(actions),
  };
}

/**
 * The program an agent's start script will look up on PATH: its runtime's command, unless the operator's
 * `command` replaces it (run through a login shell: not checked) or the fleet installs it (the stub).
 */
export function runtimeProgram(
  agent: DesiredAgent,
  desired: DesiredFleet,
  ctx: RenderContext,
): string | null {
  if (agent.command !== null) return null;
  const program = desired.runtimes[agent.runtime]?.command ?? agent.runtime;
  if (program.startsWith(`${ctx.toolsDir}/`)) return null;
  return program;
}

/** The programs to look up for a fleet: each local, enabled agent's runtime program, once. */
export function runtimePrograms(desired: DesiredFleet, ctx: RenderContext, hostname: string): string[] {
  const out = new Set<string>();
  for (const a of desired.agents) {
    if (!a.enabled || !isLocalAgent(a, hostname)) continue;
    const p = runtimeProgram(a, desired, ctx);
    if (p !== null) out.add(p);
  }
  return [...out].sort();
}

function roleOrder(role: WriteFileAction['role']): number {
  switch (role) {
    case 'framework':
      return 0;
    case 'unit':
      return 1;
    case 'env':
      return 2;
    default:
      return assertNever(role, 'file role');
  }
}

export function socketLabel(socketName: string): string {
  return socketName === '' ? 'the default socket' : `socket ${socketName}`;
}

/**
 * Whether the session `name` is provably the fleet's to end. Both proofs are needed: it is on one of `allowed`
 * (the sockets the fleet uses or used for that agent), and it carries this home's marker (the session option
 * the start script sets when it creates the session). Every other session of that name, on another tmux server
 * or without the marker (the operator's own `a1`), is someone else's: listed in `foreign`, never ended.
 */
export function claimSession(
  name: string,
  allowed: ReadonlySet<string>,
  observed: Observed,
): { socketName: string | null; foreign: string[] } {
  let socketName: string | null = null;
  const foreign: string[] = [];
  const sockets = Object.values(observed.tmux.sockets).sort((a, b) =>
    a.socketName < b.socketName ? -1 : a.socketName > b.socketName ? 1 : 0,
  );
  for (const s of sockets) {
    if (!hasSession(s, name)) continue;
    const where = `session ${name} on ${socketLabel(s.socketName)}`;
    if (!allowed.has(s.socketName)) {
      foreign.push(`${where} is not the fleet's (not a socket it uses or used for ${name}); left alone`);
    } else if (s.owners?.[name] !== observed.paths.mosaicHome) {
      foreign.push(`${where} is not the fleet's (it does not carry the fleet's marker); left alone`);
    } else {
      socketName ??= s.socketName;
    }
  }
  return { socketName, foreign };
}

/**
 * The sockets an orphan's session may be on: the one its env file names and the ones the reconciler recorded
 * for it in the state file; when neither names any, the sockets the fleet uses now. Never "any socket": a
 * fleet on a named socket has no business with the default tmux server.
 */
export function orphanSockets(
  name: string,
  desired: DesiredFleet,
  observed: Observed,
  ctx: RenderContext,
): Set<string> {
  const used = new Set<string>(observed.state.sessionSockets?.[name] ?? []);
  const fromEnv = envSocketOf(observed.files[`${ctx.mosaicHome}/fleet/agents/${name}.env`]);
  if (fromEnv !== null) used.add(fromEnv);
  if (used.size === 0) for (const s of desired.sockets) used.add(s.socketName);
  return used;
}

/**
 * Agents the reconciler once managed (a unit instance, an env file, or sockets recorded in its state file) that
 * no manifest names, on any host. A session that merely exists on the socket is not ours to kill unless one of
 * those claims it, and then only if it is provably the fleet's (claimSession).
 */
export function findOrphans(desired: DesiredFleet, observed: Observed, ctx: RenderContext): Orphan[] {
  const named = new Set(desired.agents.map((a) => a.name));
  const candidates = new Set<string>();
  for (const unit of Object.keys(observed.systemd.units)) {
    const name = agentNameFromUnit(unit);
    if (name !== null) candidates.add(name);
  }
  for (const name of observed.envFileAgents) candidates.add(name);
  for (const name of Object.keys(observed.state.sessionSockets ?? {})) candidates.add(name);
  const orphans: Orphan[] = [];
  for (const name of [...candidates].sort()) {
    if (named.has(name)) continue;
    const unitName = agentUnitName(name);
    const u = observed.systemd.units[unitName];
    const hasUnit =
      u !== undefined && (u.unitFileState !== null || (u.activeState !== '' && u.activeState !== 'inactive'));
    const envPath = `${ctx.mosaicHome}/fleet/agents/${name}.env`;
    const hasEnv = observed.envFileAgents.includes(name);
    // Its session lives on a socket the fleet uses or used for it, and carries the fleet's marker: a session of
    // the same name on another server, or without the marker, is someone else's (the operator's own `old`).
    const found = claimSession(name, orphanSockets(name, desired, observed, ctx), observed).socketName;
    if (!hasUnit && !hasEnv && found === null) continue;
    orphans.push({
      agent: name,
      unit: hasUnit ? unitName : null,
      session: found !== null ? name : null,
      socketName: found,
      envFile: hasEnv ? envPath : null,
    });
  }
  return orphans;
}

export function summarize(actions: readonly Action[]): PlanSummary {
  const s: PlanSummary = { add: 0, change: 0, remove: 0, other: 0 };
  for (const a of actions) {
    switch (a.kind) {
      case 'write-file':
        if (a.before === null) s.add++;
        else s.change++;
        break;
      case 'archive-file':
      case 'kill-session':
      case 'stop':
      case 'disable':
        s.remove++;
        break;
      case 'enable':
      case 'start':
      case 'restart':
      case 'respawn':
      case 'daemon-reload':
        s.other++;
        break;
      case 'worktree-add':
        s.add++;
        break;
      case 'worktree-lock':
      case 'worktree-move':
        s.change++;
        break;
      case 'worktree-remove':
        s.remove++;
        break;
      default:
        assertNever(a, 'action');
    }
  }
  return s;
}

/** The observed state the plan changes, as plain data: units, sessions and managed files. */
interface StateProjection {
  units: Record<string, { active: boolean; enabled: boolean }>;
  sessions: Record<string, 'running' | 'dead' | 'absent'>;
  files: Record<string, string>;
}

function sessionKey(socketName: string, session: string): string {
  return `${socketName === '' ? '(default)' : socketName}/${session}`;
}

function project(observed: Observed): StateProjection {
  const units: StateProjection['units'] = {};
  for (const u of Object.values(observed.systemd.units)) {
    const ours =
      u.name.startsWith('mosaic-agent@') ||
      u.name === HOLDER_UNIT ||
      (CONVERGENCE_UNITS as readonly string[]).includes(u.name);
    if (!ours) continue;
    if (u.name.endsWith('@.service')) continue;
    units[u.name] = {
      active: u.activeState === 'active' || u.activeState === 'activating',
      enabled: u.unitFileState === 'enabled',
    };
  }
  const sessions: StateProjection['sessions'] = {};
  for (const s of Object.values(observed.tmux.sockets)) {
    for (const name of s.sessions) {
      const panes = sessionPanes(s, name);
      sessions[sessionKey(s.socketName, name)] =
        panes.length > 0 && panes.every((p) => p.dead) ? 'dead' : 'running';
    }
  }
  const files: StateProjection['files'] = {};
  for (const f of Object.values(observed.files)) {
    if (f.content !== null) files[f.path] = `sha256:${contentSha256(f.content)}`;
  }
  return { units, sessions, files };
}

/** RFC 6902 patch from the observed projection to what it will be once the actions are applied. */
function statePatch(
  observed: Observed,
  actions: readonly Action[],
  holderSockets: readonly DesiredSocket[],
): Operation[] {
  // Nothing to apply changes nothing: no projection of every unit, session and file to compare with itself.
  if (actions.length === 0) return [];
  const before = project(observed);
  const after: StateProjection = structuredClone(before);
  const unit = (name: string) => (after.units[name] ??= { active: false, enabled: false });
  for (const a of actions) {
    switch (a.kind) {
      case 'write-file':
        after.files[a.path] = `sha256:${sha256(a.after)}`;
        break;
      case 'archive-file':
        if (after.files[a.path] !== undefined) after.files[a.to] = after.files[a.path];
        delete after.files[a.path];
        break;
      case 'daemon-reload':
        break;
      case 'enable':
        unit(a.unit).enabled = true;
        break;
      case 'disable':
        unit(a.unit).enabled = false;
        break;
      case 'start':
      case 'restart':
        unit(a.unit).active = true;
        if (a.unit === HOLDER_UNIT) {
          for (const s of holderSockets)
            after.sessions[sessionKey(s.socketName, s.holderSession)] = 'running';
        }
        if (a.agent !== null) {
          const agent = a.agent;
          const socket = socketOfAgent(observed, actions, agent);
          if (socket !== null) after.sessions[sessionKey(socket, agent)] = 'running';
        }
        break;
      case 'respawn':
        after.sessions[sessionKey(a.socketName, a.session)] = 'running';
        break;
      case 'stop':
        unit(a.unit).active = false;
        if (a.agent !== null) {
          for (const key of Object.keys(after.sessions))
            if (key.endsWith(`/${a.agent}`)) delete after.sessions[key];
        }
        break;
      case 'kill-session':
        delete after.sessions[sessionKey(a.socketName, a.session)];
        break;
      case 'worktree-add':
      case 'worktree-lock':
      case 'worktree-move':
      case 'worktree-remove':
        // Worktrees are not in this projection of units, sessions and files: the actions say what changes.
        break;
      default:
        assertNever(a, 'action');
    }
  }
  return jsonpatch.compare(before, after);
}

/** The socket an agent's session lives on, from the env file the plan writes (or the one on disk). */
function socketOfAgent(observed: Observed, actions: readonly Action[], agent: string): string | null {
  const write = actions.find(
    (x): x is WriteFileAction => x.kind === 'write-file' && x.role === 'env' && x.agent === agent,
  );
  const text =
    write?.after ??
    Object.values(observed.files).find((f) => f.path.endsWith(`/fleet/agents/${agent}.env`))?.content;
  if (!text) return null;
  return parseEnvFile(text).entries.get('MOSAIC_TMUX_SOCKET') ?? '';
}
