/** Claude Code: hooks from a settings file given on the command line; its transcript named in the heartbeat. */
import { posix } from 'node:path';
import { MODEL_ARGS, realRuntime, type RuntimeAdapter } from '../adapter.js';
import { claudeTranscript } from './transcript.js';

export const claude: RuntimeAdapter = {
  name: 'claude',
  spec: () =>
    realRuntime('claude', {
      // The npm bin is a link to the native binary `bin/claude.exe`.
      programs: ['claude', 'claude.exe'],
      modelArgs: [...MODEL_ARGS],
      resumeArgs: ['--resume', '{session}'],
      exitKeys: ['/exit', 'Enter'],
      resetCommand: '/clear',
      state: 'claude-hooks',
    }),
  integration: {
    state: 'claude-hooks',
    args: (toolsDir) => ['--settings', posix.join(toolsDir, 'claude-settings.json')],
    env: () => ({}),
    lastMessages: claudeTranscript,
  },
};
