/**
 * `fleet restart AGENT... [--now]`: restart the named agents through the engine, under the lock, journaled like
 * every apply. The unit's ExecStop asks the runtime to exit its own way; the start resumes its conversation. An
 * agent whose runtime says it is busy, waiting or starting is left alone unless --now (one line each, exit 1);
 * the others are restarted. This is also how the manual restart policy is carried out.
 */
import type { GlobalOptions } from '../options.js';
import { UserError } from '../errors.js';
import { createRunner } from '../exec.js';
import { resolvePaths } from '../paths.js';
import { applyAndJournal } from '../engine/converge.js';
import { loadFleet, planFor } from '../engine/session.js';
import { pickAgents, restartPlan } from '../engine/agent-control.js';
import { lockForRun } from '../engine/run-lock.js';

export interface RestartOptions extends GlobalOptions {
  now: boolean;
}

export async function restartCommand(names: string[], o: RestartOptions): Promise<number> {
  if (names.length === 0) throw new UserError('name at least one agent to restart');
  const paths = resolvePaths(o);
  const { desired } = await loadFleet(paths);
  const picked = pickAgents(desired, names);
  const command = `fleet restart ${picked.map((a) => a.name).join(' ')}${o.now ? ' --now' : ''}`;
  const lock = await lockForRun(paths, command);
  try {
    const runner = createRunner();
    // The engine's session: observed under the lock, so the state judged is the state acted on.
    const s = await planFor(desired, paths, false, runner);
    const { plan, refusals } = restartPlan(s, picked, command, o.now);
    for (const why of refusals) process.stderr.write(`fleet: ${why}\n`);
    if (plan === null) return 1;
    const result = await applyAndJournal(s, plan, command, {
      onResult: (r) => {
        const line = `${r.message}${r.error ? `: ${r.error}` : ''}\n`;
        if (r.outcome === 'done') process.stdout.write(line);
        else process.stderr.write(`fleet: ${line}`);
      },
    });
    return result.ok && refusals.length === 0 ? 0 : 1;
  } finally {
    await lock.release();
  }
}
