/**
 * What metering remembers per record: the cursor of an append-only file (Vector's and Fluent Bit's checkpoint:
 * the file's identity and a byte offset) and, per reply id, what was already counted. Pure.
 */
import { growth, isZero, maxTokens, type ReaderMemo, type TokenCounts, type UsageRecord } from './usage.js';

/** How many recent reply ids a record keeps: a reply's lines are adjacent, and opencode rewrites the last few. */
export const RECENT_IDS = 64;

/** The bytes at the start of a file that, with its device and inode, say it is still the same file. */
export const HEAD_BYTES = 256;

export interface Recent {
  /** Reply ids with what was counted for each, oldest first, at most RECENT_IDS. */
  recent?: [string, TokenCounts][];
}

export interface FileCursor extends Recent {
  dev: number;
  ino: number;
  /** Hash (fnv1a) of the first `headLen` bytes, taken when the cursor was made. */
  head: string;
  headLen: number;
  /** Bytes consumed: the end of the last whole line read (a partial last line is left for the next run). */
  offset: number;
  /** Lines consumed (for warnings that name a line). */
  line: number;
  /** Inside a line longer than the cap: skip to its end. */
  skipping?: boolean;
  /** Size and mtime when last read: unchanged means nothing to read. */
  size: number;
  mtimeMs: number;
  memo?: ReaderMemo;
}

/** 32-bit FNV-1a as hex: enough to tell a replaced file's first bytes from the old ones (with dev + inode). */
export function fnv1a(bytes: Uint8Array): string {
  let h = 0x811c9dc5;
  for (const b of bytes) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, '0');
}

/**
 * What a record adds, counted once per reply id: a new id counts whole; an id seen before counts only its growth
 * (Claude Code repeats the same usage on every line of a reply; opencode rewrites a message 0 → final).
 * Mutates `into.recent`.
 */
export function countOnce(into: Recent, record: UsageRecord): TokenCounts | null {
  const recent = (into.recent ??= []);
  const i = recent.findIndex(([id]) => id === record.id);
  if (i < 0) {
    recent.push([record.id, record.tokens]);
    if (recent.length > RECENT_IDS) recent.splice(0, recent.length - RECENT_IDS);
    return isZero(record.tokens) ? null : record.tokens;
  }
  const entry = recent[i];
  const added = growth(record.tokens, entry[1]);
  entry[1] = maxTokens(record.tokens, entry[1]);
  return isZero(added) ? null : added;
}
