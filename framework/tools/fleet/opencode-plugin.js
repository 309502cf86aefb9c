// Mosaic fleet: reports this opencode agent's state to the fleet (docs/runtimes.md). Installed by
// `fleet reconcile` into <mosaic home>/tools/fleet/ and loaded through OPENCODE_CONFIG_CONTENT (set by
// run-agent.sh), never through the operator's own opencode config. It changes nothing in opencode's behaviour.
// busy = session.status busy; idle = session.status idle / session.idle; waiting = permission.asked until
// permission.replied. Writes go through agent-state.sh (which serialises them with the liveness ticker), in order.
import { execFile } from 'node:child_process';

const home = process.env.MOSAIC_HOME ?? '';
const tool = `${home}/tools/fleet/agent-state.sh`;
let queue = Promise.resolve();
let last = '';

function report(state, event, session) {
  // opencode repeats session.status; only a change is news.
  const key = `${state}/${session}`;
  if (key === last) return;
  last = key;
  queue = queue.then(
    () =>
      new Promise((resolve) => {
        execFile(tool, ['set', state, event, session ?? ''], { timeout: 10_000 }, () => resolve());
      }),
  );
}

export const MosaicFleetState = async () => {
  if (home === '' || (process.env.MOSAIC_AGENT_NAME ?? '') === '') return {};
  return {
    event: async ({ event }) => {
      const props = (event && event.properties) || {};
      const session = props.sessionID ?? props.info?.id ?? '';
      switch (event?.type) {
        case 'session.status':
          if (props.status?.type === 'busy') report('busy', 'session.status', session);
          else if (props.status?.type === 'idle') report('idle', 'session.status', session);
          break;
        case 'session.idle':
          report('idle', 'session.idle', session);
          break;
        case 'permission.asked':
          report('waiting', 'permission.asked', session);
          break;
        case 'permission.replied':
          report('busy', 'permission.replied', session);
          break;
        default:
          break;
      }
    },
  };
};
