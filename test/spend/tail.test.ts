import { appendFileSync, mkdtempSync, renameSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { claudeUsage } from '../../src/runtimes/claude/usage.js';
import { RECENT_FILE_IDS, type FileCursor } from '../../src/spend/cursor.js';
import { MAX_LINE_BYTES, tailFile, type TailResult } from '../../src/spend/tail.js';
import { totalOf, type TokenCounts } from '../../src/spend/usage.js';
import { claudeLines, served } from './fixtures.js';

let dir: string;
let file: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'fleet-tail-'));
  file = join(dir, 'session.jsonl');
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function sum(r: TailResult): number {
  return r.counted.reduce((n, c) => n + totalOf(c.added), 0);
}
const callTotal = (n: number): number => {
  const s = served(n);
  return s.input + s.output + s.cache_read + s.cache_write;
};

describe('tailFile: what was appended since the cursor, each reply once', () => {
  it('reads whole lines, leaves a partial last line for the next run, counts a multi-line reply once', () => {
    const [a, b] = claudeLines(1, 2);
    writeFileSync(file, `${a}\n${b.slice(0, 50)}`);
    const first = tailFile(file, undefined, claudeUsage);
    expect(sum(first)).toBe(callTotal(1));
    expect(first.cursor?.offset).toBe(Buffer.byteLength(`${a}\n`));
    appendFileSync(file, `${b.slice(50)}\n${claudeLines(2)[0]}\n`);
    const second = tailFile(file, first.cursor as FileCursor, claudeUsage);
    // b is the same reply as a (same message.id): not counted again.
    expect(second.counted.map((c) => c.record.id)).toEqual(['msg_2']);
    expect(sum(second)).toBe(callTotal(2));
    expect(second.warnings).toEqual([]);
    const third = tailFile(file, second.cursor as FileCursor, claudeUsage);
    expect(third).toMatchObject({ changed: false, counted: [] });
  });

  it("a file's cursor keeps only the last reply ids (every run reads every cursor); the last reply still counts once", () => {
    const lines = Array.from({ length: 40 }, (_, i) => claudeLines(i + 1)[0]);
    writeFileSync(file, `${lines.join('\n')}\n`);
    const first = tailFile(file, undefined, claudeUsage);
    expect(first.cursor?.recent?.map(([id]) => id)).toEqual(
      Array.from({ length: RECENT_FILE_IDS }, (_, i) => `msg_${40 - RECENT_FILE_IDS + i + 1}`),
    );
    // The last reply's second content block, written after the run: the same message.id, not counted again.
    appendFileSync(file, `${claudeLines(40, 2)[1]}\n`);
    const second = tailFile(file, first.cursor as FileCursor, claudeUsage);
    expect(second.counted).toEqual([]);
    expect(second.cursor?.offset).toBeGreaterThan(first.cursor?.offset ?? 0);
  });

  it('a truncated or replaced file is read again from its start; a deleted one drops its cursor', () => {
    writeFileSync(file, `${claudeLines(1)[0]}\n${claudeLines(2)[0]}\n`);
    const first = tailFile(file, undefined, claudeUsage);
    truncateSync(file, 0);
    writeFileSync(file, `${claudeLines(3)[0]}\n`);
    const afterTruncate = tailFile(file, first.cursor as FileCursor, claudeUsage);
    expect(afterTruncate.counted.map((c) => c.record.id)).toEqual(['msg_3']);
    const other = join(dir, 'other.jsonl');
    writeFileSync(other, `${claudeLines(4)[0]}\n${claudeLines(5)[0]}\n${claudeLines(6)[0]}\n`);
    renameSync(other, file);
    const replaced = tailFile(file, afterTruncate.cursor as FileCursor, claudeUsage);
    expect(replaced.counted.map((c) => c.record.id)).toEqual(['msg_4', 'msg_5', 'msg_6']);
    rmSync(file);
    expect(tailFile(file, replaced.cursor as FileCursor, claudeUsage)).toMatchObject({
      cursor: null,
      changed: true,
    });
  });

  it('hostile lines are skipped with one warning naming file and line; the rest still counts', () => {
    const hostile = JSON.parse(claudeLines(9)[0]) as {
      message: { id: string; usage: Record<string, number> };
    };
    hostile.message.usage.output_tokens = -100;
    hostile.message.id = 'msg_bad';
    const huge = {
      ...hostile,
      message: { ...hostile.message, id: 'msg_huge', usage: { input_tokens: 1e200 } },
    };
    writeFileSync(
      file,
      ['not json {', JSON.stringify(hostile), JSON.stringify(huge), '', claudeLines(1)[0], '[1,2', ''].join(
        '\n',
      ),
    );
    const r = tailFile(file, undefined, claudeUsage);
    expect(r.counted.map((c) => c.record.id)).toEqual(['msg_1']);
    expect(r.warnings).toEqual([
      `${file}:1: not JSON, skipped`,
      `${file}:2: bad output count -100, skipped`,
      `${file}:3: bad input count 1e+200, skipped`,
      `${file}:6: not JSON, skipped`,
    ]);
    for (const c of r.counted)
      for (const k of Object.keys(c.added)) expect(c.added[k as keyof TokenCounts]).toBeGreaterThanOrEqual(0);
  });

  it('a 50 MB line is skipped unparsed with one warning, even while it is still being written', () => {
    writeFileSync(file, `${claudeLines(1)[0]}\n`);
    const big = Buffer.alloc(50 * 1024 * 1024, 'x');
    appendFileSync(file, big.subarray(0, 30 * 1024 * 1024));
    const mid = tailFile(file, undefined, claudeUsage);
    expect(mid.counted.map((c) => c.record.id)).toEqual(['msg_1']);
    expect(mid.warnings).toEqual([`${file}:2: line longer than ${MAX_LINE_BYTES} bytes, skipped`]);
    appendFileSync(file, big.subarray(30 * 1024 * 1024));
    appendFileSync(file, `\n${claudeLines(2)[0]}\n`);
    const rest = tailFile(file, mid.cursor as FileCursor, claudeUsage);
    expect(rest.counted.map((c) => c.record.id)).toEqual(['msg_2']);
    expect(rest.warnings).toEqual([]);
    expect(rest.cursor?.line).toBe(3);
  });
});
