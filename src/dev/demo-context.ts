/**
 * What every step of the demo (src/dev/demo-steps.ts) works with: the sandbox, output (styled, indented, with the
 * sandbox's paths shortened), the real `fleet` CLI, `fleet ps` polling, and a sleep that a signal cuts short.
 */
import { join } from 'node:path';
import type { RunResult } from '../exec.js';
import { packageRoot } from '../paths.js';
import type { Sandbox } from './sandbox.js';

export const SOCKET = 'mosaic-fleet';
export const AGENTS = ['lead', 'coder0', 'reviewer0'] as const;
const WAIT_TIMEOUT_MS = 30_000;
const POLL_MS = 250;
/** Lines of a new file's diff kept in the dry run (the rest is counted). */
const CREATE_DIFF_LINES = 4;
/** Lines of a changed file's diff kept in the dry run. */
const UPDATE_DIFF_LINES = 24;
export const BAD_FLAGS = ['DRIFT', 'BOOT-ENABLE', 'STALE', 'DEAD', 'MISSING'];

/** Raised out of whatever the demo was doing when SIGINT/SIGTERM arrives. */
export class Interrupted extends Error {
  constructor(readonly signal: NodeJS.Signals) {
    super(`interrupted by ${signal}`);
  }
}

export interface PsAgent {
  name: string;
  flags: string[];
  heartbeat: { health: string };
}

export interface Style {
  heading(s: string): string;
  dim(s: string): string;
  ok(s: string): string;
  bad(s: string): string;
}

export function style(color: boolean): Style {
  const wrap =
    (open: string) =>
    (s: string): string =>
      color ? `\x1b[${open}m${s}\x1b[0m` : s;
  return { heading: wrap('1;36'), dim: wrap('2'), ok: wrap('32'), bad: wrap('1;31') };
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Long diffs trimmed. In plan text a diff is the block of 4-space-indented lines under an action line; under
 * `+ create` it is a whole new file. `repeat`: the plan was shown already (the apply prints it again), so only
 * the action lines stay.
 */
export function trimPlanDiffs(text: string, repeat = false): string {
  const out: string[] = [];
  let block: string[] = [];
  let limit = UPDATE_DIFF_LINES;
  const flush = (): void => {
    const keep = repeat ? 0 : limit;
    out.push(...block.slice(0, keep));
    const more = block.length - keep;
    if (more > 0) {
      out.push(repeat ? `    ... (${more}-line diff, shown in the dry run)` : `    ... (${more} more lines)`);
    }
    block = [];
  };
  for (const line of text.split('\n')) {
    if (line.startsWith('    ')) {
      block.push(line);
      continue;
    }
    flush();
    if (line.trim() !== '') limit = line.startsWith('+ create ') ? CREATE_DIFF_LINES : UPDATE_DIFF_LINES;
    out.push(line);
  }
  flush();
  return out.join('\n');
}

/** Progress on one line, rewritten in place on a TTY; a log (not a TTY) gets only the final line. */
export interface Progress {
  update(text: string): void;
  done(text: string): void;
}

/** Output and pacing, before the sandbox exists. */
export interface DemoOutput {
  s: Style;
  tty: boolean;
  write(text?: string): void;
  progress: Progress;
  /** Throws Interrupted once a signal came. */
  check(): void;
  /** Sleep that a signal cuts short. */
  sleep(ms: number): Promise<void>;
}

export interface DemoContext extends DemoOutput {
  sb: Sandbox;
  /** The sandbox's home shown as ~ and the rest of its temp dir as $SANDBOX: paths a reader can take in. */
  shorten(text: string): string;
  indent(text: string): string;
  showCommand(argv: readonly string[]): void;
  /** Run `fleet ARGS`, show its output indented; a non-zero exit fails the demo. */
  fleet(args: readonly string[], shape?: (t: string) => string): Promise<RunResult>;
  /** Run `fleet ARGS` and show nothing (the caller judges the exit code). */
  fleetQuiet(args: readonly string[]): Promise<RunResult>;
  /** Show `fleet ARGS` and what it printed, run earlier with fleetQuiet (e.g. at once on several hosts). */
  present(args: readonly string[], r: RunResult, shape?: (t: string) => string): RunResult;
  ps(): Promise<Map<string, PsAgent>>;
  /** Poll `fleet ps --json` until `ready` holds for each of `names`, showing how many do. */
  waitFor(label: string, ready: (a: PsAgent) => boolean, names?: readonly string[]): Promise<void>;
}

export function healthy(a: PsAgent): boolean {
  return a.heartbeat.health === 'healthy' && !a.flags.some((f) => BAD_FLAGS.includes(f));
}

function indent(text: string): string {
  return text
    .replace(/\n+$/, '')
    .split('\n')
    .map((l) => (l === '' ? '' : `   ${l}`))
    .join('\n');
}

export interface ContextOptions {
  /** The prompt shown before each command: `$`, or a host's name where several sandboxes act as hosts. */
  prompt?: string;
  /** How the sandbox's temp dir is shown (its home is always `~`). */
  rootName?: string;
  /** Extra environment for every `fleet` run (e.g. the register's DSN). */
  env?: Record<string, string>;
}

/** The demo's view of the sandbox: its paths shortened, the real CLI run inside it. */
export function demoContext(out: DemoOutput, sb: Sandbox, opts: ContextOptions = {}): DemoContext {
  const home = sb.env.HOME ?? join(sb.root, 'home');
  const rootPattern = new RegExp(`(?<=^|[\\s'"(=])[ab]?${escapeRegExp(sb.root)}`, 'gm');
  const homePattern = new RegExp(`(?<=^|[\\s'"(=])[ab]?${escapeRegExp(home)}`, 'gm');
  const rootName = opts.rootName ?? '$SANDBOX';
  const shorten = (text: string): string =>
    text.replace(homePattern, '~').replace(rootPattern, () => rootName);
  const prompt = opts.prompt ?? '$';
  const showCommand = (argv: readonly string[]): void =>
    out.write(out.s.dim(`   ${prompt} ${argv.join(' ')}`));
  const fleetBin = join(packageRoot(), 'bin', 'fleet.js');
  const fleetRaw = (args: readonly string[]): Promise<RunResult> =>
    sb.run([process.execPath, fleetBin, ...args], {
      reject: false,
      timeoutMs: 120_000,
      cwd: home,
      // The CLI writes to a pipe here; NO_COLOR keeps its choice the same whatever the caller set.
      env: { ...opts.env, NO_COLOR: '1' },
    });
  const showResult = (args: readonly string[], r: RunResult, shape: (t: string) => string): RunResult => {
    out.write(indent(shape(shorten(r.stdout + (r.stderr === '' ? '' : `\n${r.stderr}`)))));
    if (r.exitCode !== 0) throw new Error(`\`fleet ${args.join(' ')}\` exited with ${r.exitCode}`);
    return r;
  };
  const ctx: DemoContext = {
    ...out,
    sb,
    shorten,
    indent,
    showCommand,
    fleet: async (args, shape = (t) => t) => {
      out.check();
      showCommand(['fleet', ...args]);
      const r = await fleetRaw(args);
      // Interrupted meanwhile: the output of a command cut short by the cleanup would only confuse.
      out.check();
      return showResult(args, r, shape);
    },
    fleetQuiet: fleetRaw,
    present: (args, r, shape = (t) => t) => {
      out.check();
      showCommand(['fleet', ...args]);
      return showResult(args, r, shape);
    },
    ps: async () => {
      const r = await fleetRaw(['ps', '--json']);
      if (r.exitCode !== 0)
        throw new Error(`\`fleet ps --json\` exited with ${r.exitCode}: ${r.stderr.trim()}`);
      const doc = JSON.parse(r.stdout) as { agents: PsAgent[] };
      return new Map(doc.agents.map((a) => [a.name, a]));
    },
    waitFor: (label, ready, names = AGENTS) => waitFor(ctx, label, ready, names),
  };
  return ctx;
}

async function waitFor(
  ctx: DemoContext,
  label: string,
  ready: (a: PsAgent) => boolean,
  names: readonly string[],
): Promise<void> {
  const deadline = Date.now() + WAIT_TIMEOUT_MS;
  for (;;) {
    ctx.check();
    const rows = await ctx.ps();
    const n = names.filter((name) => {
      const row = rows.get(name);
      return row !== undefined && ready(row);
    }).length;
    const line = `${label}... ${n}/${names.length}`;
    if (n === names.length) {
      ctx.progress.done(line);
      return;
    }
    ctx.progress.update(line);
    if (Date.now() > deadline) {
      ctx.progress.done(line);
      const state = names.map((name) => {
        const row = rows.get(name);
        return `${name}: ${row === undefined ? 'not listed' : `${row.flags.join(',') || 'ok'}, heartbeat ${row.heartbeat.health}`}`;
      });
      throw new Error(`${label}: not done after ${WAIT_TIMEOUT_MS / 1000} s (${state.join('; ')})`);
    }
    await ctx.sleep(POLL_MS);
  }
}
