/**
 * The agents decider: start, restart (policy and budget), respawn (back-off), the drift rule, held starts and
 * which of them leave an agent not running. Fleets of plain runtimes (no state signal), converged in memory, then
 * broken one way at a time.
 */
import { describe, expect, it } from 'vitest';
import type { DesiredAgent, DesiredFleet, RestartSettings } from '../../../src/model/desired.js';
import type { Observed } from '../../../src/model/observed.js';
import { decideAgents, type AgentsDecision } from '../../../src/plan/deciders/agents.js';
import { decideEnvFiles } from '../../../src/plan/deciders/env.js';
import { decideFiles } from '../../../src/plan/deciders/files.js';
import { scopeOf } from '../../../src/plan/deciders/input.js';
import { actionTarget } from '../../../src/render/plan-text.js';
import { agent, fleet, NOW_MS, observedBuilder, SOCKET } from '../../helpers/builders.js';
import { converge, planInputFor, startedEnviron } from '../../helpers/planning.js';

function team(
  names: string[],
  restart: Partial<RestartSettings> = {},
  each: Partial<DesiredAgent> = {},
): DesiredFleet {
  return fleet(
    names.map((n) => agent(n, { modelHint: 'm1', ...each })),
    {
      reconcile: {
        mode: 'none',
        intervalSeconds: 120,
        restart: {
          policy: 'immediate',
          settleSeconds: 30,
          maxUnavailable: 1,
          maxDeferSeconds: null,
          ...restart,
        },
      },
    },
  );
}

function decide(desired: DesiredFleet, o: Observed): AgentsDecision {
  const input = planInputFor(desired, o);
  const scope = scopeOf(desired, o);
  return decideAgents(input, scope, {
    env: decideEnvFiles(input, scope),
    files: decideFiles(input, scope),
    madeDirs: new Set(),
  });
}

const acts = (d: AgentsDecision) => d.actions.map((a) => `${a.kind} ${actionTarget(a)}`);

/** Another program in the agent's pane, started in its session (so it has the session's environment). */
function drifted(o: Observed, name: string): Observed {
  const env = startedEnviron(o, name);
  const b = observedBuilder(o)
    .withoutSession(SOCKET, name)
    .session(SOCKET, name, { argv: ['sleep', '3600'] });
  const pane = b.o.tmux.sockets[SOCKET]?.panes.find((p) => p.session === name);
  if (pane !== undefined) pane.environ = env;
  return b.build();
}

describe('decideAgents', () => {
  it('starts every enabled agent whose unit is not running, in name order; a disabled one is not started', () => {
    const d = decide(
      fleet([agent('b'), agent('a'), agent('c', { enabled: false })]),
      observedBuilder().build(),
    );
    expect(acts(d)).toEqual(['start mosaic-agent@a.service', 'start mosaic-agent@b.service']);
    expect(d.held).toEqual([]);
    expect(d.notRunning).toEqual([]);
  });

  it('the disruption budget: one restart now, the others deferred with the budget as reason and a since', () => {
    const o = converge(team(['a1', 'a2', 'a3']), observedBuilder().build());
    const d = decide(team(['a1', 'a2', 'a3'], {}, { modelHint: 'm2' }), o);
    expect(acts(d)).toEqual(['restart mosaic-agent@a1.service']);
    expect(d.deferredRestarts.map((r) => [r.agent, r.reason])).toEqual([
      ['a2', 'disruption budget: at most 1 running agent(s) restarted per reconcile'],
      ['a3', 'disruption budget: at most 1 running agent(s) restarted per reconcile'],
    ]);
    expect(d.restartPending).toEqual({ a2: NOW_MS, a3: NOW_MS });
  });

  it('a fresh agent whose start is known to fail is held and left not running; a running one held is still running', () => {
    const fresh = observedBuilder().build();
    fresh.dirs = { '/nowhere': false };
    const d = decide(team(['a1'], {}, { workingDirectory: '/nowhere' }), fresh);
    expect(d.actions).toEqual([]);
    expect(d.notRunning).toEqual([
      { agent: 'a1', action: 'start', reason: 'working directory /nowhere does not exist' },
    ]);
    expect(d.blocked.map((b) => b.block.cause)).toEqual(['workdir']);

    const running = converge(team(['a1']), observedBuilder().build());
    running.dirs = { '/nowhere': false };
    const r = decide(team(['a1'], {}, { workingDirectory: '/nowhere' }), running);
    expect(r.held.map((h) => h.action)).toEqual(['restart']);
    expect(r.notRunning).toEqual([]);
  });

  it('a dead pane whose respawn is held leaves the agent not running', () => {
    const o = converge(team(['a1']), observedBuilder().build());
    const dead = observedBuilder(o)
      .withoutSession(SOCKET, 'a1')
      .session(SOCKET, 'a1', { dead: true })
      .build();
    dead.dirs = { '/home/op/work': false };
    const d = decide(team(['a1']), dead);
    expect(d.notRunning).toEqual([
      { agent: 'a1', action: 'respawn', reason: 'working directory /home/op/work does not exist' },
    ]);
  });

  describe('the drift rule: one outcome with or without a pending restart', () => {
    // A restart of a running agent would wait ten minutes for quiet: only the drift rule can act now.
    const slow = { policy: 'when-idle' as const, settleSeconds: 600 };

    it('drift alone: respawned at once, said to end what runs there', () => {
      const o = drifted(converge(team(['a1'], slow), observedBuilder().build()), 'a1');
      const d = decide(team(['a1'], slow), o);
      expect(acts(d)).toEqual([`respawn ${SOCKET}:a1`]);
      expect(d.actions[0]).toMatchObject({
        disruptive: true,
        reason: "pane runs 'sleep 3600', the roster says 'pi'",
      });
      expect(d.deferredRestarts).toEqual([]);
    });

    it('drift with a restart pending (its env file changes too): the same respawn, at once', () => {
      const o = drifted(converge(team(['a1'], slow), observedBuilder().build()), 'a1');
      const d = decide(team(['a1'], slow, { modelHint: 'm2' }), o);
      expect(acts(d)).toEqual([`respawn ${SOCKET}:a1`]);
      expect(d.deferredRestarts).toEqual([]);
    });

    it('a pane still running the program it was started with (the roster changed the runtime) is the agent: by the policy', () => {
      const o = converge(team(['a1'], slow), observedBuilder().build());
      const d = decide(team(['a1'], slow, { runtime: 'codex' }), o);
      expect(d.actions).toEqual([]);
      expect(d.deferredRestarts.map((r) => r.reason)).toEqual([
        'no state signal; its pane printed 5s ago (waits for 600s of quiet)',
      ]);
      expect(d.deferredRestarts[0]?.need).toContain('MOSAIC_AGENT_RUNTIME');
    });
  });

  it('back-off: a respawn waits out its gap, then counts the attempt; a healthy agent’s old record is reset', () => {
    const o = converge(team(['a1']), observedBuilder().build());
    const dead = observedBuilder(o).withoutSession(SOCKET, 'a1').session(SOCKET, 'a1', { dead: true });
    const waiting = decide(
      team(['a1']),
      dead.backoff('a1', { attempts: 2, nextAttemptMs: NOW_MS + 5_000 }).build(),
    );
    expect(waiting.actions).toEqual([]);
    expect(waiting.deferred).toEqual([
      { agent: 'a1', reason: 'pane of a1 is dead', attempts: 2, nextAttemptMs: NOW_MS + 5_000 },
    ]);
    const due = decide(team(['a1']), dead.backoff('a1', { attempts: 2, nextAttemptMs: NOW_MS - 1 }).build());
    expect(due.actions).toMatchObject([
      { kind: 'respawn', attempt: 3, reason: 'pane of a1 is dead (attempt 3)' },
    ]);
    const healthy = observedBuilder(o).backoff('a1', {
      lastAttemptMs: NOW_MS - 600_000,
      nextAttemptMs: NOW_MS - 1,
    });
    expect(decide(team(['a1']), healthy.build()).backoffResets).toEqual(['a1']);
  });
});
