/**
 * The spend ledger as data: per agent, runtime, model and hour (days for what is older than the retention), the
 * tokens counted. Merging, compaction and window sums. Pure.
 */
import { addTokens, zeroTokens, type TokenCounts } from './usage.js';

export const HOUR_MS = 3_600_000;
export const DAY_MS = 24 * HOUR_MS;
/** Hours are kept this long (the longest window `fleet spend` shows by hour); older ones become days. */
export const HOURLY_RETENTION_MS = 30 * DAY_MS;

export interface LedgerEntry {
  agent: string;
  runtime: string;
  model: string;
  /** Start of the bucket, unix ms (an hour, or a UTC day for compacted entries). */
  at: number;
  span: 'h' | 'd';
  tokens: TokenCounts;
}

export function hourOf(ms: number): number {
  return Math.floor(ms / HOUR_MS) * HOUR_MS;
}

function keyOf(e: LedgerEntry): string {
  return JSON.stringify([e.agent, e.runtime, e.model, e.at, e.span]);
}

/** Entries summed by (agent, runtime, model, bucket), in a stable order. */
export function mergeEntries(entries: readonly LedgerEntry[]): LedgerEntry[] {
  const byKey = new Map<string, LedgerEntry>();
  for (const e of entries) {
    const k = keyOf(e);
    const had = byKey.get(k);
    byKey.set(
      k,
      had === undefined
        ? { ...e, tokens: { ...e.tokens } }
        : { ...had, tokens: addTokens(had.tokens, e.tokens) },
    );
  }
  return [...byKey.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, e]) => e);
}

/** Hours older than the retention folded into their UTC day; then merged. Totals are unchanged. */
export function compactEntries(entries: readonly LedgerEntry[], nowMs: number): LedgerEntry[] {
  const cutoff = nowMs - HOURLY_RETENTION_MS;
  return mergeEntries(
    entries.map((e) =>
      e.span === 'h' && e.at + HOUR_MS <= cutoff
        ? { ...e, at: Math.floor(e.at / DAY_MS) * DAY_MS, span: 'd' }
        : e,
    ),
  );
}

/** One ledger line (JSON), or null for one that is not ours. */
export function parseEntry(line: string): LedgerEntry | null {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return null;
  }
  if (typeof v !== 'object' || v === null) return null;
  const e = v as Partial<LedgerEntry>;
  if (typeof e.agent !== 'string' || typeof e.runtime !== 'string' || typeof e.model !== 'string')
    return null;
  if (typeof e.at !== 'number' || (e.span !== 'h' && e.span !== 'd') || typeof e.tokens !== 'object')
    return null;
  const tokens = zeroTokens();
  for (const k of Object.keys(tokens) as (keyof TokenCounts)[]) {
    const n = (e.tokens as unknown as Record<string, unknown>)[k];
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) return null;
    tokens[k] = n;
  }
  return { agent: e.agent, runtime: e.runtime, model: e.model, at: e.at, span: e.span, tokens };
}

export function formatEntry(e: LedgerEntry): string {
  return JSON.stringify({
    agent: e.agent,
    runtime: e.runtime,
    model: e.model,
    at: e.at,
    span: e.span,
    tokens: e.tokens,
  });
}

/**
 * Whether a bucket counts in a window starting at `sinceMs` (null = all time). A bucket counts when it starts in
 * the window: hourly resolution, so a 5 h window is 5 to 6 clock hours of buckets (docs/spend.md).
 */
export function inWindow(e: LedgerEntry, sinceMs: number | null): boolean {
  return sinceMs === null || e.at >= hourOf(sinceMs);
}
