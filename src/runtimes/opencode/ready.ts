/**
 * opencode's ready signal. Its server side (the fleet's plugin, opencode-plugin.js) is loaded seconds before its
 * TUI draws, and a first start installs `@opencode-ai/plugin` first with the screen blank: keys typed meanwhile
 * are lost. Its TUI loads TUI plugins once it runs; the fleet's (opencode-tui-plugin.js, named by
 * opencode-tui.json through OPENCODE_TUI_CONFIG) reports `idle`, event `tui.ready`, once the TUI's first sync is
 * done. An operator's own OPENCODE_TUI_CONFIG wins, and then the fleet gets no ready signal: the agent stays
 * `starting` until its first turn and `fleet send` refuses it.
 */
import { posix } from 'node:path';
import type { ReadySignal } from '../adapter.js';

export const opencodeReady: ReadySignal = {
  signal: 'its TUI plugin reports tui.ready',
  slow: 'a first start installs its plugin package with the screen blank',
  env: (toolsDir) => ({ OPENCODE_TUI_CONFIG: posix.join(toolsDir, 'opencode-tui.json') }),
};
