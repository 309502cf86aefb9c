/**
 * Claude Code, for real, in a fleet: installed by scripts/install-runtimes.sh, talking to our model server on
 * loopback, started by the reconciler in a real agent unit and tmux pane. State comes from its own hooks.
 */
import { expect, it } from 'vitest';
import { describeRuntimes } from './bed.js';

// Claude Code 2.1 starts in "auto" permission mode; the classic dialog (and its PermissionRequest hook) is the
// operator's `--permission-mode default`, passed through the adapter's `args`.
const DEFAULT_PERMISSIONS = "runtimes:\n  claude:\n    args: ['--permission-mode', 'default']";

describeRuntimes('claude in the fleet (real runtime)', ['claude'], (bed) => {
  it('reconciles from an empty home; ps shows it ok and idle, from its own SessionStart hook', async () => {
    const b = bed();
    await b.setup([{ name: 'cc0', runtime: 'claude' }], DEFAULT_PERMISSIONS);
    const r = await b.fleet('reconcile');
    expect(r.code, r.stderr).toBe(0);
    const row = await b.waitState('cc0', 'idle', 90_000);
    expect(row.flags).toEqual([]);
    expect(row.heartbeat.health).toBe('healthy');
    expect(b.heartbeat('cc0').event).toBe('SessionStart');
    expect(row.state?.session).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('a prompt makes it busy while the model server holds the turn, then idle', async () => {
    const b = bed();
    b.server.on({ match: 'fleet-busy-probe', holdMs: 6000, text: 'done holding' });
    await b.type('cc0', 'fleet-busy-probe: say something');
    const busy = await b.waitState('cc0', 'busy', 30_000);
    expect(busy.state?.event).toBe('UserPromptSubmit');
    // Still busy while the server holds the turn, read again a moment later.
    await new Promise((r) => setTimeout(r, 1500));
    expect((await b.ps('cc0')).state?.value).toBe('busy');
    const idle = await b.waitState('cc0', 'idle', 60_000);
    expect(idle.state?.event).toBe('Stop');
  });

  it('a tool call that needs a permission answer shows waiting; refusing it (Esc) returns to idle', async () => {
    const b = bed();
    b.server.on({
      match: 'fleet-tool-probe',
      toolCall: { name: 'Bash', input: { command: 'touch probe-file' } },
    });
    await b.type('cc0', 'fleet-tool-probe: make a file');
    const waiting = await b.waitState('cc0', 'waiting', 30_000);
    expect(waiting.state?.event).toBe('PermissionRequest');
    await b.keys('cc0', 'Escape');
    // No hook fires for a refused dialog; the liveness ticker reads the transcript's interruption.
    const idle = await b.waitState('cc0', 'idle', 30_000);
    expect(idle.state?.event).toBe('interrupted');
  });
});
