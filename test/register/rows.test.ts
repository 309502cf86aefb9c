/**
 * The status rows a host publishes (src/register/rows.ts): its share, and an agent moved to another host for as
 * long as it still runs here (its hand-over waits for it to be idle), flagged MOVING with its real state; an
 * agent of another host that does not run here is not this host's to publish.
 */
import { describe, expect, it } from 'vitest';
import { MOVING_FLAG, statusRows } from '../../src/register/rows.js';
import { agent, fleet, NOW_SEC, observedBuilder } from '../helpers/builders.js';

describe('statusRows', () => {
  const mine = agent('mine', { host: 'testhost' });
  const moved = agent('moved', { host: 'other' });
  const desired = fleet([mine, moved, agent('theirs', { host: 'other' })]);
  const busy = (pid: number) => `ts=${NOW_SEC}\npid=${pid}\nstate=busy\nsince=${NOW_SEC - 30}\n`;

  it('publishes a moved agent that still runs here, busy and MOVING, and nothing for one that does not', () => {
    const observed = observedBuilder()
      .healthyAgent(mine, { pid: 501 })
      .healthyAgent(moved, { pid: 502 })
      .heartbeatRaw('moved', busy(502))
      .build();
    const rows = statusRows(desired, observed);
    expect(rows.map((r) => r.agent)).toEqual(['mine', 'moved']);
    expect(rows.find((r) => r.agent === 'mine')?.flags).not.toContain(MOVING_FLAG);
    expect(rows.find((r) => r.agent === 'moved')).toMatchObject({
      state: 'busy',
      flags: [MOVING_FLAG],
      pid: 502,
      session: 'moved',
      unit: 'active/enabled',
    });
  });

  it('drops the moved agent once it no longer runs here (its row is then deleted by the publication)', () => {
    const observed = observedBuilder().healthyAgent(mine, { pid: 501 }).build();
    expect(statusRows(desired, observed).map((r) => r.agent)).toEqual(['mine']);
  });
});
