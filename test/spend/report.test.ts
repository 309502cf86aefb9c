import { describe, expect, it } from 'vitest';
import { HOUR_MS, DAY_MS, type LedgerEntry } from '../../src/spend/ledger.js';
import { costOf, spendReport, windowTotals } from '../../src/spend/report.js';
import { renderSpendJson, renderSpendTable } from '../../src/render/spend.js';
import { zeroTokens } from '../../src/spend/usage.js';

const NOW = Date.parse('2026-12-07T12:30:00.000Z');
function entry(agent: string, model: string, agoMs: number, input: number, output = 0): LedgerEntry {
  return {
    agent,
    runtime: agent.startsWith('cc') ? 'claude' : 'pi',
    model,
    at: Math.floor((NOW - agoMs) / HOUR_MS) * HOUR_MS,
    span: 'h',
    tokens: { ...zeroTokens(), input, output },
  };
}
const ENTRIES = [
  entry('cc0', 'sonnet', 0, 1_000_000, 100_000),
  entry('cc0', 'sonnet', 3 * HOUR_MS, 1000),
  entry('cc0', 'sonnet', 2 * DAY_MS, 5),
  entry('pi0', 'local/m', HOUR_MS, 7),
];
const AGENTS = [
  { name: 'cc0', runtime: 'claude', tenant: 'acme' },
  { name: 'pi0', runtime: 'pi', tenant: null },
  { name: 'idle', runtime: 'pi', tenant: null },
];
const PRICING = { sonnet: { input: 3, output: 15, cache_read: 0.3, cache_write: 3.75 } };

describe('spend report', () => {
  it('sums the window per agent; USD only where every model used is priced', () => {
    const r = spendReport({
      entries: ENTRIES,
      agents: AGENTS,
      pricing: PRICING,
      nowMs: NOW,
      window: '1d',
      by: 'agent',
      only: [],
    });
    expect(r.agents.map((a) => [a.name, a.tokens.total, a.usd])).toEqual([
      ['cc0', 1_101_000, 4.503],
      ['idle', 0, 0],
      ['pi0', 7, null],
    ]);
    expect(r.total.usd).toBeNull();
    expect(r.total.tokens.total).toBe(1_101_007);
    const all = spendReport({
      entries: ENTRIES,
      agents: AGENTS,
      pricing: PRICING,
      nowMs: NOW,
      window: 'all',
      by: 'tenant',
      only: ['cc0'],
    });
    expect(all.agents.map((a) => a.name)).toEqual(['cc0']);
    expect(all.groups.map((g) => [g.key, g.tokens.total])).toEqual([['acme', 1_101_005]]);
  });

  it('renders a table with totals and the documented JSON', () => {
    const r = spendReport({
      entries: ENTRIES,
      agents: AGENTS,
      pricing: PRICING,
      nowMs: NOW,
      window: '5h',
      by: 'agent',
      only: [],
    });
    expect(renderSpendTable(r)).toMatchInlineSnapshot(`
      "Spend over the last 5h (since 2026-12-07T07:30Z), tokens by kind; USD where priced.
      AGENT  RUNTIME  TENANT    INPUT  CACHE-READ  CACHE-WRITE  OUTPUT  REASONING    TOTAL    USD
      cc0    claude   acme    1001000           0            0  100000          0  1101000  $4.50
      idle   pi       -             0           0            0       0          0        0  $0.00
      pi0    pi       -             7           0            0       0          0        7      -
      TOTAL                   1001007           0            0  100000          0  1101007      -
      "
    `);
    const doc = JSON.parse(renderSpendJson(r)) as Record<string, unknown>;
    expect(Object.keys(doc)).toEqual(['format_version', 'window', 'since', 'by', 'agents', 'total']);
    expect((doc.agents as unknown[])[0]).toEqual({
      name: 'cc0',
      runtime: 'claude',
      tenant: 'acme',
      tokens: {
        input: 1_001_000,
        cache_read: 0,
        cache_write: 0,
        output: 100_000,
        reasoning: 0,
        total: 1_101_000,
      },
      usd: 4.503,
      budget: null,
    });
  });

  it('ps totals; a price makes reasoning cost as output (it is inside output)', () => {
    expect(windowTotals(ENTRIES, NOW, '5h')).toEqual({ cc0: 1_101_000, pi0: 7 });
    expect(costOf({ ...zeroTokens(), output: 1e6, reasoning: 5e5 }, PRICING.sonnet)).toBe(15);
  });
});
