import { describe, expect, it } from 'vitest';
import { alertWakeMs, earliest, stateAlertAgents } from '../../src/alerts/watch.js';
import type { AlertRule } from '../../src/model/desired.js';
import { agent, fleet, NOW_SEC, observedBuilder, runtime } from '../helpers/builders.js';

const rule = (when: AlertRule['when'], agents: string[] | null = null): AlertRule => ({
  name: 'r',
  when,
  agents,
  afterSeconds: null,
  send: { kind: 'command', argv: ['x'] },
  source: { file: 'f', line: 1, col: 1 },
});

describe('what watch mode watches for alerts', () => {
  const d = (alerts: AlertRule[]) =>
    fleet(
      [
        agent('cc', { runtime: 'claude' }),
        agent('st', { runtime: 'stub' }),
        agent('sx', { runtime: 'stub' }),
      ],
      {
        alerts,
        runtimes: { claude: runtime('claude', { state: 'claude-hooks' }), stub: runtime('stub') },
      },
    );
  // sx's heartbeat carries a state (its own writer reports one); st's is a bare `ts=`.
  const o = observedBuilder().heartbeat('st', 1).heartbeatRaw('sx', `ts=${NOW_SEC}\nstate=idle\n`).build();

  it.each([
    ['no rules', [], []],
    ['a rule on waiting: agents that report a state', [rule(['waiting'])], ['cc', 'sx']],
    ['a rule on wedged, for some agents', [rule(['wedged'], ['c*'])], ['cc']],
    ['rules on conditions no heartbeat starts', [rule(['crash-loop', 'stale', 'restart-deferred'])], []],
  ])('%s', (_name, rules, expected) => {
    expect([...stateAlertAgents(d(rules), o)].sort()).toEqual(expected);
  });

  it('wakes a margin after the alerts deadline, at the earlier of two', () => {
    expect(alertWakeMs(null)).toBeNull();
    expect(alertWakeMs({ judgments: [], episodes: [], deliveries: [], wakeAtMs: 1000 })).toBe(1250);
    expect(earliest(null, 5)).toBe(5);
    expect(earliest(7, 5)).toBe(5);
    expect(earliest(7, null)).toBe(7);
  });
});
