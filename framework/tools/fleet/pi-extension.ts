// Mosaic fleet: reports this pi agent's state to the fleet (docs/runtimes.md). Installed by `fleet reconcile`
// into <mosaic home>/tools/fleet/ and loaded with `pi -e`; it changes nothing in pi's own behaviour.
// busy = agent_start, idle = agent_end, exited = session_shutdown. Writes go through agent-state.sh (which
// serialises them with the liveness ticker), one at a time and in order.
import { execFile, execFileSync } from 'node:child_process';

type Ctx = {
  sessionManager?: { getSessionId?: () => string | undefined; getSessionFile?: () => string | undefined };
};
type Pi = { on: (event: string, handler: (event: unknown, ctx: Ctx) => void) => void };

const home = process.env.MOSAIC_HOME ?? '';
const tool = `${home}/tools/fleet/agent-state.sh`;
let queue: Promise<void> = Promise.resolve();

function sessionOf(ctx: Ctx): [string, string] {
  try {
    // The file holds the conversation (written once there is a message); a start resumes only while it exists.
    return [ctx?.sessionManager?.getSessionId?.() ?? '', ctx?.sessionManager?.getSessionFile?.() ?? ''];
  } catch {
    return ['', ''];
  }
}

function report(state: string, event: string, ctx: Ctx): void {
  const [session, file] = sessionOf(ctx);
  queue = queue.then(
    () =>
      new Promise<void>((resolve) => {
        execFile(tool, ['set', state, event, session, file], { timeout: 10_000 }, () => resolve());
      }),
  );
}

export default function (pi: Pi): void {
  if (home === '' || (process.env.MOSAIC_AGENT_NAME ?? '') === '') return;
  pi.on('session_start', (_e, ctx) => report('idle', 'session_start', ctx));
  pi.on('agent_start', (_e, ctx) => report('busy', 'agent_start', ctx));
  pi.on('agent_end', (_e, ctx) => report('idle', 'agent_end', ctx));
  // At shutdown, written before the handler returns: pi exits right after, and a queued write could be lost.
  pi.on('session_shutdown', (_e, ctx) => {
    const [session, file] = sessionOf(ctx);
    try {
      execFileSync(tool, ['set', 'exited', 'session_shutdown', session, file], {
        timeout: 5_000,
        stdio: 'ignore',
      });
    } catch {
      // never fail pi's own quit
    }
  });
}
