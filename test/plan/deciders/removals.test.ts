/** The removals decider: disabled agents, unwanted convergence units, orphans (only with --prune). */
import { describe, expect, it } from 'vitest';
import type { DesiredFleet } from '../../../src/model/desired.js';
import type { Observed } from '../../../src/model/observed.js';
import { scopeOf } from '../../../src/plan/deciders/input.js';
import { decideRemovals, staleBackoff } from '../../../src/plan/deciders/removals.js';
import { actionTarget } from '../../../src/render/plan-text.js';
import { agent, fleet, HOME, observedBuilder, SOCKET, UNIT_DIR } from '../../helpers/builders.js';
import { converge, planInputFor } from '../../helpers/planning.js';

const both = fleet([agent('a1'), agent('old')]);
const one = fleet([agent('a1')]);

function removals(d: DesiredFleet, o: Observed, prune = false) {
  const r = decideRemovals(planInputFor(d, o, { prune }), scopeOf(d, o));
  return { ...r, lines: r.actions.map((a) => `${a.kind} ${actionTarget(a)}`) };
}

describe('decideRemovals', () => {
  it('an agent the manifest disables: its unit stopped (said to end its session) and disabled', () => {
    const o = converge(both, observedBuilder().build());
    const r = removals(fleet([agent('a1'), agent('old', { enabled: false })]), o);
    expect(r.lines).toEqual(['stop mosaic-agent@old.service', 'disable mosaic-agent@old.service']);
    expect(r.actions[0]).toMatchObject({ disruptive: true, reason: 'agent is disabled in the manifest' });
  });

  it('an agent no manifest names: listed as an orphan; removed, its env file archived, only with --prune', () => {
    const o = converge(both, observedBuilder().build());
    const listed = removals(one, o);
    expect(listed.actions).toEqual([]);
    expect(listed.orphans.map((x) => x.agent)).toEqual(['old']);
    const pruned = removals(one, o, true);
    expect(pruned.lines).toEqual([
      'stop mosaic-agent@old.service',
      'disable mosaic-agent@old.service',
      `archive-file ${HOME}/fleet/agents/old.env`,
    ]);
    expect(pruned.orphans).toEqual([]);
  });

  it('a same-named session without the fleet’s marker is left alone and said so', () => {
    const o = observedBuilder()
      .session(SOCKET, 'old', { owner: null })
      .envFile('old', `MOSAIC_TMUX_SOCKET=${SOCKET}\n`)
      .build();
    const r = removals(one, o, true);
    expect(r.actions.filter((a) => a.kind === 'kill-session')).toEqual([]);
    expect(r.leftAlone).toEqual([
      `session old on socket ${SOCKET} is not the fleet's (it does not carry the fleet's marker); left alone`,
    ]);
  });

  it('a convergence unit no longer asked for: stopped, disabled, archived, then one more reload', () => {
    const timer: DesiredFleet = { ...one, reconcile: { mode: 'timer', intervalSeconds: 120 } };
    const o = converge(timer, observedBuilder().build());
    const r = removals(one, o);
    expect(r.lines).toContain('stop mosaic-fleet-reconcile.timer');
    expect(r.lines).toContain(`archive-file ${UNIT_DIR}/mosaic-fleet-reconcile.timer`);
    expect(r.lines.at(-1)).toBe('daemon-reload systemd --user');
  });

  it('staleBackoff: records of agents that should not run here', () => {
    const o = observedBuilder().backoff('a1').backoff('gone').build();
    expect(staleBackoff(planInputFor(one, o), scopeOf(one, o))).toEqual(['gone']);
  });
});
