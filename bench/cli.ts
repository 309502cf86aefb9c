/**
 * The CLI as the benchmark runs it: `fleet ARGS` as a process in the sandbox (wall, CPU, bytes read, the commands
 * it spawned), and the rounds that measure several processes beside `node -e 0` (bench/run.ts explains the method).
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Sandbox } from '../src/dev/sandbox.js';
import type { RecordedCommand } from '../src/exec.js';
import { FLEET_BIN, median, REPO, round2, stat, waitForSessions, writeRoster, type Stat } from './common.js';
import { measure, type Measured } from './proc.js';

export interface CliRun {
  ms: number;
  cpuMs: number;
  code: number;
  stdout: string;
  stderr: string;
  /** Bytes the process and its children read (rchar: every read, page cache or not); null when unknown. */
  readBytes: number | null;
  commands: RecordedCommand[];
}

let logSeq = 0;

/** Run `node bin/fleet.js ARGS` in the sandbox environment; wall time includes node's start-up, as for an operator. */
export async function fleet(
  sb: Sandbox,
  args: string[],
  timeoutMs = 300_000,
  env: Record<string, string> = {},
): Promise<CliRun> {
  const logFile = join(sb.root, `bench-commands-${logSeq++}.jsonl`);
  const r = await measure([process.execPath, FLEET_BIN, ...args], {
    env: { ...sb.env, ...env, FLEET_COMMAND_LOG: logFile, NO_COLOR: '1' },
    cwd: REPO,
    timeoutMs,
  });
  const commands = existsSync(logFile)
    ? readFileSync(logFile, 'utf8')
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) => JSON.parse(l) as RecordedCommand)
    : [];
  rmSync(logFile, { force: true });
  return {
    ms: r.wallMs,
    cpuMs: r.cpuMs,
    code: r.code,
    stdout: r.stdout,
    stderr: r.stderr,
    readBytes: r.readBytes,
    commands,
  };
}

/** The commands a run issued, one line each, long unit lists cut short (the JSON keeps them readable). */
export function commandLines(run: CliRun): string[] {
  return run.commands.map((c) => {
    const shown = c.argv.map((a) => (a.includes('#{') ? "'<format>'" : a));
    const line =
      shown.length > 12 ? `${shown.slice(0, 10).join(' ')} … (${shown.length} words)` : shown.join(' ');
    return `${c.kind === 'mutate' ? 'M' : 'R'} ${line}`;
  });
}

export function mutating(run: CliRun): number {
  return run.commands.filter((c) => c.kind === 'mutate').length;
}

export function expectCode(
  run: { code: number; stderr: string; stdout: string },
  code: number,
  what: string,
): void {
  if (run.code !== code) {
    throw new Error(
      `${what}: exit ${run.code}, expected ${code}\n${run.stderr.trim()}\n${run.stdout.slice(-2000)}`,
    );
  }
}

/** A bare process: `node -e 0` (the start-up floor DOMAIN.md section 8 quotes). */
export async function nodeFloor(sb: Sandbox): Promise<Measured> {
  const r = await measure([process.execPath, '-e', '0'], { env: sb.env });
  expectCode(r, 0, 'node -e 0');
  return r;
}

/** A process measured in the rounds: wall time (the Stat's own fields), CPU, both as ratios to `node -e 0`. */
export type ProcTimes = Stat & {
  cpu: Stat;
  /** median wall / median wall of `node -e 0` in the same rounds. */
  ratio: number;
  /** median CPU / median CPU of `node -e 0` in the same rounds. */
  cpuRatio: number;
};

export async function repeat<T>(reps: number, fn: () => Promise<T>): Promise<{ ms: number[]; values: T[] }> {
  await fn(); // warm-up: first-touch page cache, the manager's first answer after a burst, node's JIT
  const ms: number[] = [];
  const values: T[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    values.push(await fn());
    ms.push(performance.now() - t0);
  }
  return { ms, values };
}

/** What one process of the rounds reported. */
export interface Sample {
  wall: number;
  cpu: number;
}

export interface RoundItem {
  key: string;
  /** Which measured rounds run it (default: all). */
  rounds?: ReadonlySet<number>;
  /** Runs the process, checks its result, and keeps what it must (only when `keep`). */
  run: (keep: boolean) => Promise<Sample>;
}

/**
 * Every item once per round, the order rotated each round, after one unmeasured warm-up round: the floor is
 * measured beside the rest, so a ratio compares processes that ran at the same moments.
 */
export async function rounds(reps: number, items: RoundItem[]): Promise<Map<string, Sample[]>> {
  const out = new Map<string, Sample[]>(items.map((i) => [i.key, []]));
  for (let round = -1; round < reps; round++) {
    const shift = Math.max(0, round) % items.length;
    for (const item of [...items.slice(shift), ...items.slice(0, shift)]) {
      if (round >= 0 && item.rounds !== undefined && !item.rounds.has(round)) continue;
      const s = await item.run(round >= 0);
      if (round >= 0) out.get(item.key)?.push(s);
    }
  }
  return out;
}

export function procTimes(samples: Sample[], floor: Sample[]): ProcTimes {
  const wall = samples.map((s) => s.wall);
  const cpu = samples.map((s) => s.cpu);
  return {
    ...stat(wall),
    cpu: stat(cpu),
    ratio: round2(median(wall) / median(floor.map((s) => s.wall))),
    cpuRatio: round2(median(cpu) / median(floor.map((s) => s.cpu))),
  };
}

/** Apply the roster as it is now (a cold or changed reconcile) and wait until `n` agents run. */
export async function applyRoster(sb: Sandbox, n: number, what: string): Promise<CliRun> {
  const r = await fleet(sb, ['reconcile', '--json']);
  expectCode(r, 0, what);
  await waitForSessions(sb, n);
  return r;
}

/** No agents any more: a roster with `agents: []` and `fleet reconcile --prune`. */
export async function pruneAll(sb: Sandbox): Promise<void> {
  await writeRoster(sb, 0);
  expectCode(await fleet(sb, ['reconcile', '--prune', '--json']), 0, 'prune');
}

/** A warm `fleet reconcile --json` that must be a no-op: exit 0 and no action. */
export async function noop(sb: Sandbox, what: string, env: Record<string, string> = {}): Promise<CliRun> {
  const r = await fleet(sb, ['reconcile', '--json'], 300_000, env);
  expectCode(r, 0, what);
  const actions = (JSON.parse(r.stdout) as { actions: unknown[] }).actions.length;
  if (actions !== 0)
    throw new Error(`${what}: ${actions} actions, expected a no-op\n${r.stdout.slice(0, 2000)}`);
  return r;
}
