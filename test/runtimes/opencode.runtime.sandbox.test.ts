/**
 * opencode, for real, in a fleet: state from the fleet's plugin, loaded through OPENCODE_CONFIG_CONTENT (a config
 * layer above the operator's own files), which receives opencode's events in-process.
 */
import { expect, it } from 'vitest';
import { describeRuntimes } from './bed.js';

describeRuntimes('opencode in the fleet (real runtime)', ['opencode'], (bed) => {
  it('reconciles from an empty home; ps shows it ok and idle once its TUI plugin says it can take a prompt', async () => {
    const b = bed();
    await b.setup([{ name: 'oc0', runtime: 'opencode' }]);
    const r = await b.fleet('reconcile');
    expect(r.code, r.stderr).toBe(0);
    // Idle now means its TUI is up, which a first start on a loaded machine takes minutes to reach.
    const row = await b.waitState('oc0', 'idle', 240_000);
    expect(row.flags).toEqual([]);
    expect(row.state?.event).toBe('tui.ready');
  }, 300_000);

  it('a prompt makes it busy while the model server holds the turn, then idle, from its plugin', async () => {
    const b = bed();
    b.server.on({ match: 'fleet-busy-probe', holdMs: 6000, text: 'done holding', times: Infinity });
    // Its TUI draws only once its first-start install is done: type until the plugin reports the turn.
    const deadline = Date.now() + 120_000;
    let busy = false;
    while (!busy && Date.now() < deadline) {
      await b.type('oc0', 'fleet-busy-probe: say something');
      busy = await b
        .waitState('oc0', 'busy', 15_000)
        .then(() => true)
        .catch(() => false);
    }
    expect(busy).toBe(true);
    expect(b.heartbeat('oc0').event).toBe('session.status');
    expect(b.heartbeat('oc0').session).toMatch(/^ses_/);
    const idle = await b.waitState('oc0', 'idle', 90_000);
    expect(idle.flags).toEqual([]);
  }, 240_000);
});
