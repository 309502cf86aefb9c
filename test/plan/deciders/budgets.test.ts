/**
 * Budgets: judged over the ledger's hourly buckets (rolling and fixed windows, an agent's own and its tenant's),
 * and the ladder each step of which the plan takes: warn, downgrade (a restart by the policy, into the fallback
 * model), pause (a stop at the idle boundary only; kept stopped until the window has room, then started).
 */
import { describe, expect, it } from 'vitest';
import type { Budget, DesiredAgent, DesiredFleet } from '../../../src/model/desired.js';
import type { Observed, SpendBucket } from '../../../src/model/observed.js';
import { agentUnitName } from '../../../src/base/names.js';
import { fixedStart, judgeBudgets } from '../../../src/plan/deciders/budget-judge.js';
import { decideBudgets } from '../../../src/plan/deciders/budgets.js';
import { agent, fleet, NOW_MS, NOW_SEC, observedBuilder, SOCKET } from '../../helpers/builders.js';
import { converge, lines, planFor, planInputFor } from '../../helpers/planning.js';

const HOUR = 3_600_000;

function budget(over: Partial<Budget> = {}): Budget {
  return {
    window: '5h',
    tokens: 100_000,
    usd: null,
    resetAt: null,
    onExceed: 'warn',
    fallbackModel: null,
    source: { file: 'roster.yaml', line: 3, col: 5 },
    ...over,
  };
}

/** A converged fleet of `agents` with `spend` (tokens per agent, in buckets hours ago). */
function world(
  agents: DesiredAgent[],
  spend: Record<string, [hoursAgo: number, tokens: number][]>,
  over: Partial<DesiredFleet> = {},
): { desired: DesiredFleet; observed: Observed } {
  const desired = fleet(agents, over);
  const observed = converge(
    fleet(
      agents.map((a) => ({ ...a, budget: null })),
      over,
    ),
    observedBuilder().build(),
  );
  observed.spend = { agents: {} };
  for (const [name, list] of Object.entries(spend)) {
    observed.spend.agents[name] = list
      .map(([ago, tokens]): SpendBucket => ({ at: NOW_MS - ago * HOUR, tokens, usd: null }))
      .sort((a, b) => a.at - b.at);
  }
  return { desired, observed };
}

/** The agent's pane last printed `seconds` ago (a plain runtime: the pane's quiet is its idle signal). */
function quietFor(o: Observed, name: string, seconds: number): Observed {
  for (const p of o.tmux.sockets[SOCKET]?.panes ?? []) if (p.session === name) p.activity = NOW_SEC - seconds;
  return o;
}

function stopped(o: Observed, name: string): Observed {
  const b = observedBuilder(o).withoutSession(SOCKET, name).unit(agentUnitName(name), { active: 'inactive' });
  return b.build();
}

describe('judgeBudgets', () => {
  it.each([
    // [case, window, reset_at, buckets (hours ago, tokens), used, over, room again (hours from now)]
    [
      'rolling 5h counts the last five hours',
      '5h',
      null,
      [
        [6, 500_000],
        [4, 80_000],
        [1, 30_000],
      ],
      110_000,
      true,
      2,
    ],
    ['rolling: under the limit is not over', '5h', null, [[3, 99_999]], 99_999, false, null],
    ['rolling: at the limit is used up', '1d', null, [[20, 100_000]], 100_000, true, 5],
    [
      'fixed 1d from 06:00: the window started two hours ago',
      '1d',
      '06:00',
      [
        [3, 90_000],
        [1, 100_000],
      ],
      100_000,
      true,
      22,
    ],
    [
      'fixed 1d from 09:00: yesterday 09:00 on',
      '1d',
      '09:00',
      [
        [24, 90_000],
        [22, 100_000],
      ],
      100_000,
      true,
      1,
    ],
  ] as const)('%s', (_case, window, resetAt, buckets, used, over, roomIn) => {
    const a = agent('a1', { budget: budget({ window, resetAt }) });
    const { desired, observed } = world([a], { a1: buckets.map(([h, t]) => [h, t]) });
    const [j] = judgeBudgets(desired, observed).a1 ?? [];
    expect(j?.used.tokens).toBe(used);
    expect(j?.over).toBe(over);
    expect(j?.roomAtMs).toBe(roomIn === null ? null : NOW_MS + roomIn * HOUR);
  });

  it('fixed windows start at reset_at and every window length from it (7d: on Mondays)', () => {
    // NOW is Friday 2027-01-15 08:00 UTC.
    expect(new Date(fixedStart('06:00', 7 * 24 * HOUR, NOW_MS)).toISOString()).toBe(
      '2027-01-11T06:00:00.000Z',
    );
    expect(new Date(fixedStart('08:00', 24 * HOUR, NOW_MS)).toISOString()).toBe('2027-01-15T08:00:00.000Z');
  });

  it('pace: the share of the budget used against the share of the window elapsed', () => {
    const a = agent('a1', { budget: budget({ window: '1d', resetAt: '02:00' }) });
    // 6 of 24 hours elapsed, 50% used: twice as fast as an even spread.
    const { desired, observed } = world([a], { a1: [[2, 50_000]] });
    const [j] = judgeBudgets(desired, observed).a1 ?? [];
    expect(j?.pace).toBe(2);
    expect(j?.usedPct).toBe(50);
  });

  it('a tenant budget sums its agents and judges each of them', () => {
    const t = { tenantId: 'acme' };
    const { desired, observed } = world(
      [agent('a1', t), agent('a2', t), agent('b1')],
      { a1: [[1, 60_000]], a2: [[2, 50_000]], b1: [[1, 900_000]] },
      { tenantBudgets: { acme: budget({ onExceed: 'pause' }) } },
    );
    const judged = judgeBudgets(desired, observed);
    expect(judged.a1?.[0]?.figures).toBe('110,000 of 100,000 tokens in 5h (tenant acme)');
    expect(judged.a2?.[0]?.over).toBe(true);
    expect(judged.b1).toBeUndefined();
  });
});

describe('the budget ladder in the plan', () => {
  const over: [number, number][] = [
    [4, 100_000],
    [1, 23_456],
  ];

  it('warn: a warning with the figures, no action', () => {
    const { desired, observed } = world([agent('a1', { budget: budget() })], { a1: over });
    const p = planFor(desired, observed);
    expect(p.actions).toEqual([]);
    expect(p.warnings).toContain(
      'a1: OVER-BUDGET: over budget (123,456 of 100,000 tokens in 5h; room again at 10:00)',
    );
  });

  it('downgrade: the fallback model reaches the env file and the restart waits for idle, saying why', () => {
    const a = agent('a1', {
      modelHint: 'big',
      budget: budget({ onExceed: 'downgrade', fallbackModel: 'small' }),
    });
    const { desired, observed } = world([a], { a1: over });
    const busy = planFor(desired, quietFor(observed, 'a1', 5));
    expect(busy.actions.map((x) => x.kind)).toEqual(['write-file']);
    expect(JSON.stringify(busy.actions[0])).toContain('MOSAIC_AGENT_MODEL=small');
    expect(busy.deferredRestarts.map((r) => r.agent)).toEqual(['a1']);
    const idle = planFor(desired, quietFor(observed, 'a1', 600));
    const restart = lines(idle).find((l) => l.kind === 'restart');
    expect(restart?.reason).toContain('downgraded from big to small');
  });

  it('pause while busy: nothing is stopped, the plan says it waits', () => {
    const { desired, observed } = world([agent('a1', { budget: budget({ onExceed: 'pause' }) })], {
      a1: over,
    });
    const p = planFor(desired, quietFor(observed, 'a1', 5));
    expect(p.actions).toEqual([]);
    expect(p.warnings.join('\n')).toContain('pauses at its next idle moment');
  });

  it('pause while idle: the unit is stopped (its own way), disruptively, with the reason', () => {
    const { desired, observed } = world([agent('a1', { budget: budget({ onExceed: 'pause' }) })], {
      a1: over,
    });
    const p = planFor(desired, quietFor(observed, 'a1', 600));
    expect(lines(p)).toEqual([
      {
        kind: 'stop',
        target: agentUnitName('a1'),
        reason: 'paused: over budget (123,456 of 100,000 tokens in 5h; room again at 10:00)',
      },
    ]);
    expect(p.actions[0]).toMatchObject({ disruptive: true });
  });

  it('paused and stopped: not started while over; started once the window has room', () => {
    const a = agent('a1', { budget: budget({ onExceed: 'pause' }) });
    const { desired, observed } = world([a], { a1: over });
    const down = stopped(observed, 'a1');
    const p = planFor(desired, down);
    expect(p.actions).toEqual([]);
    expect(p.warnings).toContain(
      'a1: paused: over budget (123,456 of 100,000 tokens in 5h; room again at 10:00)',
    );
    expect(p.notRunning).toEqual([]);
    // Three hours later the 4-hours-ago bucket has left the window.
    const later = { ...down, nowMs: NOW_MS + 3 * HOUR };
    const q = planFor(desired, later);
    const start = lines(q).find((l) => l.kind === 'start');
    expect(start?.reason).toContain('budget has room: 23,456 of 100,000 tokens in 5h');
  });

  it('the worst step wins when an agent is over its own and its tenant budget', () => {
    const a = agent('a1', { tenantId: 'acme', budget: budget() });
    const { desired, observed } = world(
      [a],
      { a1: over },
      {
        tenantBudgets: { acme: budget({ onExceed: 'pause', tokens: 1000 }) },
      },
    );
    const d = decideBudgets(planInputFor(desired, quietFor(observed, 'a1', 600)));
    expect([...d.paused]).toEqual(['a1']);
    expect(d.actions.map((x) => x.kind)).toEqual(['stop']);
  });

  it('no spend observed and no budget: the plan is what it was', () => {
    const { desired, observed } = world([agent('a1')], {});
    delete observed.spend;
    expect(planFor(desired, observed).actions).toEqual([]);
  });
});
