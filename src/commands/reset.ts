/**
 * `fleet reset AGENT... [--now]`: type the runtime's own reset command (`/clear`, `/new`) into each agent's pane,
 * so its next prompt starts a fresh conversation in the same session. Respects the runtime's state like restart
 * (busy, waiting or starting: refused unless --now), under the lock (a reconcile must not restart the agent while
 * it is being typed into), journaled.
 */
import type { GlobalOptions } from '../options.js';
import { UserError } from '../errors.js';
import { acquireLock } from '../apply/lock.js';
import type { JournalAction } from '../apply/journal.js';
import { writeJournal, paneUnavailable, typeLine, verbContext } from '../engine/agent-control.js';
import { stateRefusal } from '../engine/verbs.js';
import { resolvePaths } from '../paths.js';

export interface ResetOptions extends GlobalOptions {
  now: boolean;
}

export async function resetCommand(names: string[], o: ResetOptions): Promise<number> {
  if (names.length === 0) throw new UserError('name at least one agent to reset');
  const paths = resolvePaths(o);
  const command = `fleet reset ${[...new Set(names)].join(' ')}${o.now ? ' --now' : ''}`;
  const started = new Date();
  const lock = await acquireLock(paths.stateDir, command);
  try {
    const ctx = await verbContext(o, names);
    const actions: JournalAction[] = [];
    let failed = 0;
    for (const { agent, runtime, status } of ctx.agents) {
      const reset = runtime?.resetCommand ?? null;
      const why =
        reset === null || reset === ''
          ? `${agent.name}'s runtime ${agent.runtime} has no reset command (set runtimes.${agent.runtime}.reset_command in the roster)`
          : (paneUnavailable(status) ?? stateRefusal(agent.name, status.state, 'reset', o.now));
      if (why !== null || reset === null) {
        process.stderr.write(`fleet: ${why ?? ''}\n`);
        failed++;
        continue;
      }
      const reason = `asked by \`${command}\``;
      try {
        await typeLine(ctx.runner, agent.socketName, agent.name, reset);
        const message = `typed ${reset} into ${agent.name}`;
        process.stdout.write(`${message}\n`);
        actions.push({ kind: 'reset', target: agent.name, message, reason, outcome: 'done' });
      } catch (error) {
        const text = (error as Error).message.split('\n')[0] ?? '';
        process.stderr.write(`fleet: could not reset ${agent.name}: ${text}\n`);
        actions.push({
          kind: 'reset',
          target: agent.name,
          message: `could not type ${reset} into ${agent.name}`,
          reason,
          outcome: 'failed',
          error: text,
        });
        failed++;
      }
    }
    if (actions.length > 0) await writeJournal(ctx.paths, command, started, actions);
    return failed === 0 ? 0 : 1;
  } finally {
    await lock.release();
  }
}
