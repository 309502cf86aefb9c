/** The state patch and the summary: what the plan changes of the observed state, as data. */
import { describe, expect, it } from 'vitest';
import type { Action } from '../../../src/model/plan.js';
import { statePatch, summarize } from '../../../src/plan/deciders/state.js';
import { agent, fleet, observedBuilder, SOCKET } from '../../helpers/builders.js';
import { converge, ENV_PATH } from '../../helpers/planning.js';

const desired = fleet([agent('a1')]);

describe('statePatch', () => {
  it('nothing to apply changes nothing', () => {
    expect(statePatch(observedBuilder().build(), [], desired.sockets)).toEqual([]);
  });

  it('a start brings up the unit and the agent’s session; a file write changes its hash', () => {
    const o = converge(desired, observedBuilder().build());
    const stopped = observedBuilder(o)
      .unit('mosaic-agent@a1.service', { active: 'inactive' })
      .withoutSession(SOCKET, 'a1')
      .build();
    const actions: Action[] = [{ kind: 'start', unit: 'mosaic-agent@a1.service', agent: 'a1', reason: 'x' }];
    const patch = statePatch(stopped, actions, desired.sockets);
    expect(patch).toHaveLength(2);
    expect(patch).toEqual(
      expect.arrayContaining([
        { op: 'replace', path: '/units/mosaic-agent@a1.service/active', value: true },
        { op: 'add', path: `/sessions/${SOCKET}~1a1`, value: 'running' },
      ]),
    );
    const write: Action[] = [
      {
        kind: 'write-file',
        role: 'env',
        path: ENV_PATH('a1'),
        before: 'a',
        after: 'b',
        mode: 0o600,
        backup: false,
        reason: 'x',
        agent: 'a1',
      },
    ];
    expect(statePatch(o, write, desired.sockets)).toMatchObject([
      { op: 'replace', path: `/files/${ENV_PATH('a1').replaceAll('/', '~1')}` },
    ]);
  });
});

describe('summarize', () => {
  it('counts adds, changes, removals and the rest', () => {
    const actions: Action[] = [
      {
        kind: 'write-file',
        role: 'env',
        path: '/a',
        before: null,
        after: 'x',
        mode: 0o600,
        backup: false,
        reason: '',
        agent: null,
      },
      {
        kind: 'write-file',
        role: 'env',
        path: '/b',
        before: 'y',
        after: 'x',
        mode: 0o600,
        backup: false,
        reason: '',
        agent: null,
      },
      { kind: 'stop', unit: 'u', agent: null, reason: '' },
      { kind: 'daemon-reload', reason: '' },
      { kind: 'restart', unit: 'u', agent: null, reason: '' },
    ];
    expect(summarize(actions)).toEqual({ add: 1, change: 1, remove: 1, other: 2 });
  });
});
