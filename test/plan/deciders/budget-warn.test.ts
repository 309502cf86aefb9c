/** A `warn` budget is journaled once per window (docs/spend.md, "The ladder"), not on every run. */
import { describe, expect, it } from 'vitest';
import type { Budget, DesiredAgent } from '../../../src/model/desired.js';
import type { SpendBucket } from '../../../src/model/observed.js';
import { judgeBudgets } from '../../../src/plan/deciders/budget-judge.js';
import { budgetWarnsDue } from '../../../src/plan/deciders/budget-warn.js';
import { agent, fleet, NOW_MS } from '../../helpers/builders.js';

const HOUR = 3_600_000;
const MIN = 60_000;

function budget(over: Partial<Budget> = {}): Budget {
  return {
    window: '5h',
    tokens: 1000,
    usd: null,
    resetAt: null,
    onExceed: 'warn',
    fallbackModel: null,
    source: { file: 'roster.yaml', line: 3, col: 5 },
    ...over,
  };
}

/** Judged at `nowMs`, with `tokens` spent per agent in the hour `hoursAgo` before NOW_MS. */
function judged(
  agents: DesiredAgent[],
  spend: Record<string, [hoursAgo: number, tokens: number]>,
  nowMs = NOW_MS,
) {
  const buckets: Record<string, SpendBucket[]> = {};
  for (const [name, [ago, tokens]] of Object.entries(spend))
    buckets[name] = [{ at: NOW_MS - ago * HOUR, tokens, usd: null }];
  return judgeBudgets(fleet(agents), { nowMs, spend: { agents: buckets } });
}

describe('budgetWarnsDue', () => {
  const a1 = agent('a1', { budget: budget() });

  it('over a warn budget: due once, then not again in the same window', () => {
    const first = budgetWarnsDue(judged([a1], { a1: [0, 1500] }), undefined, NOW_MS);
    expect(first).toEqual({
      due: [{ agent: 'a1', reason: 'over budget (1,500 of 1,000 tokens in 5h; room again at 14:00)' }],
      warned: { a1: NOW_MS },
    });
    for (const later of [1, 10, 60, 299].map((m) => NOW_MS + m * MIN)) {
      const next = budgetWarnsDue(judged([a1], { a1: [0, 1500] }, later), first.warned, later);
      expect(next).toEqual({ due: [], warned: { a1: NOW_MS } });
    }
  });

  it('a rolling window: due again once a whole window has passed since the last entry, still over', () => {
    const spentNow: Record<string, [number, number]> = { a1: [0, 1500] };
    const warned = { a1: NOW_MS - 5 * HOUR - 1 };
    expect(budgetWarnsDue(judged([a1], spentNow), warned, NOW_MS).due.map((d) => d.agent)).toEqual(['a1']);
    expect(budgetWarnsDue(judged([a1], spentNow), { a1: NOW_MS - 5 * HOUR }, NOW_MS).due).toEqual([]);
  });

  it('a fixed window: once per window, from its start', () => {
    // NOW_MS is 08:00 UTC: the 1d window from 06:00 started two hours ago.
    const daily = agent('a1', { budget: budget({ window: '1d', resetAt: '06:00' }) });
    const spend: Record<string, [number, number]> = { a1: [1, 1500] };
    expect(budgetWarnsDue(judged([daily], spend), { a1: NOW_MS - 2 * HOUR }, NOW_MS).due).toEqual([]);
    expect(
      budgetWarnsDue(judged([daily], spend), { a1: NOW_MS - 2 * HOUR - 1 }, NOW_MS).due.map((d) => d.agent),
    ).toEqual(['a1']);
  });

  it('pause and downgrade are journaled as their actions, and an agent under its budget is not due', () => {
    const agents = [
      agent('p', { budget: budget({ onExceed: 'pause' }) }),
      agent('d', { budget: budget({ onExceed: 'downgrade', fallbackModel: 'small' }) }),
      agent('u', { budget: budget() }),
    ];
    const r = budgetWarnsDue(judged(agents, { p: [0, 1500], d: [0, 1500], u: [0, 999] }), undefined, NOW_MS);
    expect(r).toEqual({ due: [], warned: {} });
  });

  it('records are kept while they can suppress an entry, and dropped for agents without a budget', () => {
    const agents = [a1, agent('a2', { budget: budget({ window: '7d' }) }), agent('gone')];
    const warned = { a1: NOW_MS - HOUR, a2: NOW_MS - 8 * 24 * HOUR, gone: NOW_MS - HOUR, removed: NOW_MS };
    // a1 is under its budget now: its record stays (over again within the window: not journaled twice).
    expect(budgetWarnsDue(judged(agents, { a1: [0, 10] }), warned, NOW_MS)).toEqual({
      due: [],
      warned: { a1: NOW_MS - HOUR },
    });
  });
});
