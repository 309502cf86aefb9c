/** The units decider: reload, enable, the holder, the convergence unit; in that order. */
import { describe, expect, it } from 'vitest';
import type { DesiredFleet } from '../../../src/model/desired.js';
import type { Observed } from '../../../src/model/observed.js';
import { decideFiles } from '../../../src/plan/deciders/files.js';
import { scopeOf } from '../../../src/plan/deciders/input.js';
import { decideUnits } from '../../../src/plan/deciders/units.js';
import { actionTarget } from '../../../src/render/plan-text.js';
import { agent, fleet, observedBuilder, SOCKET } from '../../helpers/builders.js';
import { converge, planInputFor } from '../../helpers/planning.js';

const desired = fleet([agent('a1'), agent('a2', { enabled: false })]);

function units(o: Observed, d: DesiredFleet = desired): string[] {
  const input = planInputFor(d, o);
  const scope = scopeOf(d, o);
  return decideUnits(input, scope, decideFiles(input, scope)).map(
    (a) => `${a.kind} ${actionTarget(a)}: ${a.reason}`,
  );
}

describe('decideUnits', () => {
  it('a fresh machine: one reload, enable the holder and each enabled agent, start the holder', () => {
    expect(units(observedBuilder().build())).toEqual([
      'daemon-reload systemd --user: unit files changed',
      'enable mosaic-tmux-holder.service: not enabled: the tmux holder would not come back after reboot',
      'enable mosaic-agent@a1.service: not enabled: would not start after reboot',
      'start mosaic-tmux-holder.service: holder is not running',
    ]);
  });

  it('converged: nothing; systemd asking for a reload, or a missing holder session, each get their action', () => {
    const o = converge(desired, observedBuilder().build());
    expect(units(o)).toEqual([]);
    expect(units(observedBuilder(o).needDaemonReload().build())).toEqual([
      'daemon-reload systemd --user: systemd reports unit files changed on disk',
    ]);
    expect(units(observedBuilder(o).withoutSession(SOCKET, '_holder').build())).toEqual([
      `restart mosaic-tmux-holder.service: holder session missing: _holder on socket ${SOCKET}`,
    ]);
  });

  it('reconcile.mode timer: the timer enabled and running', () => {
    const timer: DesiredFleet = { ...desired, reconcile: { mode: 'timer', intervalSeconds: 120 } };
    const o = converge(desired, observedBuilder().build());
    expect(units(o, timer).slice(-2)).toEqual([
      'enable mosaic-fleet-reconcile.timer: reconcile.mode is timer: not enabled',
      'start mosaic-fleet-reconcile.timer: reconcile.mode is timer: not running',
    ]);
  });
});
