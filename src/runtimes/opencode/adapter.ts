/**
 * opencode: the fleet's plugin, given through OPENCODE_CONFIG_CONTENT, a config layer of its own above the
 * operator's files (no command-line argument).
 */
import { posix } from 'node:path';
import { realRuntime, type RuntimeAdapter } from '../adapter.js';

export const opencode: RuntimeAdapter = {
  name: 'opencode',
  spec: () =>
    realRuntime('opencode', {
      programs: ['opencode', 'opencode.exe'],
      modelArgs: ['--model', '{model}'],
      resumeArgs: ['--session', '{session}'],
      exitKeys: ['/exit', 'Enter'],
      resetCommand: '/new',
      state: 'opencode-events',
    }),
  integration: {
    state: 'opencode-events',
    args: () => [],
    env: (toolsDir) => ({
      OPENCODE_CONFIG_CONTENT: JSON.stringify({
        plugin: [`file://${posix.join(toolsDir, 'opencode-plugin.js')}`],
      }),
    }),
    lastMessages: null,
  },
};
