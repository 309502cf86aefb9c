/**
 * The effectful half of the operator verbs: find the named agents and what they are doing, type into an agent's
 * pane (always its own socket, always the exact target `=NAME:`), read its heartbeat, journal what was done.
 * Decisions live in ./verbs.ts; every spawn goes through the Runner.
 */
import { readFile } from '../fs-async.js';
import { join } from 'node:path';
import type { GlobalOptions } from '../options.js';
import { UserError } from '../errors.js';
import { createRunner, type RunResult, type Runner } from '../exec.js';
import type { DesiredAgent, DesiredFleet, RuntimeSpec } from '../model/desired.js';
import type { Observed } from '../model/observed.js';
import { resolvePaths, type FleetPaths } from '../paths.js';
import { agentStatus, type AgentStatus } from '../plan/health.js';
import { builtinRuntimes } from '../runtimes/index.js';
import { socketArgs } from '../base/names.js';
import { heartbeatFileName, heartbeatState, type HeartbeatState } from '../base/heartbeat.js';
import { parseEnvFile } from '../base/env-file.js';
import type { Plan } from '../model/plan.js';
import { startBlocker } from '../plan/deciders/start-check.js';
import { restartAction, restartImpossible, stateRefusal } from './verbs.js';
import { loadFleet, observeFor, renderContext, type Session } from './session.js';

export { currentRanBy, writeJournal } from './journal-write.js';

/** One named agent with its spec and its observed status. */
export interface VerbAgent {
  agent: DesiredAgent;
  runtime: RuntimeSpec | undefined;
  status: AgentStatus;
}

export interface VerbContext {
  paths: FleetPaths;
  runner: Runner;
  desired: DesiredFleet;
  observed: Observed;
  agents: VerbAgent[];
}

/** The manifests' agents by these names, in the order given; an unknown name is an error naming it. */
export function pickAgents(desired: DesiredFleet, names: readonly string[]): DesiredAgent[] {
  const unknown = names.filter((n) => !desired.agents.some((a) => a.name === n));
  if (unknown.length > 0) {
    throw new UserError(
      `no agent named ${unknown.map((n) => JSON.stringify(n)).join(', ')} in the manifests (${desired.sources.join(', ') || 'none found'})`,
    );
  }
  return [...new Set(names)].map((n) => desired.agents.find((a) => a.name === n) as DesiredAgent);
}

export function runtimeOf(
  desired: DesiredFleet,
  agent: DesiredAgent,
  paths: FleetPaths,
): RuntimeSpec | undefined {
  return (
    desired.runtimes[agent.runtime] ??
    builtinRuntimes({ userHome: '', mosaicHome: paths.mosaicHome, hostname: '' })[agent.runtime]
  );
}

/** Load the manifests and observe the machine for the named agents (read-only). */
export async function verbContext(
  g: GlobalOptions,
  names: readonly string[],
  runner: Runner = createRunner(),
): Promise<VerbContext> {
  const paths = resolvePaths(g);
  const { desired } = await loadFleet(paths);
  const picked = pickAgents(desired, names);
  const observed = await observeFor(desired, paths, runner);
  if (!observed.tmux.ok) throw new UserError(observed.tmux.error ?? 'tmux is not usable');
  return {
    paths,
    runner,
    desired,
    observed,
    agents: picked.map((agent) => {
      const runtime = runtimeOf(desired, agent, paths);
      return { agent, runtime, status: agentStatus(agent, observed, runtime) };
    }),
  };
}

/** Why nothing can be typed into this agent's pane; null when its session is there and alive. */
export function paneUnavailable(s: AgentStatus): string | null {
  if (!s.local) return `${s.agent} runs on ${s.host ?? 'another host'}: its pane is not reachable from here`;
  if (s.sessionExists !== true) return `${s.agent} has no session on ${describe(s.socketName)}`;
  if (s.paneDead) return `${s.agent}'s pane is dead (its program exited)`;
  return null;
}

function describe(socket: string): string {
  return socket === '' ? 'the default tmux socket' : `tmux socket ${socket}`;
}

/** The exact target of an agent's session (its current window's active pane): never a prefix match. */
export function agentTarget(agent: string): string {
  return `=${agent}:`;
}

/**
 * tmux on the agent's own socket. $TMUX is dropped: run from inside a tmux pane it would name the enclosing
 * server, and only the socket rule may pick the server.
 */
export function tmux(
  runner: Runner,
  socketName: string,
  args: readonly string[],
  opts: { mutate?: boolean; input?: string; interactive?: boolean; reject?: boolean } = {},
): Promise<RunResult> {
  return runner.run(['tmux', ...socketArgs(socketName), ...args], {
    kind: opts.mutate === true ? 'mutate' : 'read',
    env: { TMUX: undefined },
    ...(opts.input !== undefined ? { input: opts.input } : {}),
    ...(opts.interactive === true ? { interactive: true } : {}),
    ...(opts.reject === false ? { reject: false } : {}),
  });
}

/** Runtimes such as Codex take text followed at once by Enter as a paste and do not submit it. */
export const ENTER_DELAY_MS = 500;

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Type a command line (`/clear`) as keys, then Enter as a separate key a moment later. */
export async function typeLine(
  runner: Runner,
  socketName: string,
  agent: string,
  text: string,
): Promise<void> {
  await tmux(runner, socketName, ['send-keys', '-t', agentTarget(agent), '-l', text], { mutate: true });
  await sleep(ENTER_DELAY_MS);
  await tmux(runner, socketName, ['send-keys', '-t', agentTarget(agent), 'Enter'], { mutate: true });
}

/**
 * Type a message of any length and any characters as one prompt: loaded into a tmux buffer of its own (stdin,
 * never a shell or an argument), pasted with bracketed paste so a newline is part of the text rather than a
 * submit, the buffer deleted by the paste; then Enter as a separate key a moment later.
 */
export async function pasteMessage(
  runner: Runner,
  socketName: string,
  agent: string,
  text: string,
): Promise<void> {
  const buffer = `fleet-send-${process.pid}-${Date.now().toString(36)}`;
  await tmux(runner, socketName, ['load-buffer', '-b', buffer, '-'], { mutate: true, input: text });
  try {
    await tmux(runner, socketName, ['paste-buffer', '-p', '-d', '-b', buffer, '-t', agentTarget(agent)], {
      mutate: true,
    });
  } catch (error) {
    await tmux(runner, socketName, ['delete-buffer', '-b', buffer], { mutate: true, reject: false });
    throw error;
  }
  await sleep(ENTER_DELAY_MS);
  await tmux(runner, socketName, ['send-keys', '-t', agentTarget(agent), 'Enter'], { mutate: true });
}

/** The agent's heartbeat as it is now (state fields, and every key); null when there is none. */
export async function readHeartbeat(
  paths: FleetPaths,
  agent: string,
): Promise<{ state: HeartbeatState | null; text: string } | null> {
  try {
    const text = await readFile(join(paths.runDir, heartbeatFileName(agent)), 'utf8');
    return { state: heartbeatState(text), text };
  } catch {
    return null;
  }
}

/** A start known to fail is never traded for a running session, --now or not: the planner's own rule. */
function startWouldFail(agent: DesiredAgent, s: Session): string | null {
  const ctx = renderContext(s.paths);
  // The restart reads the env file on disk: a PATH of the agent's own there is what its start searches.
  const envFile = s.observed.files[`${ctx.mosaicHome}/fleet/agents/${agent.name}.env`]?.content;
  const env = envFile == null ? undefined : parseEnvFile(envFile).entries;
  const block = startBlocker(agent, s.desired, s.observed, ctx, env);
  if (block === null) return null;
  return block.cause === 'workdir'
    ? `${agent.name}: not restarted: ${block.reason} (its session is kept)`
    : `${agent.name}: not restarted: ${block.reason} (${s.observed.managerPath ?? '?'}); its session is kept`;
}

/**
 * `fleet restart`'s plan from the session's: only the restarts of the picked agents that may be restarted now
 * (null when none may), and one line for each that may not (busy, waiting or starting without --now, not
 * running here, a start known to fail). Whatever else the planner found stays for `fleet reconcile`; a restart
 * it had deferred is done now, so it is no longer pending.
 */
export function restartPlan(
  s: Session,
  picked: readonly DesiredAgent[],
  command: string,
  now: boolean,
): { plan: Plan | null; refusals: string[] } {
  const refusals: string[] = [];
  const actions: Plan['actions'] = [];
  for (const agent of picked) {
    const status = agentStatus(agent, s.observed, runtimeOf(s.desired, agent, s.paths));
    const why =
      restartImpossible(status) ??
      startWouldFail(agent, s) ??
      stateRefusal(agent.name, status.state, 'restarted', now);
    if (why !== null) refusals.push(why);
    else actions.push(restartAction(status, command));
  }
  if (actions.length === 0) return { plan: null, refusals };
  const done = new Set(actions.map((a) => ('agent' in a ? a.agent : null)));
  const restartPending = Object.fromEntries(
    Object.entries(s.plan.restartPending).filter(([name]) => !done.has(name)),
  );
  const plan: Plan = {
    ...s.plan,
    actions,
    restartPending,
    deferredRestarts: s.plan.deferredRestarts.filter((d) => !done.has(d.agent)),
  };
  return { plan, refusals };
}
