/**
 * `npm run demo`: the reconciler's main job in one command, against a real systemd user manager and real tmux
 * in a private sandbox (src/dev/sandbox.ts): install the canary fleet from a fresh home, break it three ways the
 * way a crash or an operator would, let one `fleet reconcile` name and heal exactly those drifts, and clean up.
 *
 * Every `fleet` step is the real CLI (`node bin/fleet.js ...`) run with the sandbox environment; its output is
 * shown as printed, except that the sandbox's temp dir is abbreviated and long diffs are trimmed. Nothing
 * outside the sandbox's temp dir is touched, and the sandbox is stopped on success, failure and Ctrl-C/SIGTERM.
 */
import { pathToFileURL } from 'node:url';
import { sandboxStaticReason, startSandbox, type Sandbox } from './sandbox.js';
import { demoContext, Interrupted, SOCKET, style, type DemoOutput } from './demo-context.js';
import { DEMO_STEPS, installRoster } from './demo-steps.js';

export { trimPlanDiffs } from './demo-context.js';

interface DemoIO {
  out: NodeJS.WriteStream;
  err: NodeJS.WriteStream;
  env: NodeJS.ProcessEnv;
}

/** The demo's signals: the first stops it and cleans up; a second stops waiting for a clean manager exit; a third leaves. */
class Signals {
  interrupted: NodeJS.Signals | null = null;
  sandbox: Sandbox | null = null;
  wake: (() => void) | null = null;
  private count = 0;

  constructor(
    private readonly err: NodeJS.WriteStream,
    private readonly bad: (s: string) => string,
  ) {}

  readonly on = (signal: NodeJS.Signals): void => {
    this.count += 1;
    if (this.count === 1) {
      this.interrupted = signal;
      this.err.write(`\n${this.bad(`${signal}:`)} stopping the demo and cleaning up (again to force)\n`);
      this.wake?.();
    } else if (this.count === 2) {
      this.err.write(`${this.bad(`${signal}:`)} forcing: killing the sandbox's systemd manager\n`);
      this.sandbox?.forceStop();
    } else {
      this.err.write(
        `${this.bad(`${signal}:`)} leaving now; the sandbox may be left in ${this.sandbox?.root ?? '/tmp'}\n`,
      );
      // A development tool with its own entry point, not a `fleet` command: nothing above it to return to.
      process.exit(128 + (signal === 'SIGINT' ? 2 : 15));
    }
  };
}

/** Styled output and a sleep that a signal cuts short. */
function demoOutput(io: DemoIO, signals: Signals): DemoOutput {
  const tty = io.out.isTTY === true;
  const write = (text = ''): void => {
    io.out.write(`${text}\n`);
  };
  const check = (): void => {
    if (signals.interrupted !== null) throw new Interrupted(signals.interrupted);
  };
  const sleep = async (ms: number): Promise<void> => {
    check();
    if (ms > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, ms);
        function done(): void {
          clearTimeout(timer);
          signals.wake = null;
          resolve();
        }
        signals.wake = done;
      });
    }
    check();
  };
  const progress = {
    update(text: string): void {
      if (tty) io.out.write(`\r\x1b[K   ${text}`);
    },
    done(text: string): void {
      if (tty) io.out.write(`\r\x1b[K`);
      write(`   ${text}`);
    },
  };
  return { s: style(tty && (io.env.NO_COLOR ?? '') === ''), tty, write, progress, check, sleep };
}

/** Start the sandbox, then run every step under its heading. */
async function runSteps(out: DemoOutput, signals: Signals, pauseMs: number): Promise<void> {
  out.progress.update('starting a private systemd user manager...');
  const sb = await startSandbox({ tmpPrefix: 'fleet-demo-' });
  signals.sandbox = sb;
  out.progress.done(`starting a private systemd user manager... ${out.s.ok('ok')} (pid ${sb.managerPid})`);
  out.check();
  const d = demoContext(out, sb);
  out.write(out.s.dim(`   sandbox: ${sb.root} (removed at the end; shown below as $SANDBOX, its home as ~)`));
  out.write(out.s.dim(`   roster:  manifests/canary.yaml (three stub agents on tmux socket ${SOCKET})`));
  installRoster(d);
  for (const [i, step] of DEMO_STEPS.entries()) {
    if (i > 0) await out.sleep(pauseMs);
    out.check();
    out.write();
    out.write(out.s.heading(`${i + 1}. ${step.title}`));
    out.write(out.s.dim(`   ${step.why}`));
    out.write();
    await step.run(d);
  }
}

/** The exit code for what ended the demo early, and the one line that says so. */
function failure(error: unknown, signals: Signals, out: DemoOutput, err: NodeJS.WriteStream): number {
  if (error instanceof Interrupted || signals.interrupted !== null) {
    return 128 + ((signals.interrupted ?? 'SIGINT') === 'SIGINT' ? 2 : 15);
  }
  const message = error instanceof Error ? error.message : String(error);
  if (signals.sandbox === null) {
    // The sandbox never came up (e.g. mount refused in a container): one line says why.
    out.progress.done('starting a private systemd user manager... failed');
    err.write(`demo: cannot run here: ${message.split('\n')[0] ?? message}\n`);
  } else {
    err.write(`\n${out.s.bad('demo failed:')} ${message}\n`);
  }
  return 1;
}

/** The demo proper. Returns the exit code: 0 done, 1 failed, 128+n interrupted by signal n. */
export async function runDemo(
  io: DemoIO = { out: process.stdout, err: process.stderr, env: process.env },
): Promise<number> {
  const staticReason = sandboxStaticReason();
  if (staticReason !== null) {
    io.err.write(`demo: cannot run here: ${staticReason}\n`);
    return 1;
  }
  const tty = io.out.isTTY === true;
  const pauseEnv = io.env.DEMO_PAUSE_MS;
  const pauseMs = pauseEnv !== undefined && /^\d+$/.test(pauseEnv) ? Number(pauseEnv) : tty ? 600 : 0;
  const s = style(tty && (io.env.NO_COLOR ?? '') === '');
  const signals = new Signals(io.err, (text) => s.bad(text));
  const out = demoOutput(io, signals);
  process.on('SIGINT', signals.on);
  process.on('SIGTERM', signals.on);
  let code = 0;
  try {
    await runSteps(out, signals, pauseMs);
  } catch (error) {
    code = failure(error, signals, out, io.err);
  } finally {
    if (signals.sandbox !== null) {
      const what = 'cleaning up: stopping the sandbox (manager, tmux servers, cgroups, temp dir)...';
      out.progress.update(what);
      await signals.sandbox.stop();
      out.progress.done(`${what} ${out.s.ok('done')}`);
    }
    process.off('SIGINT', signals.on);
    process.off('SIGTERM', signals.on);
  }
  if (code === 0) {
    out.write();
    out.write(out.s.ok('Demo done: the fleet was installed, broken three ways and healed by one reconcile.'));
  }
  return code;
}

// Run when executed (`node dist/dev/demo.js`), not when imported.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await runDemo();
}
