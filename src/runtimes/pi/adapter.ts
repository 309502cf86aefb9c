/** pi: the fleet's extension, loaded with `-e`. */
import { posix } from 'node:path';
import { MODEL_ARGS, realRuntime, type RuntimeAdapter } from '../adapter.js';

export const pi: RuntimeAdapter = {
  name: 'pi',
  spec: () =>
    realRuntime('pi', {
      // A node script that sets its process title: argv reads just `pi`.
      programs: ['pi'],
      modelArgs: [...MODEL_ARGS],
      resumeArgs: ['--session', '{session}'],
      exitKeys: ['C-d'],
      resetCommand: '/new',
      state: 'pi-extension',
    }),
  integration: {
    state: 'pi-extension',
    args: (toolsDir) => ['-e', posix.join(toolsDir, 'pi-extension.ts')],
    env: () => ({}),
    lastMessages: null,
  },
};
