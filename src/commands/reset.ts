/**
 * `fleet reset AGENT... [--now]`: type the runtime's own reset command (`/clear`, `/new`) into each agent's pane,
 * so its next prompt starts a fresh conversation in the same session. Respects the runtime's state like restart
 * (busy or waiting: refused unless --now), under the lock (a reconcile must not restart the agent while it is
 * being typed into), journaled. A runtime still starting is waited for (within --timeout) and never typed into:
 * it cannot take input yet, --now or not (src/runtimes/ready.ts).
 */
import type { GlobalOptions } from '../options.js';
import { UserError } from '../errors.js';
import type { JournalAction } from '../apply/journal.js';
import { writeJournal, paneUnavailable, typeLine } from '../engine/agent-control.js';
import { lockWhenReady } from '../engine/ready-wait.js';
import { stateRefusal } from '../engine/verbs.js';

export interface ResetOptions extends GlobalOptions {
  now: boolean;
  timeout: string;
}

export async function resetCommand(names: string[], o: ResetOptions): Promise<number> {
  if (names.length === 0) throw new UserError('name at least one agent to reset');
  const timeoutSec = Number(o.timeout);
  if (!Number.isFinite(timeoutSec) || timeoutSec <= 0)
    throw new UserError(`--timeout must be a positive number of seconds, got "${o.timeout}"`);
  const command = `fleet reset ${[...new Set(names)].join(' ')}${o.now ? ' --now' : ''}`;
  const started = new Date();
  const { lock, ctx, notReady } = await lockWhenReady(o, names, command, timeoutSec * 1000);
  try {
    const actions: JournalAction[] = [];
    let failed = 0;
    for (const { agent, runtime, status } of ctx.agents) {
      const reset = runtime?.resetCommand ?? null;
      const why =
        reset === null || reset === ''
          ? `${agent.name}'s runtime ${agent.runtime} has no reset command (set runtimes.${agent.runtime}.reset_command in the roster)`
          : (paneUnavailable(status) ??
            (notReady.has(agent.name)
              ? `${notReady.get(agent.name) ?? ''}; not reset (waited ${timeoutSec}s, --timeout)`
              : null) ??
            stateRefusal(agent.name, status.state, 'reset', o.now));
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
