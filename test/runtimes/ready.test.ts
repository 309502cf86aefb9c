/**
 * The judgment behind "ready for input" (src/runtimes/ready.ts): only a report after the launch counts, and a
 * refusal names the runtime's own signal. Pure; the real runtimes are test/runtimes/ready.runtime.sandbox.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { builtinRuntimes } from '../../src/runtimes/index.js';
import type { StateStatus } from '../../src/model/agent-state.js';
import { readiness, readyEnv } from '../../src/runtimes/ready.js';

const RT = builtinRuntimes({ userHome: '/home/op', mosaicHome: '/home/op/.config/mosaic', hostname: 'h' });
const state = (s: StateStatus['state'], forSeconds: number | null = 3): StateStatus => ({
  state: s,
  forSeconds,
  event: null,
  session: null,
});

describe('readiness', () => {
  it('idle, busy and waiting runtimes read their input; no state signal is typed into on a best effort', () => {
    for (const s of ['idle', 'busy', 'waiting'] as const)
      expect(readiness('o1', RT.opencode, state(s))).toEqual({ ready: true });
    expect(readiness('s1', RT.stub, null)).toEqual({ ready: true });
  });

  it('starting, unknown and exited do not; the line names the runtime’s own signal', () => {
    const o = readiness('o1', RT.opencode, state('starting', 14));
    expect(o).toEqual({
      ready: false,
      why: 'o1 is starting for 14s: it cannot take input until its TUI plugin reports tui.ready (a first start installs its plugin package with the screen blank)',
    });
    expect(readiness('cc1', RT.claude, state('starting', null))).toMatchObject({
      ready: false,
      why: 'cc1 is starting: it cannot take input until its SessionStart hook runs',
    });
    expect(readiness('cx1', RT.codex, state('starting'))).toMatchObject({ ready: false });
    expect(readiness('pi1', RT.pi, state('starting'))).toMatchObject({ ready: false });
    expect(readiness('pi1', RT.pi, state('unknown'))).toMatchObject({ ready: false });
    expect(readiness('pi1', RT.pi, state('exited'))).toMatchObject({ ready: false });
  });

  it('the launcher gets what the signal needs: opencode its TUI config, Codex the file it holds open', () => {
    const tools = '/home/op/.config/mosaic/tools/fleet';
    expect(readyEnv(RT.opencode, tools)).toEqual({ OPENCODE_TUI_CONFIG: `${tools}/opencode-tui.json` });
    expect(readyEnv(RT.codex, tools)).toEqual({ MOSAIC_READY_OPEN_FILE: '*/thread-writer-locks/*.lock' });
    expect(readyEnv(RT.claude, tools)).toEqual({});
  });
});
