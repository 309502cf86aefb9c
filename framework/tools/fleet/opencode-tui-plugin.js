// Mosaic fleet: tells the fleet when this opencode agent's TUI can take a prompt (docs/runtimes.md). Installed by
// `fleet reconcile` into <mosaic home>/tools/fleet/ and loaded by opencode's TUI through OPENCODE_TUI_CONFIG (set
// by run-agent.sh to opencode-tui.json beside it), never through the operator's own opencode config.
// Why a TUI plugin: opencode's server side (opencode-plugin.js) is up seconds before its TUI draws, and on a first
// start the TUI stays blank while it installs its plugin package; keys typed meanwhile are lost. The TUI loads its
// plugins once it runs, and `api.state.ready` says its first sync is done: then it reads the prompt box.
import { execFile } from 'node:child_process';

const home = process.env.MOSAIC_HOME ?? '';
const tool = `${home}/tools/fleet/agent-state.sh`;

function isReady(api) {
  try {
    return api.state?.ready !== false;
  } catch {
    return true;
  }
}

export default {
  id: 'mosaic-fleet-ready',
  tui: async (api) => {
    if (home === '' || (process.env.MOSAIC_AGENT_NAME ?? '') === '') return;
    const signal = api.lifecycle?.signal;
    const report = () => {
      if (signal?.aborted) return;
      if (!isReady(api)) {
        setTimeout(report, 200);
        return;
      }
      // `ready` changes only a "starting" heartbeat: a turn reported meanwhile already said more.
      execFile(tool, ['ready', 'tui.ready'], { timeout: 10_000 }, () => undefined);
    };
    report();
  },
};
