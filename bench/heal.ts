/**
 * Watch mode as an operator runs it: how soon a dead agent runs again, and what the watcher costs at rest.
 *
 * With N agents running in the sandbox, `node bin/fleet.js reconcile --watch --interval I --json` is started as a
 * child and its first cycle awaited (its JSON log: the first `plan`, and `applied` when that plan had actions).
 * Then, with nothing happening, its CPU (utime+stime+cutime+cstime from /proc over it and every descendant, so
 * helper processes such as tmux control clients count) and memory (VmRSS, VmHWM) over BENCH_IDLE_S seconds.
 * Then trials, alternating the two kinds, each on the next agent (so no agent dies twice while N >= 2 × trials,
 * and the crash-loop back-off, which delays only a repeated death, stays out of the figures):
 *  - pane: SIGKILL the pane's program (tmux's #{pane_pid}); remain-on-exit leaves a dead pane;
 *  - session: `tmux -L S kill-session -t =NAME`.
 * Each is timed from just before the kill to the first poll (every BENCH_HEAL_POLL_MS) that finds a live pane in
 * session NAME with a pane_pid other than the killed one; the figure is late by at most one poll. A trial gives up
 * after BENCH_HEAL_TIMEOUT_MS (a timeout); after BENCH_HEAL_MAX_TIMEOUTS timeouts in a row a kind's remaining
 * trials are skipped (a watcher that heals only at its resync would otherwise hold the run for many minutes).
 * Between trials BENCH_HEAL_GAP_MS lets the cycle that healed finish (apply, journal) before the next kill.
 * The watcher is stopped with SIGTERM at the end and awaited.
 */
import { readFileSync } from 'node:fs';
import { execFile, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import type { Sandbox } from '../src/dev/sandbox.js';
import {
  agentName,
  envNumber,
  FLEET_BIN,
  median,
  REPO,
  round1,
  round2,
  sleep,
  SOCKET,
  waitForSessions,
} from './common.js';
import { clockTicks, inFlight, memoryMiB, now, processTree, treeRssMiB, treeTicks } from './proc.js';

const execFileP = promisify(execFile);

export const HEAL = {
  sizes: (process.env.BENCH_HEAL_SIZES ?? '20,100')
    .split(',')
    .map((s) => Number(s.trim()))
    .filter((n) => Number.isInteger(n) && n > 0),
  trials: Math.round(envNumber('BENCH_HEAL_TRIALS', 10)),
  timeoutMs: envNumber('BENCH_HEAL_TIMEOUT_MS', 60_000),
  maxTimeouts: Math.round(envNumber('BENCH_HEAL_MAX_TIMEOUTS', 2)),
  pollMs: envNumber('BENCH_HEAL_POLL_MS', 25),
  gapMs: envNumber('BENCH_HEAL_GAP_MS', 1_000),
  idleSeconds: envNumber('BENCH_IDLE_S', 30),
  /** The watcher's resync interval: long, so a heal comes from watch noticing the death, not from a resync. */
  intervalSeconds: envNumber('BENCH_WATCH_INTERVAL', 3600),
};

type Kind = 'pane' | 'session';

export interface HealTrial {
  kind: Kind;
  agent: string;
  /** Kill to running again, ms; null on a timeout. */
  ms: number | null;
  /** Why the watcher planned in that window (the `trigger` of its `plan` log lines). */
  triggers: string[];
  /** On a timeout: what the watcher logged from the kill on (at most 40 lines), to see what it missed. */
  watcherLog?: Record<string, unknown>[];
  /** On a timeout: the session's panes then (`pid dead` per pane; null = no such session). */
  panesAtTimeout?: { pid: number; dead: boolean }[] | null;
  /** On a timeout: the session's own `pane-died` hook then, and the watcher's child processes (its tmux clients). */
  hookAtTimeout?: string;
  watcherChildren?: string[];
}

export interface HealKind {
  trials: number;
  timeouts: number;
  skipped: number;
  /** Median and max with timeouts counted as never healed (null = not healed within the timeout). */
  medianMs: number | null;
  maxMs: number | null;
}

export interface HealResult {
  n: number;
  settings: typeof HEAL;
  /** From spawning the watcher to the end of its first cycle. */
  firstCycleMs: number;
  idle: {
    seconds: number;
    cpuMs: number;
    /** Percent of one core over the idle window, the watcher and its descendants. */
    cpuPercent: number;
    /** Cycles the watcher ran during the idle window (its `plan` lines). */
    cycles: number;
    rssMiB: number;
    /** VmHWM: the watcher's peak RSS over its life (first cycle and trials included), read at the end. */
    peakRssMiB: number;
    /** RSS of the watcher and its descendants together, and how many processes that is. */
    treeRssMiB: number;
    processes: number;
  };
  pane: HealKind;
  session: HealKind;
  trials: HealTrial[];
  stop: { ms: number; code: number | null; signal: string | null };
}

interface LogLine {
  t: number;
  doc: Record<string, unknown>;
}

/** The pane of session NAME: its program's pid and whether it is dead; null when the session is not there. */
async function paneOf(sb: Sandbox, agent: string): Promise<{ pid: number; dead: boolean }[] | null> {
  try {
    const r = await execFileP(
      'tmux',
      ['-L', SOCKET, 'list-panes', '-t', `=${agent}`, '-F', '#{pane_pid} #{pane_dead}'],
      {
        env: sb.env,
      },
    );
    return r.stdout
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => {
        const [pid, dead] = l.split(' ');
        return { pid: Number(pid), dead: dead === '1' };
      });
  } catch {
    return null;
  }
}

function kindStats(trials: HealTrial[], kind: Kind, skipped: number): HealKind {
  const mine = trials.filter((t) => t.kind === kind);
  const ms = mine.map((t) => t.ms ?? Infinity);
  const finite = (x: number): number | null => (Number.isFinite(x) ? round1(x) : null);
  return {
    trials: mine.length,
    timeouts: mine.filter((t) => t.ms === null).length,
    skipped,
    medianMs: ms.length === 0 ? null : finite(median(ms)),
    maxMs: ms.length === 0 ? null : finite(Math.max(...ms)),
  };
}

/** What a caller may change for one measurement: `trials: 0` measures the idle watcher only. */
export interface HealOptions {
  trials?: number;
  idleSeconds?: number;
}

export async function measureHeal(
  sb: Sandbox,
  n: number,
  log: (s: string) => void,
  opts: HealOptions = {},
): Promise<HealResult> {
  const settings = { ...HEAL, ...opts };
  const t0 = now();
  const watcher = spawn(
    process.execPath,
    [FLEET_BIN, 'reconcile', '--watch', '--interval', String(HEAL.intervalSeconds), '--json'],
    { env: { ...sb.env, NO_COLOR: '1' }, cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const pid = watcher.pid;
  if (pid === undefined) throw new Error('could not start the watcher');
  inFlight.add(pid);
  const lines: LogLine[] = [];
  let stderr = '';
  let exit: { code: number | null; signal: string | null } | null = null;
  const exited = new Promise<void>((resolveExit) => {
    watcher.on('exit', (code, signal) => {
      exit = { code, signal };
      inFlight.delete(pid);
      resolveExit();
    });
  });
  createInterface({ input: watcher.stdout }).on('line', (line) => {
    try {
      lines.push({ t: now(), doc: JSON.parse(line) as Record<string, unknown> });
    } catch {
      lines.push({ t: now(), doc: { event: 'text', line } });
    }
  });
  watcher.stderr.on('data', (b: Buffer) => {
    stderr = (stderr + b.toString('utf8')).slice(-4000);
  });
  const tail = (): string =>
    `${lines
      .slice(-8)
      .map((l) => JSON.stringify(l.doc))
      .join('\n')}\n${stderr.trim()}`;

  /** Index of the first log line at or after `from` that matches, waiting up to timeoutMs. */
  const waitLine = async (
    from: number,
    match: (d: Record<string, unknown>) => boolean,
    timeoutMs: number,
  ): Promise<number> => {
    const deadline = now() + timeoutMs;
    for (;;) {
      const i = lines.findIndex((l, k) => k >= from && match(l.doc));
      if (i >= 0) return i;
      if (exit !== null) throw new Error(`the watcher exited (${JSON.stringify(exit)}):\n${tail()}`);
      if (now() > deadline) throw new Error(`the watcher's first cycle did not finish in time:\n${tail()}`);
      await sleep(20);
    }
  };

  try {
    const firstPlan = await waitLine(0, (d) => d.event === 'plan' || d.event === 'cycle-failed', 120_000);
    const first = lines[firstPlan]?.doc;
    if (first?.event === 'cycle-failed') throw new Error(`the watcher's first cycle failed:\n${tail()}`);
    if (typeof first?.actions === 'number' && first.actions > 0) {
      await waitLine(firstPlan, (d) => d.event === 'applied' || d.event === 'cycle-failed', 120_000);
    }
    const firstCycleMs = now() - t0;
    await waitForSessions(sb, n);
    log(`    watcher up (first cycle ${Math.round(firstCycleMs)} ms); idle for ${settings.idleSeconds} s`);
    await sleep(2_000); // start-up's tail (JIT, event clients attaching) is not idling

    const idleFrom = lines.length;
    const ticks0 = treeTicks(pid);
    const i0 = now();
    await sleep(settings.idleSeconds * 1000);
    const ticks1 = treeTicks(pid);
    const idleMs = now() - i0;
    const idleCpuMs = ((ticks1 - ticks0) / clockTicks()) * 1000;
    const mem = memoryMiB(pid);
    const idle = {
      seconds: round1(idleMs / 1000),
      cpuMs: round1(idleCpuMs),
      cpuPercent: round2((idleCpuMs / idleMs) * 100),
      cycles: lines.slice(idleFrom).filter((l) => l.doc.event === 'plan').length,
      rssMiB: round1(mem?.rss ?? NaN),
      peakRssMiB: NaN,
      treeRssMiB: round1(treeRssMiB(pid)),
      processes: processTree(pid).length,
    };

    const trials: HealTrial[] = [];
    const skipped: Record<Kind, number> = { pane: 0, session: 0 };
    const streak: Record<Kind, number> = { pane: 0, session: 0 };
    for (let i = 0; i < 2 * settings.trials; i++) {
      const kind: Kind = i % 2 === 0 ? 'pane' : 'session';
      if (streak[kind] >= HEAL.maxTimeouts) {
        skipped[kind]++;
        continue;
      }
      const agent = agentName(i % n);
      const before = (await paneOf(sb, agent))?.find((p) => !p.dead);
      if (before === undefined) throw new Error(`${agent} is not running before its trial:\n${tail()}`);
      const from = lines.length;
      const k0 = now();
      if (kind === 'pane') process.kill(before.pid, 'SIGKILL');
      else await execFileP('tmux', ['-L', SOCKET, 'kill-session', '-t', `=${agent}`], { env: sb.env });
      let ms: number | null = null;
      while (now() - k0 < HEAL.timeoutMs) {
        const panes = await paneOf(sb, agent);
        if (panes?.some((p) => !p.dead && p.pid !== before.pid)) {
          ms = now() - k0;
          break;
        }
        if (exit !== null) throw new Error(`the watcher exited during a trial:\n${tail()}`);
        await sleep(HEAL.pollMs);
      }
      const triggers = lines
        .slice(from)
        .filter((l) => l.doc.event === 'plan')
        .map((l) => String(l.doc.trigger));
      trials.push({
        kind,
        agent,
        ms: ms === null ? null : round1(ms),
        triggers,
        ...(ms === null
          ? {
              watcherLog: lines.slice(from, from + 40).map((l) => l.doc),
              panesAtTimeout: await paneOf(sb, agent),
              hookAtTimeout: await execFileP(
                'tmux',
                ['-L', SOCKET, 'show-hooks', '-t', `=${agent}:`, 'pane-died'],
                { env: sb.env },
              ).then(
                (r) => r.stdout.trim(),
                (e: Error) => `error: ${e.message.split('\n')[0]}`,
              ),
              watcherChildren: processTree(pid)
                .filter((p) => p.pid !== pid)
                .map((p) => {
                  try {
                    return readFileSync(`/proc/${p.pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
                  } catch {
                    return `${p.pid} (gone)`;
                  }
                }),
            }
          : {}),
      });
      streak[kind] = ms === null ? streak[kind] + 1 : 0;
      log(
        `    ${kind} ${agent}: ${ms === null ? `timeout (${HEAL.timeoutMs} ms)` : `${Math.round(ms)} ms`}${triggers.length > 0 ? ` [${triggers.join(', ')}]` : ''}`,
      );
      await sleep(HEAL.gapMs);
    }
    idle.peakRssMiB = round1(memoryMiB(pid)?.peak ?? NaN);

    const s0 = now();
    watcher.kill('SIGTERM');
    const stopped = await Promise.race([exited.then(() => true), sleep(30_000).then(() => false)]);
    if (!stopped) {
      watcher.kill('SIGKILL');
      await exited;
    }
    const stopMs = now() - s0;
    const ended = exit as { code: number | null; signal: string | null } | null;
    return {
      n,
      settings,
      firstCycleMs: round1(firstCycleMs),
      idle,
      pane: kindStats(trials, 'pane', skipped.pane),
      session: kindStats(trials, 'session', skipped.session),
      trials,
      stop: {
        ms: round1(stopMs),
        code: ended?.code ?? null,
        signal: stopped ? (ended?.signal ?? null) : 'SIGKILL',
      },
    };
  } finally {
    if (exit === null) {
      watcher.kill('SIGKILL');
      await exited;
    }
  }
}
