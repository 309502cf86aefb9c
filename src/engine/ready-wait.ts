/**
 * The verbs that type into a pane (`fleet send`, `fleet reset`) wait here until the runtime itself said it can take
 * input (src/runtimes/ready.ts), within the operator's --timeout. Each look observes afresh without the lock, so a
 * wait never holds a reconcile (or another verb) back; the last look is made under the lock, and what comes back is
 * held under it: the caller types, then releases it.
 */
import type { GlobalOptions } from '../options.js';
import { acquireLock, type Lock } from '../apply/lock.js';
import { resolvePaths } from '../paths.js';
import { readiness } from '../runtimes/ready.js';
import { sleep, verbContext, type VerbContext } from './agent-control.js';

const LOOK_EVERY_MS = 250;
/** How long the final look waits for the lock at least (acquireLock's own default). */
const LOCK_WAIT_MS = 10_000;

export interface ReadyContext {
  lock: Lock;
  ctx: VerbContext;
  /** Agents still not ready when the time ran out, with why (the one line the operator sees). */
  notReady: Map<string, string>;
}

function notReadyIn(ctx: VerbContext): Map<string, string> {
  const notReady = new Map<string, string>();
  for (const { agent, runtime, status } of ctx.agents) {
    // No session or a dead pane is the verbs' own refusal; waiting would not change it.
    if (!status.local || status.sessionExists !== true || status.paneDead) continue;
    const r = readiness(agent.name, runtime, status.state);
    if (!r.ready) notReady.set(agent.name, r.why);
  }
  return notReady;
}

/**
 * Observe the named agents until every one is ready for input or `timeoutMs` passed, then take the lock and look
 * once more under it (a reconcile may have restarted one meanwhile): what the caller acts on is what the lock
 * holds. The looks before are read-only and lock-free, so several verbs waiting at once never starve each other.
 */
export async function lockWhenReady(
  g: GlobalOptions,
  names: readonly string[],
  command: string,
  timeoutMs: number,
): Promise<ReadyContext> {
  const paths = resolvePaths(g);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ctx = await verbContext(g, names);
    if (notReadyIn(ctx).size === 0 || Date.now() >= deadline) break;
    await sleep(Math.min(LOOK_EVERY_MS, Math.max(0, deadline - Date.now())));
  }
  const lock = await acquireLock(paths.stateDir, command, Math.max(LOCK_WAIT_MS, deadline - Date.now()));
  try {
    const ctx = await verbContext(g, names);
    return { lock, ctx, notReady: notReadyIn(ctx) };
  } catch (error) {
    await lock.release();
    throw error;
  }
}
