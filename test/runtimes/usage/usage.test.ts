import { describe, expect, it } from 'vitest';
import { claudeUsage } from '../../../src/runtimes/claude/usage.js';
import { codexUsage } from '../../../src/runtimes/codex/usage.js';
import { opencodeUsage } from '../../../src/runtimes/opencode/usage.js';
import { piUsage } from '../../../src/runtimes/pi/usage.js';
import type { ReaderMemo, UsageReader, UsageResult } from '../../../src/spend/usage.js';
import { claudeLines, codexLines, opencodeEvent, piLine, served } from '../../spend/fixtures.js';

function readAll(reader: UsageReader, lines: string[]): UsageResult[] {
  const memo: ReaderMemo = {};
  return lines.map((l) => reader(JSON.parse(l), memo)).filter((r) => r.kind !== 'none');
}

describe('usage readers: each runtime’s record in one meaning', () => {
  it('claude: Anthropic usage is ours already; thinking tokens are the reasoning part of output', () => {
    const [line] = claudeLines(1);
    const v = JSON.parse(line) as { message: { usage: Record<string, unknown> } };
    v.message.usage.output_tokens_details = { thinking_tokens: 40 };
    expect(claudeUsage(v, {})).toEqual({
      kind: 'usage',
      record: {
        id: 'msg_1',
        model: 'claude-sonnet-4-5',
        atMs: Date.parse('2026-12-07T10:00:00.000Z'),
        tokens: { input: 1234, output: 156, cache_read: 1789, cache_write: 1012, reasoning: 40 },
      },
    });
    expect(claudeUsage({ type: 'user', message: { content: 'x' } }, {})).toEqual({ kind: 'none' });
  });

  it('codex: input includes cached in the record and not in ours; output includes reasoning in both', () => {
    const results = readAll(codexUsage, codexLines(2));
    const s = served(2);
    expect(results).toEqual([
      {
        kind: 'usage',
        record: {
          id: 'resp_2',
          model: 'gpt-test',
          atMs: Date.parse('2026-12-07T10:00:00.000Z'),
          tokens: {
            input: s.input,
            cache_read: s.cache_read,
            cache_write: 0,
            output: s.output,
            reasoning: s.reasoning,
          },
        },
      },
    ]);
  });

  it('pi: usage already converted; the model is the message’s', () => {
    const s = served(3);
    expect(piUsage(JSON.parse(piLine(3)), {})).toMatchObject({
      kind: 'usage',
      record: { id: 'msg_3', model: 'm', tokens: { ...s, reasoning: 0 } },
    });
    expect(piUsage({ type: 'compaction', tokensBefore: 5000 }, {})).toEqual({ kind: 'none' });
  });

  it('opencode: reasoning counted outside output in the record, inside ours', () => {
    const s = served(4);
    expect(opencodeUsage(opencodeEvent(4), {})).toMatchObject({
      kind: 'usage',
      record: { id: 'msg_4', model: 'm', tokens: s },
    });
  });

  it('hostile counts (negative, huge, fractional, strings) make a record invalid, never a negative total', () => {
    for (const bad of [-1, 1e300, 1.5, '12', Number.MAX_SAFE_INTEGER]) {
      const v = JSON.parse(claudeLines(1)[0]) as { message: { usage: Record<string, unknown> } };
      v.message.usage.input_tokens = bad;
      expect(claudeUsage(v, {}).kind, String(bad)).toBe('invalid');
    }
    const codex = JSON.parse(codexLines(1)[1]) as { payload: { usage: Record<string, unknown> } };
    codex.payload.usage.cached_input_tokens = 10_000_000;
    expect(codexUsage(codex, {}).kind).toBe('invalid');
    expect(
      piUsage({ type: 'message', message: { role: 'assistant', usage: { input: -5 } }, id: 'x' }, {}).kind,
    ).toBe('invalid');
    expect(
      opencodeUsage({ info: { id: 'm', role: 'assistant', tokens: { output: 5, reasoning: -1 } } }, {}).kind,
    ).toBe('invalid');
  });
});
