/**
 * Reading what a runtime appended to its record file since the cursor: a new file is read from its start, a
 * replaced or truncated one again from its start, a partial last line (the writer mid-append) is left for the
 * next run, and a line that is not JSON, holds a bad record or is longer than the cap is skipped with one
 * warning naming the file and line. Never through a link.
 */
import { closeSync, constants, lstatSync, openSync, readSync } from 'node:fs';
import { countOnce, fnv1a, HEAD_BYTES, RECENT_FILE_IDS, type FileCursor } from './cursor.js';
import type { TokenCounts, UsageReader, UsageRecord } from './usage.js';

/** A line longer than this is no usage record (those are a few KB): skipped unread. */
export const MAX_LINE_BYTES = 4 * 1024 * 1024;
/** Read at most this much of one file per run; the rest waits for the next run (bounded work per run). */
export const MAX_READ_PER_RUN = 64 * 1024 * 1024;
const CHUNK = 1024 * 1024;

export interface Counted {
  record: UsageRecord;
  /** What it adds beyond what was counted for its id before (never negative). */
  added: TokenCounts;
}

export interface TailResult {
  /** null when the file is gone (or is not a regular file). */
  cursor: FileCursor | null;
  counted: Counted[];
  warnings: string[];
  /** Whether the cursor moved (the caller persists only then). */
  changed: boolean;
}

/** Up to `length` bytes at `position` (fewer at the end of the file). */
function readAt(fd: number, length: number, position: number): Buffer {
  const buf = Buffer.alloc(length);
  let got = 0;
  while (got < length) {
    const bytesRead = readSync(fd, buf, got, length - got, position + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return buf.subarray(0, got);
}

/** The cursor to continue from: the old one if this is still its file, else a fresh one at 0. */
function resume(
  fd: number,
  st: { dev: number; ino: number; size: number; mtimeMs: number },
  old: FileCursor | undefined,
): FileCursor {
  if (old !== undefined && old.dev === st.dev && old.ino === st.ino && st.size >= old.offset) {
    const head = readAt(fd, old.headLen, 0);
    if (head.length === old.headLen && fnv1a(head) === old.head) return { ...old };
  }
  const headLen = Math.min(HEAD_BYTES, st.size);
  const head = readAt(fd, headLen, 0);
  return { dev: st.dev, ino: st.ino, head: fnv1a(head), headLen, offset: 0, line: 0, size: 0, mtimeMs: 0 };
}

interface LineSink {
  path: string;
  reader: UsageReader;
  cursor: FileCursor;
  out: TailResult;
}

function consumeLine(sink: LineSink, bytes: Buffer): void {
  const { cursor, out } = sink;
  const lineNo = cursor.line + 1;
  const text = bytes.toString('utf8').trim();
  if (text === '') return;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    out.warnings.push(`${sink.path}:${lineNo}: not JSON, skipped`);
    return;
  }
  const memo = (cursor.memo ??= {});
  const r = sink.reader(value, memo);
  if (r.kind === 'invalid') out.warnings.push(`${sink.path}:${lineNo}: ${r.why}, skipped`);
  if (r.kind !== 'usage') return;
  const added = countOnce(cursor, r.record, RECENT_FILE_IDS);
  if (added !== null) out.counted.push({ record: r.record, added });
}

/** Read the file's new whole lines from `cursor.offset` (up to MAX_READ_PER_RUN bytes). */
function readLines(fd: number, size: number, sink: LineSink): void {
  const c = sink.cursor;
  const end = Math.min(size, c.offset + MAX_READ_PER_RUN);
  let pos = c.offset;
  let pending: Buffer[] = [];
  let pendingLen = 0;
  while (pos < end) {
    const chunk = readAt(fd, Math.min(CHUNK, end - pos), pos);
    if (chunk.length === 0) break;
    let start = 0;
    for (let nl = chunk.indexOf(10, start); nl >= 0; nl = chunk.indexOf(10, start)) {
      if (c.skipping === true) c.skipping = undefined;
      else consumeLine(sink, Buffer.concat([...pending, chunk.subarray(start, nl)]));
      pending = [];
      pendingLen = 0;
      c.line++;
      start = nl + 1;
      c.offset = pos + start;
    }
    pos += chunk.length;
    if (c.skipping === true) {
      c.offset = pos;
      continue;
    }
    pending.push(chunk.subarray(start));
    pendingLen += chunk.length - start;
    if (pendingLen > MAX_LINE_BYTES) {
      sink.out.warnings.push(`${sink.path}:${c.line + 1}: line longer than ${MAX_LINE_BYTES} bytes, skipped`);
      c.skipping = true;
      c.offset = pos;
      pending = [];
      pendingLen = 0;
    }
  }
}

/**
 * Read what was appended to `path` since `old`. Synchronous reads: a few small appends per file per run, and
 * observation reads /proc the same way.
 */
export function tailFile(path: string, old: FileCursor | undefined, reader: UsageReader): TailResult {
  const out: TailResult = { cursor: null, counted: [], warnings: [], changed: old !== undefined };
  const st = lstatSync(path, { throwIfNoEntry: false });
  if (st === undefined || !st.isFile()) return out;
  if (
    old !== undefined &&
    old.dev === st.dev &&
    old.ino === st.ino &&
    old.size === st.size &&
    old.mtimeMs === st.mtimeMs
  ) {
    return { ...out, cursor: old, changed: false };
  }
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch {
    return { ...out, cursor: old ?? null, changed: false };
  }
  try {
    const cursor = resume(fd, st, old);
    readLines(fd, st.size, { path, reader, cursor, out });
    // Remember the size only when all of it was read: a capped run must look "changed" next time.
    cursor.size = cursor.offset >= st.size || cursor.skipping === true ? st.size : -1;
    cursor.mtimeMs = st.mtimeMs;
    out.cursor = cursor;
    out.changed = true;
    return out;
  } finally {
    closeSync(fd);
  }
}
