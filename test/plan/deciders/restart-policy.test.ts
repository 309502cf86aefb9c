/** When a running agent's restart may happen: its policy against what the runtime says it is doing. */
import { describe, expect, it } from 'vitest';
import type { RestartSettings } from '../../../src/model/desired.js';
import { DEFAULT_RESTART, idleWait, restartDecision } from '../../../src/plan/deciders/restart-policy.js';
import type { AgentStatus } from '../../../src/plan/health.js';
import type { StateStatus } from '../../../src/model/agent-state.js';
import { agent, NOW_MS, observedBuilder } from '../../helpers/builders.js';

function status(state: StateStatus | null, idleSeconds: number | null = 5): AgentStatus {
  return { state, idleSeconds } as AgentStatus;
}
const st = (s: StateStatus['state'], forSeconds: number | null): StateStatus => ({
  state: s,
  forSeconds,
  event: null,
  session: null,
});
const o = observedBuilder().build();
const a1 = agent('a1');

describe('restartDecision', () => {
  it('manual never restarts; immediate always does', () => {
    expect(
      restartDecision({ ...a1, restartPolicy: 'manual' }, status(st('idle', 999)), DEFAULT_RESTART, o),
    ).toEqual({
      now: false,
      reason: 'restart policy is manual: run `fleet restart a1`',
    });
    expect(
      restartDecision({ ...a1, restartPolicy: 'immediate' }, status(st('busy', 1)), DEFAULT_RESTART, o),
    ).toEqual({
      now: true,
      note: ' (restart policy: immediate)',
    });
  });

  it('when-idle: idle for the settle period, or exited, is now; busy and waiting wait and say so', () => {
    expect(restartDecision(a1, status(st('idle', 30)), DEFAULT_RESTART, o)).toEqual({
      now: true,
      note: ' (idle)',
    });
    expect(restartDecision(a1, status(st('exited', null)), DEFAULT_RESTART, o).now).toBe(true);
    expect(restartDecision(a1, status(st('busy', 12)), DEFAULT_RESTART, o)).toEqual({
      now: false,
      reason: 'busy for 12s; restarts once idle for 30s',
    });
    expect(restartDecision(a1, status(st('waiting', 100)), DEFAULT_RESTART, o)).toEqual({
      now: false,
      reason: 'waiting for a permission answer for 100s; restarts once idle for 30s',
    });
  });

  it('a budget’s pause waits the same way, and says it stops (not restarts) the agent', () => {
    expect(idleWait(status(st('busy', 12)), 2, 'stops')).toBe('busy for 12s; stops once idle for 2s');
    expect(idleWait(status(st('idle', 2)), 2, 'stops')).toBeNull();
  });

  it('no state signal: the pane’s quiet decides', () => {
    expect(restartDecision(a1, status(null, 31), DEFAULT_RESTART, o).now).toBe(true);
    expect(restartDecision(a1, status(null, 5), DEFAULT_RESTART, o)).toEqual({
      now: false,
      reason: 'no state signal; its pane printed 5s ago (waits for 30s of quiet)',
    });
  });

  it('max_defer_seconds: deferred long enough, it happens anyway and says since when', () => {
    const settings: RestartSettings = { ...DEFAULT_RESTART, maxDeferSeconds: 3600 };
    const deferred = observedBuilder().build();
    deferred.state.restartPending = { a1: NOW_MS - 3_600_000 };
    const d = restartDecision(a1, status(st('busy', 4000)), settings, deferred);
    expect(d.now).toBe(true);
    expect(d.now && d.note).toContain('past max_defer 3600s: busy for 4000s');
    deferred.state.restartPending = { a1: NOW_MS - 60_000 };
    expect(restartDecision(a1, status(st('busy', 60)), settings, deferred).now).toBe(false);
  });
});
