/**
 * Death events are looked at once more before they cost a cycle (src/engine/suspects.ts): what "back already"
 * means, read from tmux's and systemd's own output.
 */
import { describe, expect, it } from 'vitest';
import type { Runner } from '../../src/exec.js';
import {
  addSessions,
  isEmpty,
  liveSessions,
  noSuspects,
  stillDown,
  unitsDown,
} from '../../src/engine/suspects.js';

describe('suspects', () => {
  it('a session is live when one of its panes is: dead panes and other names do not count', () => {
    expect(liveSessions('0 a1\n1 a2\n0 with space\n1 a3\n0 a3\n')).toEqual(
      new Set(['a1', 'with space', 'a3']),
    );
  });

  it('a unit on its way up is fine; inactive, failed, deactivating or unanswered is down', () => {
    const asked = new Set(['u1.service', 'u2.service', 'u3.service', 'u4.service', 'u5.service']);
    const out = [
      'Id=u1.service\nActiveState=active',
      'Id=u2.service\nActiveState=activating',
      'Id=u3.service\nActiveState=failed',
      'Id=u4.service\nActiveState=deactivating',
    ].join('\n\n');
    expect(unitsDown(out, asked).sort()).toEqual(['u3.service', 'u4.service', 'u5.service']);
  });

  it('asks each socket once and systemd once, whatever the number of suspects', async () => {
    const calls: string[][] = [];
    const runner: Runner = {
      log: [],
      run(argv) {
        calls.push([...argv]);
        const stdout =
          argv[0] === 'tmux'
            ? argv.includes('s1')
              ? '0 a1\n1 a2\n'
              : ''
            : 'Id=mosaic-tmux-holder.service\nActiveState=inactive\n';
        return Promise.resolve({ command: argv, exitCode: argv.includes('s2') ? 1 : 0, stdout, stderr: '' });
      },
    };
    const s = noSuspects();
    expect(isEmpty(s)).toBe(true);
    addSessions(s, 's1', ['a1', 'a2']);
    addSessions(s, 's1', ['a1']);
    addSessions(s, 's2', ['b1']);
    s.units.add('mosaic-tmux-holder.service');
    expect((await stillDown(s, runner)).sort()).toEqual(['mosaic-tmux-holder.service', 's1:a2', 's2:b1']);
    expect(calls.map((c) => c[0])).toEqual(['tmux', 'tmux', 'systemctl']);
  });
});
