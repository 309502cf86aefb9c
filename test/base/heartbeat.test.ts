import { describe, expect, it } from 'vitest';
import {
  heartbeatAgent,
  heartbeatFileName,
  heartbeatKeys,
  heartbeatState,
  heartbeatTs,
} from '../../src/base/heartbeat.js';

describe('heartbeatKeys: one rule for every reader', () => {
  it('reads key=value lines, later lines winning', () => {
    expect(heartbeatKeys('ts=10\nstate=idle\nstate=busy\n')).toEqual({ ts: '10', state: 'busy' });
  });

  it('trims whitespace around lines, keys and values', () => {
    expect(heartbeatKeys('  ts = 10 \n\tstate=\tidle\t\n')).toEqual({ ts: '10', state: 'idle' });
  });

  it('reads CRLF lines as LF lines (no \\r left in a value)', () => {
    expect(heartbeatKeys('ts=10\r\nstate=idle\r\nsince=5\r\n')).toEqual({
      ts: '10',
      state: 'idle',
      since: '5',
    });
  });

  it('keeps extra keys, and everything after the first = in a value', () => {
    expect(heartbeatKeys('ts=1\ntranscript=/a/b=c.jsonl\nmodel=opus\n')).toEqual({
      ts: '1',
      transcript: '/a/b=c.jsonl',
      model: 'opus',
    });
  });

  it('ignores lines without a key: no =, a leading =, blank lines, garbage', () => {
    expect(heartbeatKeys('garbage\n=x\n\n   \nts=3')).toEqual({ ts: '3' });
  });
});

describe('heartbeatTs', () => {
  it('is the number for digits with an optional fraction', () => {
    expect(heartbeatTs(heartbeatKeys('ts=1800000000\n'))).toBe(1800000000);
    expect(heartbeatTs(heartbeatKeys('ts=12.5\n'))).toBe(12.5);
  });

  it.each(['ts=x', 'ts=', 'ts=-1', 'ts=1e9', 'ts=0x10', 'pid=3', ''])('is unknown for %j', (text) => {
    expect(heartbeatTs(heartbeatKeys(text))).toBeNull();
  });
});

describe('heartbeatState', () => {
  it('reads state, since and event the same way with CRLF and padding', () => {
    const want = { state: 'idle', since: 900, event: 'Stop' };
    expect(heartbeatState('state=idle\nsince=900\nevent=Stop\n')).toEqual(want);
    expect(heartbeatState('state=idle\r\nsince=900\r\nevent=Stop\r\n')).toEqual(want);
    expect(heartbeatState(' state = idle \n since=900\nevent=Stop ')).toEqual(want);
  });

  it('is null without a state (the liveness ticker alone, an empty state)', () => {
    expect(heartbeatState('ts=5\npid=3\n')).toBeNull();
    expect(heartbeatState('state=\nts=5\n')).toBeNull();
  });

  it('has no since when since is not a time', () => {
    expect(heartbeatState('state=busy\nsince=soon\n')?.since).toBeNull();
    expect(heartbeatState('state=busy\n')?.since).toBeNull();
  });
});

describe('heartbeat file names', () => {
  it('names an agent’s file and reads the agent back', () => {
    expect(heartbeatFileName('coder0')).toBe('coder0.hb');
    expect(heartbeatAgent('coder0.hb')).toBe('coder0');
  });

  it('never takes a writer’s temp file or another name for a heartbeat', () => {
    expect(heartbeatAgent('.coder0.hb.123')).toBeNull();
    expect(heartbeatAgent('.coder0.hb')).toBeNull();
    expect(heartbeatAgent('.hb')).toBeNull();
    expect(heartbeatAgent('coder0.hb.state-9.tmp')).toBeNull();
    expect(heartbeatAgent('notes.txt')).toBeNull();
  });
});
