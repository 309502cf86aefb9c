/**
 * `npm run demo`: the reconciler's main job in one command, against a real systemd user manager and real tmux
 * in a private sandbox (src/dev/sandbox.ts): install the canary fleet from a fresh home, break it three ways the
 * way a crash or an operator would, let one `fleet reconcile` name and heal exactly those drifts, and clean up.
 *
 * Every `fleet` step is the real CLI (`node bin/fleet.js ...`) run with the sandbox environment; its output is
 * shown as printed, except that the sandbox's temp dir is abbreviated and long diffs are trimmed. Nothing
 * outside the sandbox's temp dir is touched, and the sandbox is stopped on success, failure and Ctrl-C/SIGTERM
 * (src/dev/demo-runner.ts).
 */
import { pathToFileURL } from 'node:url';
import { sandboxStaticReason, startSandbox } from './sandbox.js';
import { demoContext, SOCKET, type DemoContext } from './demo-context.js';
import { DEMO_STEPS, installRoster } from './demo-steps.js';
import { runDemoScript, type DemoIO, type DemoScript } from './demo-runner.js';

export { trimPlanDiffs } from './demo-context.js';

const script: DemoScript<DemoContext> = {
  name: 'demo',
  staticReason: sandboxStaticReason,
  async start(out, resources) {
    out.progress.update('starting a private systemd user manager...');
    const sb = await startSandbox({ tmpPrefix: 'fleet-demo-' });
    resources.push({
      cleanup: 'stopping the sandbox (manager, tmux servers, cgroups, temp dir)',
      where: sb.root,
      stop: () => sb.stop(),
      force: () => sb.forceStop(),
    });
    out.progress.done(`starting a private systemd user manager... ${out.s.ok('ok')} (pid ${sb.managerPid})`);
    out.check();
    const d = demoContext(out, sb);
    out.write(
      out.s.dim(`   sandbox: ${sb.root} (removed at the end; shown below as $SANDBOX, its home as ~)`),
    );
    out.write(out.s.dim(`   roster:  manifests/canary.yaml (three stub agents on tmux socket ${SOCKET})`));
    installRoster(d);
    return d;
  },
  steps: DEMO_STEPS,
  done: 'Demo done: the fleet was installed, broken three ways and healed by one reconcile.',
};

/** The demo proper. Returns the exit code: 0 done, 1 failed, 128+n interrupted by signal n. */
export function runDemo(
  io: DemoIO = { out: process.stdout, err: process.stderr, env: process.env },
): Promise<number> {
  return runDemoScript(io, script);
}

// Run when executed (`node dist/dev/demo.js`), not when imported.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await runDemo();
}
