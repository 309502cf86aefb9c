/**
 * Claude Code, for real, in a fleet: installed by scripts/install-runtimes.sh, talking to our model server on
 * loopback, started by the reconciler in a real agent unit and tmux pane.
 */
import { expect, it } from 'vitest';
import { describeRuntimes } from './bed.js';

describeRuntimes('claude in the fleet (real runtime)', ['claude'], (bed) => {
  it('reconciles from an empty home; ps shows it ok and idle, from its own SessionStart hook', async () => {
    const b = bed();
    await b.setup([{ name: 'cc0', runtime: 'claude' }]);
    const r = await b.fleet('reconcile');
    expect(r.code, r.stderr).toBe(0);
    const row = await b.waitState('cc0', 'idle', 90_000);
    expect(row.flags).toEqual([]);
    expect(row.heartbeat.health).toBe('healthy');
    expect(b.heartbeat('cc0').event).toBe('SessionStart');
  });

  it('a prompt makes it busy while the model server holds the turn, then idle', async () => {
    const b = bed();
    b.server.on({ match: 'fleet-busy-probe', holdMs: 6000, text: 'done holding' });
    await b.type('cc0', 'fleet-busy-probe: say something');
    const busy = await b.waitState('cc0', 'busy', 30_000);
    expect(busy.state?.event).toBe('UserPromptSubmit');
    const idle = await b.waitState('cc0', 'idle', 60_000);
    expect(idle.state?.event).toBe('Stop');
  });
});
