/**
 * kill-session against a real tmux: the socket rule picks the server, never the `$TMUX` of the terminal the
 * operator happens to run `fleet reconcile --prune` from.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { applyPlan } from '../../src/apply/executor.js';
import { createRunner } from '../../src/exec.js';
import { DEFAULT_BACKOFF } from '../../src/model/plan.js';
import { describeSandbox } from '../sandbox.js';

describeSandbox('kill-session on the default socket from inside another tmux server', (sandbox) => {
  it("kills the orphan on the default socket, not the enclosing server's session of the same name", async () => {
    const sb = sandbox();
    await sb.tmux('', 'new-session', '-d', '-s', 'old', 'sleep 600');
    await sb.tmux('operator-srv', 'new-session', '-d', '-s', 'old', 'sleep 600');
    // What tmux sets inside a pane of the operator's server: `<socket path>,<server pid>,<session index>`.
    const runner = createRunner({ ...sb.env, TMUX: `${join(sb.tmuxSocketDir, 'operator-srv')},1,0` });
    const stateDir = mkdtempSync(join(tmpdir(), 'fleet-kill-'));
    try {
      const result = await applyPlan(
        [{ kind: 'kill-session', agent: 'old', socketName: '', session: 'old', reason: 'test' }],
        {
          runner,
          stateDir,
          state: { version: 1, written: {}, backoff: {} },
          nowMs: 0,
          backoff: DEFAULT_BACKOFF,
        },
      );
      expect(result.ok).toBe(true);
      const alive = async (socket: string) =>
        (
          await sb.run(['tmux', ...(socket === '' ? [] : ['-L', socket]), 'has-session', '-t', '=old'], {
            reject: false,
          })
        ).exitCode === 0;
      expect(await alive('operator-srv')).toBe(true);
      expect(await alive('')).toBe(false);
    } finally {
      rmSync(stateDir, { recursive: true, force: true });
    }
  });
});
