/** The test/demo agent: a script that only writes heartbeats, so a fleet can run without AI runtimes. */
import { posix } from 'node:path';
import { plainRuntime, type RuntimeAdapter } from '../adapter.js';

export const STUB_RUNTIME = 'stub';

export const stub: RuntimeAdapter = {
  name: STUB_RUNTIME,
  spec: (ctx) => ({
    ...plainRuntime(STUB_RUNTIME),
    command: posix.join(ctx.mosaicHome, 'tools', 'fleet', 'stub-agent.sh'),
    heartbeat: true,
  }),
  integration: null,
};
