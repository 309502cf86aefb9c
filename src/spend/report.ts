/**
 * `fleet spend` as data: the ledger summed over a window, per agent (and grouped by agent, model, runtime or
 * tenant), with dollars where the manifest prices every model a row used. Pure.
 */
import type { ModelPrice } from '../model/desired.js';
import { budgetWindowMs, type BudgetSummary } from '../plan/deciders/budget-judge.js';
import { DAY_MS, inWindow, type LedgerEntry } from './ledger.js';
import { addTokens, totalOf, zeroTokens, type TokenCounts } from './usage.js';

export const SPEND_FORMAT_VERSION = 1;
export const WINDOWS = ['5h', '1d', '7d', '30d', 'all'] as const;
export type SpendWindow = (typeof WINDOWS)[number];
export const GROUPINGS = ['agent', 'model', 'runtime', 'tenant'] as const;
export type SpendGrouping = (typeof GROUPINGS)[number];

/** A window's length: a budget's windows as the budgets count them, and the report's own two. */
export function windowMs(w: SpendWindow): number | null {
  switch (w) {
    case '30d':
      return 30 * DAY_MS;
    case 'all':
      return null;
    case '5h':
    case '1d':
    case '7d':
      return budgetWindowMs(w);
  }
}

export interface SpendTokens extends TokenCounts {
  total: number;
}

export interface SpendRow {
  /** The agent, model, runtime or tenant ('' for none) the row sums. */
  key: string;
  tokens: SpendTokens;
  /** USD; null when a model the row used has no price. */
  usd: number | null;
}

export interface AgentSpend extends SpendRow {
  name: string;
  runtime: string;
  tenant: string | null;
  /** The agent's budget (docs/spend.md, "Budgets"); null without one. */
  budget: BudgetSummary | null;
}

export interface SpendReport {
  window: SpendWindow;
  sinceMs: number | null;
  by: SpendGrouping;
  agents: AgentSpend[];
  groups: SpendRow[];
  total: SpendRow;
}

export interface AgentInfo {
  name: string;
  runtime: string;
  tenant: string | null;
}

function withTotal(t: TokenCounts): SpendTokens {
  return { ...t, total: totalOf(t) };
}

/** Dollars for tokens of one model; null when it has no price. Reasoning is part of output, billed as output. */
export function costOf(t: TokenCounts, price: ModelPrice | undefined): number | null {
  if (price === undefined) return totalOf(t) === 0 ? 0 : null;
  return (
    (t.input * price.input +
      t.cache_read * price.cache_read +
      t.cache_write * price.cache_write +
      t.output * price.output) /
    1e6
  );
}

class Sum {
  tokens = zeroTokens();
  usd: number | null = 0;
  add(e: LedgerEntry, pricing: Record<string, ModelPrice>): void {
    this.tokens = addTokens(this.tokens, e.tokens);
    const c = costOf(e.tokens, Object.hasOwn(pricing, e.model) ? pricing[e.model] : undefined);
    this.usd = this.usd === null || c === null ? null : this.usd + c;
  }
  row(key: string): SpendRow {
    return {
      key,
      tokens: withTotal(this.tokens),
      usd: this.usd === null ? null : Math.round(this.usd * 1e6) / 1e6,
    };
  }
}

/**
 * The report: every agent the manifests name (and any the ledger still has), or only `only`; rows in name order,
 * groups in key order.
 */
export function spendReport(input: {
  entries: readonly LedgerEntry[];
  agents: readonly AgentInfo[];
  pricing: Record<string, ModelPrice>;
  nowMs: number;
  window: SpendWindow;
  by: SpendGrouping;
  only: readonly string[];
}): SpendReport {
  const span = windowMs(input.window);
  const sinceMs = span === null ? null : input.nowMs - span;
  const info = new Map(input.agents.map((a) => [a.name, a]));
  const perAgent = new Map<string, Sum>();
  const groups = new Map<string, Sum>();
  const total = new Sum();
  const wanted = (name: string) => input.only.length === 0 || input.only.includes(name);
  for (const a of input.agents) if (wanted(a.name)) perAgent.set(a.name, new Sum());
  for (const e of input.entries) {
    if (!wanted(e.agent) || !inWindow(e, sinceMs)) continue;
    if (!info.has(e.agent)) info.set(e.agent, { name: e.agent, runtime: e.runtime, tenant: null });
    const a = perAgent.get(e.agent) ?? new Sum();
    perAgent.set(e.agent, a);
    a.add(e, input.pricing);
    total.add(e, input.pricing);
    const key = groupKey(input.by, e, info.get(e.agent)?.tenant ?? null);
    const g = groups.get(key) ?? new Sum();
    groups.set(key, g);
    g.add(e, input.pricing);
  }
  const agents = [...perAgent.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, sum]) => {
      const a = info.get(name) ?? { name, runtime: '', tenant: null };
      return { ...sum.row(name), name, runtime: a.runtime, tenant: a.tenant, budget: null };
    });
  return {
    window: input.window,
    sinceMs,
    by: input.by,
    agents,
    groups: [...groups.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([k, s]) => s.row(k)),
    total: total.row('TOTAL'),
  };
}

function groupKey(by: SpendGrouping, e: LedgerEntry, tenant: string | null): string {
  switch (by) {
    case 'agent':
      return e.agent;
    case 'model':
      return e.model;
    case 'runtime':
      return e.runtime;
    case 'tenant':
      return tenant ?? '';
    default: {
      const never: never = by;
      return never;
    }
  }
}

/** Total tokens per agent over a window (the SPEND column of `fleet ps`). */
export function windowTotals(
  entries: readonly LedgerEntry[],
  nowMs: number,
  window: SpendWindow,
): Record<string, number> {
  const span = windowMs(window);
  const sinceMs = span === null ? null : nowMs - span;
  const out: Record<string, number> = {};
  for (const e of entries) if (inWindow(e, sinceMs)) out[e.agent] = (out[e.agent] ?? 0) + totalOf(e.tokens);
  return out;
}
