/**
 * "A start known to fail": the one rule for whether starting an agent now would fail, shared by the planner
 * (which holds such starts, restarts and respawns back) and `fleet restart` (which refuses them). A running
 * session is never ended for a start that cannot succeed.
 */
import type { DesiredAgent, DesiredFleet } from '../../model/desired.js';
import type { Observed } from '../../model/observed.js';
import type { RenderContext } from '../../render/units.js';
import { isLocalAgent } from '../../model/desired.js';

/** Why a start would fail: its working directory is missing, or its runtime program is not on the manager's PATH. */
export type StartBlock =
  | { cause: 'workdir'; reason: string; directory: string }
  | { cause: 'program'; reason: string; program: string };

/** A start held back, and why. */
export interface BlockedStart {
  agent: string;
  block: StartBlock;
}

/**
 * Whether starting `agent` now is known to fail, from what observation found. `env` is the env file the start
 * will read (parsed): a PATH of the agent's own there is what the start script searches, and the manager's PATH
 * says nothing about it, so the program is then not judged.
 */
export function startBlocker(
  agent: DesiredAgent,
  desired: DesiredFleet,
  observed: Observed,
  ctx: RenderContext,
  env: ReadonlyMap<string, string> | undefined,
  madeDirs: ReadonlySet<string> = new Set(),
): StartBlock | null {
  // The session script refuses to guess a directory: the start would fail, unless this plan makes it first (the
  // agent's worktree, added before any unit action).
  if (observed.dirs?.[agent.workingDirectory] === false && !madeDirs.has(agent.workingDirectory)) {
    return {
      cause: 'workdir',
      directory: agent.workingDirectory,
      reason: `working directory ${agent.workingDirectory} does not exist`,
    };
  }
  const program = runtimeProgram(agent, desired, ctx);
  if (program === null || env?.has('PATH') === true) return null;
  const found = observed.programs?.[program];
  if (found === undefined || found.path !== null) return null;
  return {
    cause: 'program',
    program,
    reason: `runtime program '${program}' is not on the user manager's PATH`,
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
