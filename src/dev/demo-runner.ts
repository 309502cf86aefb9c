/**
 * What the demos (`npm run demo`, src/dev/demo.ts; `npm run demo:hosts`, src/dev/demo-hosts.ts) share around
 * their steps: styled output, the pause between steps, Ctrl-C/SIGTERM handling, and a cleanup of everything the
 * demo started that runs on success, failure and signals alike, in reverse order of starting.
 */
import { style, Interrupted, type DemoOutput } from './demo-context.js';

export interface DemoIO {
  out: NodeJS.WriteStream;
  err: NodeJS.WriteStream;
  env: NodeJS.ProcessEnv;
}

/** Something the demo started and must stop before it exits. */
export interface DemoResource {
  /** What the cleanup line says it does, e.g. `stopping the sandbox (manager, tmux servers, cgroups, temp dir)`. */
  cleanup: string;
  /** Where it may be left when the user leaves without cleaning up (a third Ctrl-C). */
  where: string;
  stop(): Promise<void>;
  /** A second Ctrl-C: stop waiting for a clean exit (e.g. SIGKILL a manager). */
  force?(): void;
}

export interface DemoStep<C> {
  title: string;
  why: string;
  run(d: C): Promise<void>;
}

export interface DemoScript<C> {
  /** Prefix of the one line said when the demo cannot run here (`demo`, `demo:hosts`). */
  name: string;
  /** Why the demo cannot run on this machine, from cheap checks before anything starts; null when it can. */
  staticReason(): string | null;
  /**
   * Start what the steps need, pushing each thing onto `resources` as soon as it exists (so a failure or a
   * signal halfway still stops it). A failure here means "cannot run here", said in one line.
   */
  start(out: DemoOutput, resources: DemoResource[]): Promise<C>;
  steps: readonly DemoStep<C>[];
  /** The last line, when every step passed. */
  done: string;
}

/** The demo's signals: the first stops it and cleans up; a second stops waiting for clean exits; a third leaves. */
class Signals {
  interrupted: NodeJS.Signals | null = null;
  wake: (() => void) | null = null;
  private count = 0;

  constructor(
    private readonly err: NodeJS.WriteStream,
    private readonly bad: (s: string) => string,
    private readonly resources: readonly DemoResource[],
  ) {}

  readonly on = (signal: NodeJS.Signals): void => {
    this.count += 1;
    if (this.count === 1) {
      this.interrupted = signal;
      this.err.write(`\n${this.bad(`${signal}:`)} stopping the demo and cleaning up (again to force)\n`);
      this.wake?.();
    } else if (this.count === 2) {
      this.err.write(`${this.bad(`${signal}:`)} forcing: killing what the demo started\n`);
      for (const r of this.resources) r.force?.();
    } else {
      const where = this.resources.map((r) => r.where).join(', ') || '/tmp';
      this.err.write(`${this.bad(`${signal}:`)} leaving now; things may be left in ${where}\n`);
      // A development tool with its own entry point, not a `fleet` command: nothing above it to return to.
      process.exit(128 + (signal === 'SIGINT' ? 2 : 15));
    }
  };
}

/** Styled output and a sleep that a signal cuts short. */
function demoOutput(io: DemoIO, signals: Signals): DemoOutput & { pending(): string | null } {
  const tty = io.out.isTTY === true;
  let pending: string | null = null;
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
      pending = text;
      if (tty) io.out.write(`\r\x1b[K   ${text}`);
    },
    done(text: string): void {
      pending = null;
      if (tty) io.out.write(`\r\x1b[K`);
      write(`   ${text}`);
    },
  };
  const s = style(tty && (io.env.NO_COLOR ?? '') === '');
  return { s, tty, write, progress, check, sleep, pending: () => pending };
}

/** Every step under its numbered heading, with a pause between steps (for a reader at a terminal). */
async function runSteps<C>(out: DemoOutput, ctx: C, steps: readonly DemoStep<C>[], pauseMs: number) {
  for (const [i, step] of steps.entries()) {
    if (i > 0) await out.sleep(pauseMs);
    out.check();
    out.write();
    out.write(out.s.heading(`${i + 1}. ${step.title}`));
    out.write(out.s.dim(`   ${step.why}`));
    out.write();
    await step.run(ctx);
  }
}

/** Stop what was started, newest first; one failing stop does not keep the others from running. */
async function cleanUp(out: DemoOutput, err: NodeJS.WriteStream, resources: DemoResource[]): Promise<void> {
  for (const r of [...resources].reverse()) {
    const what = `cleaning up: ${r.cleanup}...`;
    out.progress.update(what);
    try {
      await r.stop();
      out.progress.done(`${what} ${out.s.ok('done')}`);
    } catch (error) {
      out.progress.done(`${what} ${out.s.bad('failed')}`);
      err.write(`cleanup failed: ${error instanceof Error ? error.message : String(error)}\n`);
    }
  }
}

/** Run a demo script. Returns the exit code: 0 done, 1 failed, 128+n interrupted by signal n. */
export async function runDemoScript<C>(io: DemoIO, script: DemoScript<C>): Promise<number> {
  const staticReason = script.staticReason();
  if (staticReason !== null) {
    io.err.write(`${script.name}: cannot run here: ${staticReason}\n`);
    return 1;
  }
  const tty = io.out.isTTY === true;
  const pauseEnv = io.env.DEMO_PAUSE_MS;
  const pauseMs = pauseEnv !== undefined && /^\d+$/.test(pauseEnv) ? Number(pauseEnv) : tty ? 600 : 0;
  const resources: DemoResource[] = [];
  const signals = new Signals(
    io.err,
    (text) => style(tty && (io.env.NO_COLOR ?? '') === '').bad(text),
    resources,
  );
  const out = demoOutput(io, signals);
  process.on('SIGINT', signals.on);
  process.on('SIGTERM', signals.on);
  let code = 0;
  let started = false;
  try {
    const ctx = await script.start(out, resources);
    started = true;
    await runSteps(out, ctx, script.steps, pauseMs);
  } catch (error) {
    if (error instanceof Interrupted || signals.interrupted !== null) {
      code = 128 + ((signals.interrupted ?? 'SIGINT') === 'SIGINT' ? 2 : 15);
    } else {
      code = 1;
      const message = error instanceof Error ? error.message : String(error);
      const pending = out.pending();
      if (pending !== null) out.progress.done(`${pending} failed`);
      // What the demo needs did not come up (e.g. mount refused in a container): one line says why.
      if (!started) io.err.write(`${script.name}: cannot run here: ${message.split('\n')[0] ?? message}\n`);
      else io.err.write(`\n${out.s.bad('demo failed:')} ${message}\n`);
    }
  } finally {
    await cleanUp(out, io.err, resources);
    process.off('SIGINT', signals.on);
    process.off('SIGTERM', signals.on);
  }
  if (code === 0) {
    out.write();
    out.write(out.s.ok(script.done));
  }
  return code;
}
