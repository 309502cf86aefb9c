/**
 * The verbs that type into a pane (`fleet send`, `fleet reset`) wait here until the runtime itself said it can take
 * input (src/runtimes/ready.ts), within the operator's --timeout. Each look takes the lock and observes afresh; the
 * lock is released between looks, so a wait never holds a reconcile back. What comes back is held under the lock:
 * the caller types, then releases it.
 */
import type { GlobalOptions } from '../cli.js';
import { acquireLock, type Lock } from '../apply/lock.js';
import { resolvePaths } from '../paths.js';
import { readiness } from '../runtimes/ready.js';
import { sleep, verbContext, type VerbContext } from './agent-control.js';

const LOOK_EVERY_MS = 250;

export interface ReadyContext {
  lock: Lock;
  ctx: VerbContext;
  /** Agents still not ready when the time ran out, with why (the one line the operator sees). */
  notReady: Map<string, string>;
}

/**
 * Observe the named agents under the lock until every one is ready for input or `timeoutMs` passed. Agents with no
 * session or a dead pane are not waited for: that is the verbs' own refusal, and waiting would not change it.
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
    const lock = await acquireLock(paths.stateDir, command);
    let handedOver = false;
    try {
      const ctx = await verbContext(g, names);
      const notReady = new Map<string, string>();
      for (const { agent, runtime, status } of ctx.agents) {
        if (!status.local || status.sessionExists !== true || status.paneDead) continue;
        const r = readiness(agent.name, runtime, status.state);
        if (!r.ready) notReady.set(agent.name, r.why);
      }
      if (notReady.size === 0 || Date.now() >= deadline) {
        handedOver = true;
        return { lock, ctx, notReady };
      }
    } finally {
      if (!handedOver) await lock.release();
    }
    await sleep(Math.min(LOOK_EVERY_MS, Math.max(0, deadline - Date.now())));
  }
}
