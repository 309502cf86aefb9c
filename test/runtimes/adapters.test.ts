/**
 * The adapter table: each built-in runtime a folder and a row; capabilities asked of the adapter, never by
 * comparing a runtime's state source by hand.
 */
import { describe, expect, it } from 'vitest';
import {
  BUILTIN_RUNTIME_NAMES,
  builtinRuntimes,
  integrationEnv,
  lastMessagesReader,
  plainRuntime,
} from '../../src/runtimes/index.js';

const BUILTIN = builtinRuntimes({ userHome: '/home/op', mosaicHome: '/m', hostname: 'h' });

describe('runtime adapters', () => {
  it('one row per built-in runtime, named as the table says', () => {
    expect(BUILTIN_RUNTIME_NAMES).toEqual(['claude', 'codex', 'opencode', 'pi', 'stub']);
    expect(Object.keys(BUILTIN).sort()).toEqual([...BUILTIN_RUNTIME_NAMES]);
    for (const [name, spec] of Object.entries(BUILTIN)) expect(spec.name).toBe(name);
    expect(BUILTIN.stub?.command).toBe('/m/tools/fleet/stub-agent.sh');
  });

  it('only Claude reads a transcript; a roster runtime with Claude’s hooks gets Claude’s reader', () => {
    const has = Object.values(BUILTIN)
      .filter((s) => lastMessagesReader(s) !== null)
      .map((s) => s.name);
    expect(has).toEqual(['claude']);
    expect(lastMessagesReader(plainRuntime('mine'))).toBeNull();
    expect(lastMessagesReader({ ...plainRuntime('claude-dev'), state: 'claude-hooks' })).not.toBeNull();
  });

  it('the Claude reader finds the transcript the heartbeat names, and its messages', () => {
    const reader = lastMessagesReader(BUILTIN.claude ?? plainRuntime('x'));
    expect(reader?.locate({ ts: '1', transcript: '/t/s.jsonl' })).toBe('/t/s.jsonl');
    expect(reader?.locate({ ts: '1', transcript: '' })).toBeNull();
    expect(reader?.locate({ ts: '1' })).toBeNull();
    const text = [
      JSON.stringify({ type: 'user', message: { role: 'user', content: 'hi' } }),
      JSON.stringify({ type: 'assistant', message: { content: [{ type: 'text', text: 'hello' }] } }),
    ].join('\n');
    expect(reader?.messages(text)).toEqual([
      { role: 'user', text: 'hi' },
      { role: 'assistant', text: 'hello' },
    ]);
  });

  it('only codex (its ready signal) and opencode (its plugins) need environment for their integration', () => {
    const withEnv = Object.values(BUILTIN).filter((s) => Object.keys(integrationEnv(s, '/t')).length > 0);
    expect(withEnv.map((s) => s.name)).toEqual(['codex', 'opencode']);
  });
});
