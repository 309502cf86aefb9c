/**
 * Ending a session the plan names: only one that still carries this fleet's marker, through the runtime's own
 * exit first when it has one, on exactly the socket the plan names.
 */
import type { Action } from '../model/plan.js';
import { describeSocket, exactSession, socketArgs } from '../base/names.js';
import { OWNER_FORMAT, parseSessionMarkers } from '../base/session-markers.js';
import { forgetSockets, type ApplyContext } from './context.js';

/**
 * Check before ending a session: it must still carry the marker the plan saw (the fleet's own), so a same-named
 * session that took its place since is spared. Returns false when the session is already gone.
 */
async function stillOwned(a: Extract<Action, { kind: 'kill-session' }>, ctx: ApplyContext): Promise<boolean> {
  if (a.owner === undefined) return true;
  const r = await ctx.runner.run(['tmux', ...socketArgs(a.socketName), 'list-sessions', '-F', OWNER_FORMAT], {
    kind: 'read',
    reject: false,
    env: { TMUX: undefined },
  });
  if (r.exitCode !== 0) {
    if (/no server running|error connecting/i.test(r.stderr)) return false;
    throw new Error(`tmux list-sessions failed: ${r.stderr.trim()}`);
  }
  const marker = parseSessionMarkers(r.stdout).get(a.session);
  if (marker === undefined) return false;
  if (marker !== a.owner) {
    throw new Error(
      `session ${a.session} on ${describeSocket(a.socketName)} does not carry this fleet's marker ` +
        `(${marker === '' ? 'none' : `it names ${marker}`}); left alone`,
    );
  }
  return true;
}

export async function killSessionAction(
  a: Extract<Action, { kind: 'kill-session' }>,
  ctx: ApplyContext,
): Promise<void> {
  if (!(await stillOwned(a, ctx))) {
    if (a.agent !== null) forgetSockets(ctx, a.agent, a.socketName);
    return;
  }
  if (a.graceful !== undefined) {
    // The runtime's own exit first (its stop script); whatever is left is killed below as always.
    await ctx.runner.run([a.graceful.script, a.session], {
      kind: 'mutate',
      reject: false,
      timeoutMs: 40_000,
      env: { ...a.graceful.env, TMUX: undefined },
    });
  }
  const r = await ctx.runner.run(
    ['tmux', ...socketArgs(a.socketName), 'kill-session', '-t', exactSession(a.session)],
    {
      kind: 'mutate',
      reject: false,
      // Run from inside a tmux pane, $TMUX names the enclosing server and a plain `tmux` (the default socket)
      // would kill a session of that name there: only the socket rule may pick the server.
      env: { TMUX: undefined },
    },
  );
  // Already gone is what we wanted.
  if (r.exitCode !== 0 && !/can't find session|no server running|error connecting/i.test(r.stderr)) {
    throw new Error(`tmux kill-session failed: ${r.stderr.trim()}`);
  }
  if (a.agent !== null) forgetSockets(ctx, a.agent, a.socketName);
}
