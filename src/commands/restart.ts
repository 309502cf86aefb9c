/**
 * `fleet restart AGENT... [--now]`: restart the named agents through the engine, under the lock, journaled like
 * every apply. The unit's ExecStop asks the runtime to exit its own way; the start resumes its conversation. An
 * agent whose runtime says it is busy, waiting or starting is left alone unless --now (one line each, exit 1);
 * the others are restarted. This is also how the manual restart policy is carried out.
 */
import type { DesiredAgent } from '../model/desired.js';
import { startBlocker } from '../plan/deciders/start-check.js';
import { parseEnvFile } from '../base/env-file.js';
import { renderContext, type Session } from '../engine/session.js';
import type { GlobalOptions } from '../options.js';
import { UserError } from '../errors.js';
import { createRunner } from '../exec.js';
import type { Plan } from '../model/plan.js';
import { preflight } from '../observe/preflight.js';
import { resolvePaths } from '../paths.js';
import { agentStatus } from '../plan/health.js';
import { acquireLock } from '../apply/lock.js';
import { applyAndJournal } from '../engine/converge.js';
import { loadFleet, planFor } from '../engine/session.js';
import { pickAgents, runtimeOf } from '../engine/agent-control.js';
import { restartAction, restartImpossible, stateRefusal } from '../engine/verbs.js';

export interface RestartOptions extends GlobalOptions {
  now: boolean;
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

export async function restartCommand(names: string[], o: RestartOptions): Promise<number> {
  if (names.length === 0) throw new UserError('name at least one agent to restart');
  const paths = resolvePaths(o);
  const { desired } = await loadFleet(paths);
  const picked = pickAgents(desired, names);
  preflight();
  const command = `fleet restart ${picked.map((a) => a.name).join(' ')}${o.now ? ' --now' : ''}`;
  const lock = await acquireLock(paths.stateDir, command);
  try {
    const runner = createRunner();
    // The engine's session: observed under the lock, so the state judged is the state acted on.
    const s = await planFor(desired, paths, false, runner);
    let refused = 0;
    const actions: Plan['actions'] = [];
    for (const agent of picked) {
      const status = agentStatus(agent, s.observed, runtimeOf(desired, agent, paths));
      const why =
        restartImpossible(status) ??
        startWouldFail(agent, s) ??
        stateRefusal(agent.name, status.state, 'restarted', o.now);
      if (why !== null) {
        process.stderr.write(`fleet: ${why}\n`);
        refused++;
        continue;
      }
      actions.push(restartAction(status, command));
    }
    if (actions.length === 0) return 1;
    const done = new Set(actions.map((a) => ('agent' in a ? a.agent : null)));
    const restartPending = Object.fromEntries(
      Object.entries(s.plan.restartPending).filter(([name]) => !done.has(name)),
    );
    // Only these actions: whatever else the planner found stays for `fleet reconcile`. A restart it had deferred
    // is done now, so it is no longer pending.
    const plan: Plan = {
      ...s.plan,
      actions,
      restartPending,
      deferredRestarts: s.plan.deferredRestarts.filter((d) => !done.has(d.agent)),
    };
    const result = await applyAndJournal(s, plan, command, {
      onResult: (r) => {
        const line = `${r.message}${r.error ? `: ${r.error}` : ''}\n`;
        if (r.outcome === 'done') process.stdout.write(line);
        else process.stderr.write(`fleet: ${line}`);
      },
    });
    return result.ok && refused === 0 ? 0 : 1;
  } finally {
    await lock.release();
  }
}
