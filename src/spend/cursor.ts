/**
 * What metering remembers per record: the cursor of an append-only file (Vector's and Fluent Bit's checkpoint:
 * the file's identity and a byte offset) and, per reply id, what was already counted. Pure.
 */
import { growth, isZero, maxTokens, type ReaderMemo, type TokenCounts, type UsageRecord } from './usage.js';

/** How many recent reply ids opencode's database cursor keeps: opencode rewrites its last few messages. */
export const RECENT_IDS = 64;

/**
 * How many an append-only record file's cursor keeps. A reply's lines are written together (Claude Code: one per
 * content block, side by side, at most a sidechain's lines between them), so only the last few ids can come
 * again. Every run reads every file's cursor, finished files included: 64 ids per file made the metering state
 * of 100 agents with a long history 2.2 MB, parsed by every no-op (docs/benchmarks.md, issue 21).
 */
export const RECENT_FILE_IDS = 8;

/** The bytes at the start of a file that, with its device and inode, say it is still the same file. */
export const HEAD_BYTES = 256;

export interface Recent {
  /** Reply ids with what was counted for each, oldest first, at most RECENT_IDS (RECENT_FILE_IDS in a file's). */
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
export function countOnce(into: Recent, record: UsageRecord, keep = RECENT_IDS): TokenCounts | null {
  const recent = (into.recent ??= []);
  const i = recent.findIndex(([id]) => id === record.id);
  if (i < 0) {
    recent.push([record.id, record.tokens]);
    if (recent.length > keep) recent.splice(0, recent.length - keep);
    return isZero(record.tokens) ? null : record.tokens;
  }
  const entry = recent[i];
  const added = growth(record.tokens, entry[1]);
  entry[1] = maxTokens(record.tokens, entry[1]);
  return isZero(added) ? null : added;
}
