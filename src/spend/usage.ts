/**
 * Token usage in one meaning for every runtime (docs/spend.md, DOMAIN.md section 10). Each runtime's reader
 * (src/runtimes/<name>/usage.ts) converts its own record to this. Pure.
 */

/** Tokens by kind. `input` excludes cached tokens; `output` includes reasoning; `reasoning` is the part of output. */
export interface TokenCounts {
  input: number;
  cache_read: number;
  cache_write: number;
  output: number;
  reasoning: number;
}

export const TOKEN_KINDS = ['input', 'cache_read', 'cache_write', 'output', 'reasoning'] as const;
export type TokenKind = (typeof TOKEN_KINDS)[number];

/** One model call, as a runtime recorded it, converted. */
export interface UsageRecord {
  /** The runtime's id for the reply (message / response id): a reply written as several lines counts once. */
  id: string;
  model: string;
  /** When it was recorded (unix ms); the reader's caller substitutes "now" when the record gives no time. */
  atMs: number | null;
  tokens: TokenCounts;
}

/** What a reader makes of one record: nothing to count, a call, or a record it refuses (with why). */
export type UsageResult =
  { kind: 'none' } | { kind: 'usage'; record: UsageRecord } | { kind: 'invalid'; why: string };

/** Small per-file memory a reader may need between lines (Codex names its model in an earlier line). */
export interface ReaderMemo {
  model?: string;
}

/** A reader of one runtime's record (a parsed JSONL line, or an opencode event's data). */
export type UsageReader = (value: unknown, memo: ReaderMemo) => UsageResult;

/** More than any single call could use: a count above this is a corrupt or hostile record. */
export const MAX_COUNT = 1e10;

export const NONE: UsageResult = { kind: 'none' };

export function zeroTokens(): TokenCounts {
  return { input: 0, cache_read: 0, cache_write: 0, output: 0, reasoning: 0 };
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * A token count from a record: absent is 0; a non-integer, negative or absurd value makes the record invalid
 * (null), so a hostile line never yields a negative or overflowing total.
 */
export function count(v: unknown): number | null {
  if (v === undefined || v === null) return 0;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0 || v > MAX_COUNT) return null;
  return v;
}

/** Counts of a record, each checked (count); null with the first bad field's name when one is bad. */
export function counts(fields: Record<TokenKind, unknown>): TokenCounts | string {
  const out = zeroTokens();
  for (const k of TOKEN_KINDS) {
    const c = count(fields[k]);
    if (c === null) return `bad ${k} count ${JSON.stringify(fields[k])?.slice(0, 40) ?? ''}`;
    out[k] = c;
  }
  return out;
}

/** A usage result from checked counts, or invalid. */
export function usage(
  id: string,
  model: string,
  atMs: number | null,
  fields: Record<TokenKind, unknown>,
): UsageResult {
  const tokens = counts(fields);
  if (typeof tokens === 'string') return { kind: 'invalid', why: tokens };
  if (tokens.reasoning > tokens.output) return { kind: 'invalid', why: 'reasoning exceeds output' };
  return { kind: 'usage', record: { id, model, atMs, tokens } };
}

/** Unix ms from an ISO string or a number of ms; null otherwise. */
export function timeOf(v: unknown): number | null {
  if (typeof v === 'number' && Number.isFinite(v) && v > 0) return v;
  if (typeof v === 'string') {
    const t = Date.parse(v);
    return Number.isFinite(t) ? t : null;
  }
  return null;
}

export function str(v: unknown): string | null {
  return typeof v === 'string' && v !== '' ? v : null;
}

/** a − b per kind, floored at 0: what a re-recorded reply adds beyond what was already counted. */
export function growth(a: TokenCounts, b: TokenCounts): TokenCounts {
  const out = zeroTokens();
  for (const k of TOKEN_KINDS) out[k] = Math.max(0, a[k] - b[k]);
  return out;
}

export function maxTokens(a: TokenCounts, b: TokenCounts): TokenCounts {
  const out = zeroTokens();
  for (const k of TOKEN_KINDS) out[k] = Math.max(a[k], b[k]);
  return out;
}

export function addTokens(a: TokenCounts, b: TokenCounts): TokenCounts {
  const out = zeroTokens();
  for (const k of TOKEN_KINDS) out[k] = a[k] + b[k];
  return out;
}

export function isZero(t: TokenCounts): boolean {
  return TOKEN_KINDS.every((k) => t[k] === 0);
}

/** All tokens billed: input + cache read + cache write + output (reasoning is inside output). */
export function totalOf(t: TokenCounts): number {
  return t.input + t.cache_read + t.cache_write + t.output;
}
