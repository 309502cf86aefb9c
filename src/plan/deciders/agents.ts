/**
 * Agents: for each agent that should run here, at most one of start, restart (by its policy and the disruption
 * budget), socket move, respawn (by the crash-loop back-off), each held back when the new start is known to fail.
 * Decided one agent at a time (`decideAgent`); the only thing carried from one agent to the next is how much of
 * the disruption budget is left, passed in and counted here.
 */
import type { DesiredAgent, RestartSettings } from '../../model/desired.js';
import type {
  Action,
  BackoffPolicy,
  DeferredRespawn,
  DeferredRestart,
  HeldAction,
  KillSessionAction,
  NotRunning,
} from '../../model/plan.js';
import { DEFAULT_BACKOFF } from '../../model/plan.js';
import { assertNever } from '../../errors.js';
import { agentUnitName } from '../../base/names.js';
import { agentStatus, type AgentStatus } from '../health.js';
import { livePane } from '../lookup.js';
import type { EnvDecision } from './env.js';
import type { FilesDecision } from './files.js';
import { socketLabel, unitAction, unitActive, type PlanInput, type Scope } from './input.js';
import { restartNeed } from './restart-need.js';
import { DEFAULT_RESTART, restartDecision } from './restart-policy.js';
import { backoffOver, decideRespawn, respawnReason, runsStartedProgram } from './respawn.js';
import { movedSession } from './sessions.js';
import { startBlocker, type BlockedStart, type StartBlock } from './start-check.js';

/** What the earlier deciders produced that the agents decider reads. */
export interface AgentsBasis {
  env: EnvDecision;
  files: FilesDecision;
  /** Working directories the plan makes before any start (the agents' worktrees). */
  madeDirs: ReadonlySet<string>;
}

export interface AgentsDecision {
  /** Starts and restarts (a socket move's kill before its restart) in agent order, then respawns. */
  actions: Action[];
  held: HeldAction[];
  /** Starts known to fail, in the order they were held (the warnings name their causes). */
  blocked: BlockedStart[];
  notRunning: NotRunning[];
  deferred: DeferredRespawn[];
  deferredRestarts: DeferredRestart[];
  restartPending: Record<string, number>;
  backoffResets: string[];
}

/** One agent's outcome. `restarted` spends one unit of the disruption budget. */
type Outcome =
  | { kind: 'none' }
  | { kind: 'backoff-over' }
  | { kind: 'act'; actions: Action[]; restarted: boolean }
  | { kind: 'respawn'; action: Action }
  | { kind: 'held'; held: HeldAction; block: StartBlock; down: boolean }
  | { kind: 'deferred-restart'; entry: DeferredRestart }
  | { kind: 'deferred-respawn'; entry: DeferredRespawn };

export function decideAgents(input: PlanInput, scope: Scope, basis: AgentsBasis): AgentsDecision {
  const settings = input.desired.reconcile.restart ?? DEFAULT_RESTART;
  const policy = input.backoff ?? DEFAULT_BACKOFF;
  const d: AgentsDecision = {
    actions: [],
    held: [],
    blocked: [],
    notRunning: [],
    deferred: [],
    deferredRestarts: [],
    restartPending: {},
    backoffResets: [],
  };
  const respawns: Action[] = [];
  let budget = settings.maxUnavailable;
  for (const agent of scope.wanted) {
    const o = decideAgent(agent, input, basis, settings, policy, budget);
    switch (o.kind) {
      case 'none':
        break;
      case 'backoff-over':
        d.backoffResets.push(agent.name);
        break;
      case 'act':
        d.actions.push(...o.actions);
        if (o.restarted) budget -= 1;
        break;
      case 'respawn':
        respawns.push(o.action);
        break;
      case 'held':
        d.held.push(o.held);
        d.blocked.push({ agent: agent.name, block: o.block });
        if (o.down && o.held.action !== 'restart')
          d.notRunning.push({ agent: agent.name, action: o.held.action, reason: o.held.reason });
        break;
      case 'deferred-restart':
        d.deferredRestarts.push(o.entry);
        d.restartPending[agent.name] = o.entry.sinceMs;
        break;
      case 'deferred-respawn':
        d.deferred.push(o.entry);
        break;
      default:
        assertNever(o, 'agent outcome');
    }
  }
  d.actions.push(...respawns);
  return d;
}

function decideAgent(
  agent: DesiredAgent,
  input: PlanInput,
  basis: AgentsBasis,
  settings: RestartSettings,
  policy: BackoffPolicy,
  budget: number,
): Outcome {
  const { desired, observed, ctx } = input;
  const unit = agentUnitName(agent.name);
  const status = agentStatus(agent, observed, desired.runtimes[agent.runtime]);
  const block = startBlocker(
    agent,
    desired,
    observed,
    ctx,
    basis.env.rendered.get(agent.name),
    basis.madeDirs,
  );
  const held = (action: HeldAction['action'], need: string, down: boolean): Outcome | null =>
    block === null
      ? null
      : { kind: 'held', held: { agent: agent.name, action, need, reason: block.reason }, block, down };
  if (!unitActive(observed, unit)) {
    const why =
      observed.systemd.units[unit]?.activeState === 'failed' ? 'unit failed' : 'unit is not running';
    return (
      held('start', why, true) ?? {
        kind: 'act',
        actions: [unitAction('start', unit, agent.name, why)],
        restarted: false,
      }
    );
  }
  // The agent's socket changed: its running session is still on the old one. Moving it ends that session
  // (after the policy allows) and starts it on the new socket, so it never runs twice.
  const moved = movedSession(agent, desired, observed, ctx);
  if (moved !== null) {
    const need = `socket changed: its session runs on ${socketLabel(moved)}, the manifest says ${socketLabel(agent.socketName)}`;
    const oldStatus = agentStatus({ ...agent, socketName: moved }, observed, desired.runtimes[agent.runtime]);
    const kill = moveKill(input, basis, agent, moved, need);
    return (
      held('restart', need, false) ?? planRestart(agent, input, oldStatus, need, [kill], settings, budget)
    );
  }
  // A pane running something other than the agent is no running agent to protect (respawned below, at once);
  // one still running the program it was started with is, and its restart waits for the policy.
  const live = status.sessionExists === true && !status.paneDead;
  const foreign = status.flags.includes('DRIFT') && !runsStartedProgram(agent, desired, observed);
  const need =
    live && !foreign
      ? restartNeed({
          pane: livePane(observed.tmux.sockets[agent.socketName], agent.name),
          wantedEnv: basis.env.rendered.get(agent.name),
          unitDigest: basis.files.unitDigest,
          envFileChanges: basis.env.actions.some((a) => a.agent === agent.name && a.before !== a.after),
          templateChanged: basis.files.templateChanged,
        })
      : null;
  if (need !== null)
    return held('restart', need, false) ?? planRestart(agent, input, status, need, [], settings, budget);
  const why = respawnReason(agent, status, desired.runtimes[agent.runtime]?.heartbeat ?? false);
  const entry = observed.state.backoff[agent.name];
  if (why === null)
    return backoffOver(entry, policy, observed.nowMs) ? { kind: 'backoff-over' } : { kind: 'none' };
  const r = decideRespawn(agent, status, why, entry, observed.nowMs);
  if (r.kind === 'deferred') return { kind: 'deferred-respawn', entry: r.entry };
  // Nothing of the agent runs in a missing session or a dead pane: holding its respawn leaves it down.
  return held('respawn', why, !live) ?? { kind: 'respawn', action: r.action };
}

/** A running agent needs a restart: done now (policy and budget allow) or deferred. */
function planRestart(
  agent: DesiredAgent,
  input: PlanInput,
  status: AgentStatus,
  need: string,
  before: Action[],
  settings: RestartSettings,
  budget: number,
): Outcome {
  const { observed } = input;
  const decision = restartDecision(agent, status, settings, observed);
  if (decision.now && budget > 0) {
    const restart = unitAction('restart', agentUnitName(agent.name), agent.name, `${need}${decision.note}`);
    return { kind: 'act', actions: [...before, { ...restart, disruptive: true }], restarted: true };
  }
  const sinceMs = observed.state.restartPending?.[agent.name] ?? observed.nowMs;
  const reason = decision.now
    ? `disruption budget: at most ${settings.maxUnavailable} running agent(s) restarted per reconcile`
    : decision.reason;
  return { kind: 'deferred-restart', entry: { agent: agent.name, need, reason, sinceMs } };
}

/** A socket move ends the session on the old socket first (the graceful way), so the agent never runs twice. */
function moveKill(
  input: PlanInput,
  basis: AgentsBasis,
  agent: DesiredAgent,
  moved: string,
  need: string,
): KillSessionAction {
  return {
    kind: 'kill-session',
    agent: agent.name,
    socketName: moved,
    session: agent.name,
    owner: input.observed.paths.mosaicHome,
    reason: `${need} (ended before it starts on the new socket)`,
    disruptive: true,
    graceful: {
      script: `${input.ctx.toolsDir}/stop-agent-session.sh`,
      env: gracefulEnv(basis.env, agent, moved),
    },
  };
}

/** What the stop script needs to end an agent's session its own way on `socketName`: its env file's keys. */
function gracefulEnv(env: EnvDecision, agent: DesiredAgent, socketName: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of env.rendered.get(agent.name) ?? []) {
    if (k.startsWith('MOSAIC_')) out[k] = v;
  }
  return { ...out, MOSAIC_TMUX_SOCKET: socketName };
}
