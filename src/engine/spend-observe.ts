/**
 * The spend the budgets are judged on (docs/spend.md, "Budgets"): the committed ledger's hourly buckets of the
 * longest budget window (7 days, and the hour it starts in), summed per agent and hour with their dollars where
 * every model is priced, into `observed.spend` for the pure planner. Read only when some budget exists, so a
 * fleet without budgets reads no ledger.
 */
import type { DesiredFleet } from '../model/desired.js';
import type { ObservedSpend, SpendBucket } from '../model/observed.js';
import { HOUR_MS, DAY_MS, type LedgerEntry } from '../spend/ledger.js';
import { costOf } from '../spend/report.js';
import { readLedger, type SpendState } from '../spend/store.js';
import { totalOf } from '../spend/usage.js';

/** How far back budgets look: the longest window, plus the hour it starts in. */
const LOOKBACK_MS = 7 * DAY_MS + HOUR_MS;

export function hasBudgets(desired: DesiredFleet): boolean {
  return Object.keys(desired.tenantBudgets ?? {}).length > 0 || desired.agents.some((a) => a.budget != null);
}

/**
 * The spend budgets need, from the ledger; undefined when no budget exists. `metered`: the metering state this
 * run just read or committed, which names the ledger's committed length (else it is read again: with a long
 * history it is most of what a no-op reads).
 */
export function observeSpend(
  desired: DesiredFleet,
  stateDir: string,
  nowMs: number,
  metered?: SpendState,
): ObservedSpend | undefined {
  if (!hasBudgets(desired)) return undefined;
  return spendBuckets(readLedger(stateDir, metered), desired, nowMs);
}

export function spendBuckets(
  entries: readonly LedgerEntry[],
  desired: DesiredFleet,
  nowMs: number,
): ObservedSpend {
  const pricing = desired.pricing ?? {};
  const byAgent = new Map<string, Map<number, SpendBucket>>();
  for (const e of entries) {
    // Days are compacted hours older than any budget window: never in one.
    if (e.span !== 'h' || e.at < nowMs - LOOKBACK_MS) continue;
    const hours = byAgent.get(e.agent) ?? new Map<number, SpendBucket>();
    byAgent.set(e.agent, hours);
    const b = hours.get(e.at) ?? { at: e.at, tokens: 0, usd: 0 };
    const c = costOf(e.tokens, Object.hasOwn(pricing, e.model) ? pricing[e.model] : undefined);
    hours.set(e.at, {
      at: e.at,
      tokens: b.tokens + totalOf(e.tokens),
      usd: b.usd === null || c === null ? null : b.usd + c,
    });
  }
  const agents: Record<string, SpendBucket[]> = {};
  for (const [agent, hours] of [...byAgent].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
    agents[agent] = [...hours.values()].sort((a, b) => a.at - b.at);
  return { agents };
}
