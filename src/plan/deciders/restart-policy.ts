/**
 * When a running agent that needs a restart may have it: its restart policy (docs/lifecycle.md) against what
 * the runtime says it is doing. The disruption budget (`max_unavailable`) is counted by the agents decider.
 */
import type { DesiredAgent, RestartSettings } from '../../model/desired.js';
import type { Observed } from '../../model/observed.js';
import type { AgentStatus } from '../health.js';

/** Restarts of running agents when the manifest says nothing (docs/lifecycle.md). */
export const DEFAULT_RESTART: RestartSettings = {
  policy: 'when-idle',
  settleSeconds: 30,
  maxUnavailable: 1,
  maxDeferSeconds: null,
};

export type RestartDecision = { now: true; note: string } | { now: false; reason: string };

export function restartDecision(
  agent: DesiredAgent,
  status: AgentStatus,
  settings: RestartSettings,
  observed: Observed,
): RestartDecision {
  const name = agent.restartPolicy ?? settings.policy;
  if (name === 'manual')
    return { now: false, reason: `restart policy is manual: run \`fleet restart ${agent.name}\`` };
  if (name === 'immediate') return { now: true, note: ' (restart policy: immediate)' };
  const wait = idleWait(status, settings.settleSeconds);
  if (wait === null) return { now: true, note: ' (idle)' };
  const since = observed.state.restartPending?.[agent.name];
  const maxDefer = settings.maxDeferSeconds;
  if (maxDefer !== null && since !== undefined && observed.nowMs - since >= maxDefer * 1000) {
    return {
      now: true,
      note: ` (deferred since ${new Date(since).toISOString()}, past max_defer ${maxDefer}s: ${wait})`,
    };
  }
  return { now: false, reason: wait };
}

/**
 * What a when-idle restart (or a budget's pause: `stops`) waits for; null when the agent is settled (idle long
 * enough, or exited).
 */
export function idleWait(status: AgentStatus, settle: number, then = 'restarts'): string | null {
  const st = status.state;
  if (st === null) {
    // No state signal (a plain command): the pane's output quiet for the settle period is the best there is.
    const quiet = status.idleSeconds;
    return quiet !== null && quiet >= settle
      ? null
      : `no state signal; its pane printed ${quiet === null ? 'at an unknown time' : `${quiet}s ago`} (waits for ${settle}s of quiet)`;
  }
  if ((st.state === 'idle' && (st.forSeconds ?? 0) >= settle) || st.state === 'exited') return null;
  const what = st.state === 'waiting' ? 'waiting for a permission answer' : st.state;
  return `${what}${st.forSeconds === null ? '' : ` for ${st.forSeconds}s`}; ${then} once idle for ${settle}s`;
}
