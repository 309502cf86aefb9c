/**
 * Budgets judged (docs/spend.md, "Budgets"): each agent's own budget and its tenant's against the ledger's hourly
 * buckets in `observed.spend`, over a rolling window (the last 5h/1d/7d, counted by the hour as `fleet spend`
 * counts) or a fixed one (`reset_at`). Pure; read by the budgets decider, `fleet ps`, `fleet spend`, `fleet send`
 * and the alerts' `over-budget` condition, so all of them say the same.
 */
import type { Budget, BudgetAction, BudgetWindow, DesiredAgent, DesiredFleet } from '../../model/desired.js';
import type { Observed, SpendBucket } from '../../model/observed.js';

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
/** Fixed windows are counted from Monday 1970-01-05 at `reset_at` (UTC): 7d windows start on Mondays. */
const FIXED_ANCHOR_MS = 4 * DAY_MS;

export function budgetWindowMs(w: BudgetWindow): number {
  switch (w) {
    case '5h':
      return 5 * HOUR_MS;
    case '1d':
      return DAY_MS;
    case '7d':
      return 7 * DAY_MS;
    default: {
      const never: never = w;
      return never;
    }
  }
}

/** One budget judged for one agent. */
export interface BudgetJudgment {
  agent: string;
  /** Whose budget: the agent's own, or its tenant's. */
  owner: { kind: 'agent' } | { kind: 'tenant'; tenant: string };
  budget: Budget;
  used: { tokens: number; usd: number | null };
  windowStartMs: number;
  over: boolean;
  /** When the window has room again (no new spend assumed); null when not over. */
  roomAtMs: number | null;
  /** Share of the budget used ÷ share of the window elapsed (> 1: ahead of an even spread); null when unknown. */
  pace: number | null;
  /** Share of the budget used, in percent (the larger of tokens and usd). */
  usedPct: number;
  /** `123,456 of 100,000 tokens in 5h` (and/or the dollars). */
  figures: string;
}

/** Every budget that applies to each agent (own first, then its tenant's), judged. Only agents with one appear. */
export function judgeBudgets(
  desired: DesiredFleet,
  observed: Pick<Observed, 'nowMs' | 'spend'>,
): Record<string, BudgetJudgment[]> {
  const out: Record<string, BudgetJudgment[]> = {};
  const spend = observed.spend?.agents ?? {};
  const tenantJudged = new Map<string, Omit<BudgetJudgment, 'agent'>>();
  for (const [tenant, budget] of Object.entries(desired.tenantBudgets ?? {})) {
    const members = desired.agents.filter((a) => a.tenantId === tenant);
    const buckets = members.flatMap((a) => spend[a.name] ?? []).sort((x, y) => x.at - y.at);
    tenantJudged.set(tenant, judge(budget, buckets, observed.nowMs, { kind: 'tenant', tenant }));
  }
  for (const agent of desired.agents) {
    const list: BudgetJudgment[] = [];
    if (agent.budget != null)
      list.push({
        agent: agent.name,
        ...judge(agent.budget, spend[agent.name] ?? [], observed.nowMs, { kind: 'agent' }),
      });
    const t = agent.tenantId === null ? undefined : tenantJudged.get(agent.tenantId);
    if (t !== undefined) list.push({ agent: agent.name, ...t });
    if (list.length > 0) out[agent.name] = list;
  }
  return out;
}

function judge(
  budget: Budget,
  buckets: readonly SpendBucket[],
  nowMs: number,
  owner: BudgetJudgment['owner'],
): Omit<BudgetJudgment, 'agent'> {
  const win = budgetWindowMs(budget.window);
  const start = budget.resetAt === null ? nowMs - win : fixedStart(budget.resetAt, win, nowMs);
  const inWin = buckets.filter((b) => b.at >= hourOf(start) && b.at <= nowMs);
  const used = sumOf(inWin);
  const over = exceeds(used, budget);
  const roomAtMs = !over ? null : budget.resetAt !== null ? start + win : rollingRoom(inWin, budget, win);
  // A rolling window is as old as its oldest spend in it; a fixed one as old as its start.
  const firstAt = inWin[0]?.at;
  const elapsed =
    budget.resetAt !== null ? nowMs - start : firstAt === undefined ? 0 : Math.min(win, nowMs - firstAt);
  const share = usedShare(used, budget);
  const pace = elapsed <= 0 ? null : Math.round((share / (elapsed / win)) * 100) / 100;
  return {
    owner,
    budget,
    used,
    windowStartMs: start,
    over,
    roomAtMs,
    pace,
    usedPct: Math.round(share * 1000) / 10,
    figures: figures(used, budget, owner),
  };
}

function hourOf(ms: number): number {
  return Math.floor(ms / HOUR_MS) * HOUR_MS;
}

/** The start of the fixed window `nowMs` is in: `HH:MM` UTC on the anchor day, then every window length. */
export function fixedStart(resetAt: string, win: number, nowMs: number): number {
  const [h, m] = resetAt.split(':').map(Number);
  const anchor = FIXED_ANCHOR_MS + ((h ?? 0) * 60 + (m ?? 0)) * 60_000;
  return anchor + Math.floor((nowMs - anchor) / win) * win;
}

function sumOf(buckets: readonly SpendBucket[]): { tokens: number; usd: number | null } {
  let tokens = 0;
  let usd: number | null = 0;
  for (const b of buckets) {
    tokens += b.tokens;
    usd = usd === null || b.usd === null ? null : usd + b.usd;
  }
  return { tokens, usd: usd === null ? null : Math.round(usd * 1e6) / 1e6 };
}

/** Used up: at or past a limit (a dollar limit is judged only when every model used is priced). */
function exceeds(used: { tokens: number; usd: number | null }, b: Budget): boolean {
  return (
    (b.tokens !== null && used.tokens >= b.tokens) ||
    (b.usd !== null && used.usd !== null && used.usd >= b.usd)
  );
}

function usedShare(used: { tokens: number; usd: number | null }, b: Budget): number {
  const t = b.tokens === null ? 0 : used.tokens / b.tokens;
  const d = b.usd === null || used.usd === null ? 0 : used.usd / b.usd;
  return Math.max(t, d);
}

/** A rolling window has room once enough of its oldest hours have left it (an hour leaves a window after it). */
function rollingRoom(inWin: readonly SpendBucket[], b: Budget, win: number): number | null {
  let left = sumOf(inWin);
  for (const bucket of inWin) {
    left = {
      tokens: left.tokens - bucket.tokens,
      usd: left.usd === null || bucket.usd === null ? null : left.usd - bucket.usd,
    };
    if (!exceeds(left, b)) return bucket.at + HOUR_MS + win;
  }
  return null;
}

function figures(
  used: { tokens: number; usd: number | null },
  b: Budget,
  owner: BudgetJudgment['owner'],
): string {
  const parts: string[] = [];
  if (b.tokens !== null) parts.push(`${fmt(used.tokens)} of ${fmt(b.tokens)} tokens`);
  if (b.usd !== null) parts.push(`$${used.usd === null ? '?' : used.usd.toFixed(2)} of $${b.usd.toFixed(2)}`);
  const whose = owner.kind === 'tenant' ? ` (tenant ${owner.tenant})` : '';
  return `${parts.join(', ')} in ${b.window}${whose}`;
}

function fmt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

/** `HH:MM` UTC (with the date when it is not within the next day). */
export function clockOf(ms: number, nowMs: number): string {
  const iso = new Date(ms).toISOString();
  return ms - nowMs < DAY_MS ? iso.slice(11, 16) : `${iso.slice(0, 10)} ${iso.slice(11, 16)}`;
}

const SEVERITY: Record<BudgetAction, number> = { warn: 0, downgrade: 1, pause: 2 };

/** Of the budgets an agent is over, the one whose action goes furthest (pause, then downgrade, then warn). */
export function worstOver(list: readonly BudgetJudgment[] | undefined): BudgetJudgment | null {
  let worst: BudgetJudgment | null = null;
  for (const j of list ?? []) {
    if (j.over && (worst === null || SEVERITY[j.budget.onExceed] > SEVERITY[worst.budget.onExceed]))
      worst = j;
  }
  return worst;
}

/** The agent's budget line for the plan and `ps`: `over budget (123,456 of 100,000 tokens in 5h; room again at 14:05)`. */
export function overText(j: BudgetJudgment, nowMs: number): string {
  const room = j.roomAtMs === null ? '' : `; room again at ${clockOf(j.roomAtMs, nowMs)}`;
  return `over budget (${j.figures}${room})`;
}

/** Whether an agent's budget would pause it now: the reason, or null. */
export function pausedBy(
  agent: DesiredAgent,
  judged: Record<string, BudgetJudgment[]>,
  nowMs: number,
): string | null {
  const w = worstOver(judged[agent.name]);
  return w !== null && w.budget.onExceed === 'pause' ? `paused: ${overText(w, nowMs)}` : null;
}

/** One agent's budget as `fleet ps`, `fleet spend --json` and `fleet send` show it. */
export interface BudgetSummary {
  window: BudgetWindow;
  tokens: number | null;
  usd: number | null;
  used_pct: number;
  /** Used share ÷ elapsed share of the window (> 1: ahead of an even spread); null when nothing is known yet. */
  pace: number | null;
  /** `paused`: over a pausing budget and stopped; `over`: over (warned, downgraded, or its pause waiting for idle). */
  state: 'ok' | 'over' | 'paused';
  /** The reason line: `paused: over budget (…)`, `over budget (…)`, or the figures. */
  detail: string;
}

/** The budget that says most about the agent: the worst one it is over, else the fullest. Null without one. */
export function budgetSummary(
  list: readonly BudgetJudgment[] | undefined,
  running: boolean,
  nowMs: number,
): BudgetSummary | null {
  const worst = worstOver(list);
  const shown = worst ?? [...(list ?? [])].sort((a, b) => b.usedPct - a.usedPct)[0] ?? null;
  if (shown === null) return null;
  const paused = worst !== null && worst.budget.onExceed === 'pause' && !running;
  const state = paused ? 'paused' : worst !== null ? 'over' : 'ok';
  const detail = worst === null ? shown.figures : `${paused ? 'paused: ' : ''}${overText(worst, nowMs)}`;
  return {
    window: shown.budget.window,
    tokens: shown.budget.tokens,
    usd: shown.budget.usd,
    used_pct: shown.usedPct,
    pace: shown.pace,
    state,
    detail,
  };
}

/** `pace 1.4x` for a table: how far ahead of (or behind) an even spread over the window. */
export function paceText(pace: number | null): string {
  return pace === null ? '' : `pace ${pace.toFixed(1)}x`;
}
