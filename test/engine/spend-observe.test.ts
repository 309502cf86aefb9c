/**
 * What budgets are judged on: the ledger's hourly entries of the last 7 days (and the hour that starts in), summed
 * per agent and hour across models, with dollars only where every model is priced; nothing at all without budgets.
 */
import { describe, expect, it } from 'vitest';
import { hasBudgets, spendBuckets } from '../../src/engine/spend-observe.js';
import type { LedgerEntry } from '../../src/spend/ledger.js';
import { budgetCell } from '../../src/render/spend.js';
import { agent, fleet, NOW_MS } from '../helpers/builders.js';

const HOUR = 3_600_000;
const tokens = (input: number, output = 0) => ({
  input,
  cache_read: 0,
  cache_write: 0,
  output,
  reasoning: 0,
});
const entry = (agentName: string, model: string, hoursAgo: number, t = tokens(100)): LedgerEntry => ({
  agent: agentName,
  runtime: 'claude',
  model,
  at: NOW_MS - hoursAgo * HOUR,
  span: 'h',
  tokens: t,
});

describe('spendBuckets', () => {
  it('sums models per hour, prices where it can, and leaves out what no window reaches', () => {
    const desired = fleet([agent('a1')], {
      pricing: { priced: { input: 1, output: 2, cache_read: 0, cache_write: 0 } },
    });
    const s = spendBuckets(
      [
        entry('a1', 'priced', 1, tokens(1_000_000, 500_000)),
        entry('a1', 'priced', 1, tokens(1_000_000)),
        entry('a1', 'unpriced', 2),
        entry('a1', 'priced', 7 * 24 + 2),
        { ...entry('a1', 'priced', 40 * 24), span: 'd' },
      ],
      desired,
      NOW_MS,
    );
    expect(s.agents.a1).toEqual([
      { at: NOW_MS - 2 * HOUR, tokens: 100, usd: null },
      { at: NOW_MS - HOUR, tokens: 2_500_000, usd: 3 },
    ]);
  });

  it('only a fleet with a budget (its own, a default or a tenant one) reads the ledger', () => {
    expect(hasBudgets(fleet([agent('a1')]))).toBe(false);
    const budget = {
      window: '5h' as const,
      tokens: 1,
      usd: null,
      resetAt: null,
      onExceed: 'warn' as const,
      fallbackModel: null,
      source: { file: 'r.yaml', line: 1, col: 1 },
    };
    expect(hasBudgets(fleet([agent('a1', { budget })]))).toBe(true);
    expect(hasBudgets(fleet([agent('a1')], { tenantBudgets: { t: budget } }))).toBe(true);
  });
});

describe('the BUDGET cell of fleet spend', () => {
  it('says the share used, the limit, the pace and the state', () => {
    expect(budgetCell(null)).toBe('-');
    expect(
      budgetCell({
        window: '5h',
        tokens: 100_000,
        usd: null,
        used_pct: 45,
        pace: 1.25,
        state: 'ok',
        detail: '',
      }),
    ).toBe('45% of 100k tokens/5h, pace 1.3x');
    expect(
      budgetCell({
        window: '1d',
        tokens: null,
        usd: 20,
        used_pct: 150,
        pace: null,
        state: 'paused',
        detail: '',
      }),
    ).toBe('PAUSED 150% of $20/1d');
  });
});
