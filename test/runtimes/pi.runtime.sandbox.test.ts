/**
 * pi, for real, in a fleet: state from the fleet's pi extension (`-e`), which pi loads without a build step.
 */
import { expect, it } from 'vitest';
import { describeRuntimes } from './bed.js';

describeRuntimes('pi in the fleet (real runtime)', ['pi'], (bed) => {
  it('reconciles from an empty home; ps shows it ok and idle, from its extension', async () => {
    const b = bed();
    await b.setup([{ name: 'pi0', runtime: 'pi' }]);
    const r = await b.fleet('reconcile');
    expect(r.code, r.stderr).toBe(0);
    const row = await b.waitState('pi0', 'idle', 90_000);
    expect(row.flags).toEqual([]);
    expect(row.state?.event).toBe('session_start');
    expect(row.state?.session).not.toBeNull();
  });

  it('a prompt makes it busy while the model server holds the turn, then idle', async () => {
    const b = bed();
    b.server.on({ match: 'fleet-busy-probe', holdMs: 6000, text: 'done holding' });
    await b.type('pi0', 'fleet-busy-probe: say something');
    const busy = await b.waitState('pi0', 'busy', 30_000);
    expect(busy.state?.event).toBe('agent_start');
    await new Promise((r) => setTimeout(r, 1500));
    expect((await b.ps('pi0')).state?.value).toBe('busy');
    const idle = await b.waitState('pi0', 'idle', 60_000);
    expect(idle.state?.event).toBe('agent_end');
    // pi's process title is `pi`: recognised as the runtime, no DRIFT.
    expect(idle.flags).toEqual([]);
    expect(idle.session.command).toMatch(/^pi\b/);
  });
});
