/** Respawns: why a pane must come back, the back-off, and whether a drifted pane is the agent itself. */
import { describe, expect, it } from 'vitest';
import {
  backoffOver,
  decideRespawn,
  respawnReason,
  runsStartedProgram,
} from '../../../src/plan/deciders/respawn.js';
import { agentStatus } from '../../../src/plan/health.js';
import { DEFAULT_BACKOFF } from '../../../src/model/plan.js';
import { agent, fleet, NOW_MS, observedBuilder, SOCKET } from '../../helpers/builders.js';
import { converge, startedEnviron } from '../../helpers/planning.js';

const a1 = agent('a1');
const desired = fleet([a1]);

describe('respawnReason', () => {
  it('missing, dead, drifted; stale only when asked for and the runtime heartbeats', () => {
    const missing = agentStatus(a1, observedBuilder().noServer(SOCKET).build());
    expect(respawnReason(a1, missing, true)).toBe('session a1 is missing');
    const dead = agentStatus(a1, observedBuilder().session(SOCKET, 'a1', { dead: true }).build());
    expect(respawnReason(a1, dead, true)).toBe('pane of a1 is dead');
    const drift = agentStatus(
      a1,
      observedBuilder()
        .session(SOCKET, 'a1', { argv: ['vim'] })
        .build(),
    );
    expect(respawnReason(a1, drift, true)).toBe("pane runs 'vim', the roster says 'pi'");
    const stale = observedBuilder().healthyAgent(a1).heartbeat('a1', 600).build();
    expect(respawnReason(a1, agentStatus(a1, stale), true)).toBe('heartbeat is stale');
    expect(respawnReason(a1, agentStatus(a1, stale), false)).toBeNull();
  });
});

describe('decideRespawn', () => {
  const status = agentStatus(a1, observedBuilder().session(SOCKET, 'a1', { dead: true }).build());
  it('first attempt, a due later one, and one still in its gap', () => {
    expect(decideRespawn(a1, status, 'why', undefined, NOW_MS)).toMatchObject({
      kind: 'respawn',
      action: { attempt: 1, reason: 'why' },
    });
    const entry = { attempts: 3, lastAttemptMs: NOW_MS - 1000, nextAttemptMs: NOW_MS + 1000 };
    expect(decideRespawn(a1, status, 'why', entry, NOW_MS)).toEqual({
      kind: 'deferred',
      entry: { agent: 'a1', reason: 'why', attempts: 3, nextAttemptMs: NOW_MS + 1000 },
    });
    expect(decideRespawn(a1, status, 'why', entry, NOW_MS + 1000)).toMatchObject({
      action: { attempt: 4, reason: 'why (attempt 4)' },
    });
  });

  it('backoffOver: healthy for the reset period since the last attempt', () => {
    const entry = {
      attempts: 1,
      lastAttemptMs: NOW_MS - DEFAULT_BACKOFF.resetAfterMs,
      nextAttemptMs: NOW_MS,
    };
    expect(backoffOver(entry, DEFAULT_BACKOFF, NOW_MS)).toBe(true);
    expect(backoffOver(entry, DEFAULT_BACKOFF, NOW_MS - 1)).toBe(false);
    expect(backoffOver(undefined, DEFAULT_BACKOFF, NOW_MS)).toBe(false);
  });
});

describe('runsStartedProgram', () => {
  const o = converge(desired, observedBuilder().build());

  it('the program the fleet started there: the agent itself, whatever the roster now says', () => {
    expect(runsStartedProgram(a1, desired, o)).toBe(true);
    expect(runsStartedProgram({ ...a1, runtime: 'codex' }, desired, o)).toBe(true);
  });

  it('another program in the pane, or an environment that cannot be read: not the agent', () => {
    const env = startedEnviron(o, 'a1');
    const b = observedBuilder(o)
      .withoutSession(SOCKET, 'a1')
      .session(SOCKET, 'a1', { argv: ['sleep', '9'] });
    const pane = b.o.tmux.sockets[SOCKET]?.panes[0];
    if (pane !== undefined) pane.environ = env;
    expect(runsStartedProgram(a1, desired, b.build())).toBe(false);
    const unread = observedBuilder(o).build();
    for (const p of unread.tmux.sockets[SOCKET]?.panes ?? []) p.environ = null;
    expect(runsStartedProgram(a1, desired, unread)).toBe(false);
  });
});
