import { describe, expect, it } from 'vitest';
import { heartbeatState } from '../../src/base/heartbeat.js';
import { transcriptMessages } from '../../src/runtimes/claude/transcript.js';
import {
  appendedLines,
  judgeAck,
  ranBy,
  ranByText,
  restartAction,
  restartImpossible,
  sendRefusal,
  stateRefusal,
  unitFromCgroup,
} from '../../src/engine/verbs.js';
import { fleetErrorLines } from '../../src/cli.js';
import { agentStatus } from '../../src/plan/health.js';
import type { StateStatus } from '../../src/model/agent-state.js';
import { agent, observedBuilder, runtime } from '../helpers/builders.js';

const busy: StateStatus = { state: 'busy', forSeconds: 12, event: 'UserPromptSubmit', session: 's' };
const idle: StateStatus = { state: 'idle', forSeconds: 3, event: 'Stop', session: 's' };

describe('stateRefusal (restart, reset)', () => {
  it('refuses busy, waiting and starting with one line naming the agent and its state', () => {
    expect(stateRefusal('cc0', busy, 'restarted', false)).toBe(
      'cc0 is busy (12s): not restarted; use --now, or retry when idle',
    );
    expect(stateRefusal('cc0', { ...busy, state: 'waiting', forSeconds: null }, 'reset', false)).toBe(
      'cc0 is waiting: not reset; use --now, or retry when idle',
    );
    expect(stateRefusal('cc0', { ...busy, state: 'starting' }, 'restarted', false)).toContain('starting');
  });
  it('lets idle, exited, unknown and no-state agents through, and anything with --now', () => {
    expect(stateRefusal('cc0', idle, 'restarted', false)).toBeNull();
    expect(stateRefusal('cc0', { ...idle, state: 'unknown' }, 'restarted', false)).toBeNull();
    expect(stateRefusal('cc0', null, 'restarted', false)).toBeNull();
    expect(stateRefusal('cc0', busy, 'restarted', true)).toBeNull();
  });
});

describe('sendRefusal', () => {
  it('refuses only an agent waiting for a permission answer, unless forced', () => {
    expect(sendRefusal('cc0', { ...busy, state: 'waiting' }, false)).toMatch(
      /^cc0 is waiting for a permission answer \(12s\): nothing sent/,
    );
    expect(sendRefusal('cc0', { ...busy, state: 'waiting' }, true)).toBeNull();
    expect(sendRefusal('cc0', busy, false)).toBeNull();
  });
});

describe('restartAction', () => {
  const a = agent('cc0', { runtime: 'pi' });
  it('a running agent with a live session: a disruptive restart of its unit', () => {
    const s = agentStatus(
      a,
      observedBuilder()
        .healthyAgent(a, { argv: ['pi'] })
        .build(),
      runtime('pi'),
    );
    expect(restartImpossible(s)).toBeNull();
    expect(restartAction(s, 'fleet restart cc0')).toEqual({
      kind: 'restart',
      unit: 'mosaic-agent@cc0.service',
      agent: 'cc0',
      reason: 'asked by `fleet restart cc0`',
      disruptive: true,
    });
  });
  it('an agent whose unit is not running: a start', () => {
    const s = agentStatus(a, observedBuilder().build(), runtime('pi'));
    expect(restartImpossible(s)).toMatch(/no unit installed yet/);
    const installed = { ...s, unitActiveState: 'inactive', unitFileState: 'enabled' };
    expect(restartImpossible(installed)).toBeNull();
    expect(restartAction(installed, 'fleet restart cc0').kind).toBe('start');
  });
  it('another host’s agent and a disabled one are not restarted from here', () => {
    const s = agentStatus(
      a,
      observedBuilder()
        .healthyAgent(a, { argv: ['pi'] })
        .build(),
      runtime('pi'),
    );
    expect(restartImpossible({ ...s, local: false, host: 'h2' })).toBe(
      'cc0 runs on h2: not restarted from here',
    );
    expect(restartImpossible({ ...s, wanted: false })).toMatch(/disabled in the manifests/);
  });
});

describe('judgeAck (send --verify)', () => {
  const at = 1000;
  const before = heartbeatState('state=idle\nsince=900\nevent=Stop\n');
  it('acknowledged: busy at or after the send', () => {
    const now = heartbeatState('ts=1001\nstate=busy\nsince=1000\nevent=UserPromptSubmit\n');
    expect(judgeAck('cc0', before, now, at)).toEqual({
      acknowledged: true,
      detail: 'cc0 took it: busy since the send (UserPromptSubmit)',
    });
  });
  it('acknowledged: a turn that started and ended between two looks', () => {
    const now = heartbeatState('state=idle\nsince=1001\nevent=agent_end\n');
    expect(judgeAck('pi0', before, now, at).acknowledged).toBe(true);
  });
  it('not: still idle (the text sits in the input box)', () => {
    const v = judgeAck('cc0', before, before, at);
    expect(v).toMatchObject({ acknowledged: false, settled: false });
    if (!v.acknowledged) expect(v.reason).toMatch(/still idle.*input box/);
  });
  it('not: busy with something else since before the send', () => {
    const now = heartbeatState('state=busy\nsince=950\nevent=PreToolUse\n');
    const v = judgeAck('cc0', now, now, at);
    if (v.acknowledged) throw new Error('acknowledged');
    expect(v.reason).toMatch(/busy with something else before the send/);
  });
  it('not: waiting for a permission answer, which waiting longer will not change', () => {
    const now = heartbeatState('state=waiting\nsince=1002\nevent=PermissionRequest\n');
    expect(judgeAck('cc0', before, now, at)).toMatchObject({ acknowledged: false, settled: true });
  });
  it('a heartbeat without state says so', () => {
    expect(heartbeatState('ts=5\npid=3\n')).toBeNull();
    expect(judgeAck('x', null, null, at)).toMatchObject({
      acknowledged: false,
      reason: 'x reports no state',
    });
  });
});

describe('transcriptMessages (tail of a Claude Code transcript)', () => {
  it('keeps user and assistant text, skips tool use, tool results, meta entries and torn lines', () => {
    const lines = [
      { type: 'summary', summary: 'x' },
      { type: 'user', message: { role: 'user', content: 'first question' } },
      {
        type: 'assistant',
        message: { role: 'assistant', content: [{ type: 'text', text: 'first answer' }] },
      },
      { type: 'assistant', message: { content: [{ type: 'tool_use', name: 'Bash', input: {} }] } },
      { type: 'user', message: { content: [{ type: 'tool_result', content: 'out' }] } },
      { type: 'user', isMeta: true, message: { content: 'caveat' } },
      { type: 'assistant', message: { content: [{ type: 'text', text: 'last\nanswer' }] } },
    ].map((l) => JSON.stringify(l));
    expect(transcriptMessages(`${lines.join('\n')}\n{"type":"user","mess`)).toEqual([
      { role: 'user', text: 'first question' },
      { role: 'assistant', text: 'first answer' },
      { role: 'assistant', text: 'last\nanswer' },
    ]);
  });
});

describe('appendedLines (tail --follow of a screen)', () => {
  it('prints only what a newer capture added', () => {
    expect(appendedLines(['a', 'b', 'c'], ['b', 'c', 'd', 'e'])).toEqual(['d', 'e']);
    expect(appendedLines(['a', 'b'], ['a', 'b', '', ''])).toEqual([]);
    expect(appendedLines([], ['x'])).toEqual(['x']);
  });
});

describe('ranBy (who ran a journal entry)', () => {
  const cg = (unit: string) => `0::/user.slice/user-0.slice/user@0.service/app.slice/${unit}\n`;
  it('the timer, watch mode, another unit, a person', () => {
    expect(
      ranBy({ INVOCATION_ID: 'x' }, 'fleet reconcile', cg('mosaic-fleet-reconcile.service'), 'root'),
    ).toEqual({ kind: 'timer', unit: 'mosaic-fleet-reconcile.service' });
    expect(
      ranBy({ INVOCATION_ID: 'x' }, 'fleet reconcile --watch', cg('mosaic-fleet-watch.service'), 'r'),
    ).toEqual({ kind: 'watch', unit: 'mosaic-fleet-watch.service' });
    expect(ranBy({}, 'fleet reconcile --watch', '', 'alice')).toEqual({ kind: 'watch', unit: null });
    expect(ranBy({ INVOCATION_ID: 'x' }, 'fleet restart a', cg('backup.service'), 'r')).toEqual({
      kind: 'unit',
      unit: 'backup.service',
    });
    expect(ranBy({ SUDO_USER: 'bob' }, 'fleet restart a', '', 'root')).toEqual({
      kind: 'person',
      user: 'bob',
    });
    expect(ranByText({ kind: 'timer', unit: 'mosaic-fleet-reconcile.service' })).toBe(
      'timer (mosaic-fleet-reconcile.service)',
    );
    expect(ranByText(undefined)).toBe('unknown');
  });
  it('reads the unit from a cgroup path', () => {
    expect(unitFromCgroup(cg('mosaic-fleet-reconcile.service'))).toBe('mosaic-fleet-reconcile.service');
    expect(unitFromCgroup('0::/user.slice/user-0.slice/session-3.scope\n')).toBe(null);
  });
});

describe('fleetErrorLines', () => {
  it("every line of commander's error text starts with fleet:", () => {
    expect(fleetErrorLines("error: unknown option '--x'\n")).toBe("fleet: unknown option '--x'\n");
    expect(fleetErrorLines('error: a\nmore\n')).toBe('fleet: a\nfleet: more\n');
  });
});
