/**
 * `fleet spend` rendered: a table with totals, or the JSON document (docs/spend.md). Pure.
 */
import { paceText, type BudgetSummary } from '../plan/deciders/budget-judge.js';
import { SPEND_FORMAT_VERSION, type AgentSpend, type SpendReport, type SpendRow } from '../spend/report.js';

/** Tokens compactly for tables: 1234 → 1.2k, 5600000 → 5.6M. */
export function shortTokens(n: number): string {
  if (n < 1000) return String(n);
  if (n < 1e6) return `${(n / 1e3).toFixed(n < 1e4 ? 1 : 0)}k`;
  if (n < 1e9) return `${(n / 1e6).toFixed(n < 1e7 ? 1 : 0)}M`;
  return `${(n / 1e9).toFixed(1)}G`;
}

function usd(v: number | null): string {
  return v === null ? '-' : `$${v.toFixed(2)}`;
}

function cells(r: SpendRow): string[] {
  const t = r.tokens;
  return [t.input, t.cache_read, t.cache_write, t.output, t.reasoning, t.total]
    .map(String)
    .concat(usd(r.usd));
}

function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows
    .map((r) =>
      r
        .map((c, i) =>
          i === 0 || (i < 3 && r.length > 8) ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0),
        )
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

const KINDS = ['INPUT', 'CACHE-READ', 'CACHE-WRITE', 'OUTPUT', 'REASONING', 'TOTAL', 'USD'];

export function renderSpendTable(r: SpendReport): string {
  const since = r.sinceMs === null ? 'all time' : `since ${new Date(r.sinceMs).toISOString().slice(0, 16)}Z`;
  const head = `Spend over ${r.window === 'all' ? 'all recorded time' : `the last ${r.window}`} (${since}), tokens by kind; USD where priced.`;
  let rows: string[][];
  if (r.by === 'agent') {
    // The BUDGET column only when some agent has a budget.
    const budgets = r.agents.some((a) => a.budget !== null);
    const extra = (a: AgentSpend): string[] => (budgets ? [budgetCell(a.budget)] : []);
    rows = [
      ['AGENT', 'RUNTIME', 'TENANT', ...KINDS, ...(budgets ? ['BUDGET'] : [])],
      ...r.agents.map((a) => [a.name, a.runtime, a.tenant ?? '-', ...cells(a), ...extra(a)]),
      ['TOTAL', '', '', ...cells(r.total)],
    ];
  } else {
    rows = [
      [r.by.toUpperCase(), ...KINDS],
      ...r.groups.map((g) => [g.key === '' ? '(none)' : g.key, ...cells(g)]),
      ['TOTAL', ...cells(r.total)],
    ];
  }
  return `${head}\n${table(rows)}\n`;
}

/** `45% of 100,000 tokens/5h, pace 1.2x`, `OVER 123% …`, `PAUSED 123% …`; `-` without a budget. */
export function budgetCell(b: BudgetSummary | null): string {
  if (b === null) return '-';
  const limit = [
    b.tokens === null ? null : `${shortTokens(b.tokens)} tokens`,
    b.usd === null ? null : `$${b.usd}`,
  ]
    .filter((x) => x !== null)
    .join(' + ');
  const state = b.state === 'ok' ? '' : `${b.state === 'paused' ? 'PAUSED' : 'OVER-BUDGET'} `;
  const pace = paceText(b.pace);
  return `${state}${b.used_pct}% of ${limit}/${b.window}${pace === '' ? '' : `, ${pace}`}`;
}

export function renderSpendJson(r: SpendReport): string {
  const doc = {
    format_version: SPEND_FORMAT_VERSION,
    window: r.window,
    since: r.sinceMs === null ? null : new Date(r.sinceMs).toISOString(),
    by: r.by,
    agents: r.agents.map((a) => ({
      name: a.name,
      runtime: a.runtime,
      tenant: a.tenant,
      tokens: a.tokens,
      usd: a.usd,
      budget: a.budget,
    })),
    ...(r.by === 'agent'
      ? {}
      : { groups: r.groups.map((g) => ({ key: g.key, tokens: g.tokens, usd: g.usd })) }),
    total: { tokens: r.total.tokens, usd: r.total.usd },
  };
  return `${JSON.stringify(doc, null, 2)}\n`;
}
