/**
 * Benchmarks: what observation, planning, the CLI and watch mode cost as the fleet grows (docs/benchmarks.md).
 *
 * The claim under test: observing and planning spawn a constant number of processes whatever the fleet's size,
 * and stay fast at hundreds of agents; a no-op costs little more than starting node; watch mode brings a dead
 * agent back within a second (issue 14). Timings live here, never in tests: a 2-core machine shared with other
 * work is too noisy for a timed assertion, but a table of medians over repeated runs shows the shape.
 *
 * One private systemd user manager + tmux (the sandbox) for the whole run. For each fleet size N: write a roster
 * of N stub agents and run the real `fleet reconcile` (a cold apply of N agents), measure observe/plan/CLI with
 * repeated runs, compare with the seed's per-agent probing, time watch mode's healing, then prune the fleet away
 * (also measured) so the next size starts from no agents again.
 *
 * Method:
 * - Every process (the CLI, `node -e 0`, the seed's ps) runs under a bash wrapper (bench/proc.ts) that reports
 *   its wall time and its CPU time (user + sys of the process and the descendants it reaped, from getrusage via
 *   bash's `times`). What systemd and tmux do on a command's behalf is not its CPU; for the cold apply and the
 *   prune the sandbox manager's cgroup (systemd, the units, the tmux servers they start) is shown beside it.
 * - The CLI processes are measured in rounds: each round runs `node -e 0`, `fleet --version`, validate, dry-run,
 *   ps, a warm reconcile and the seed's ps once, in an order rotated per round, after one unmeasured warm-up
 *   round. So the floor is measured at the same moments as the rest, and every figure is also given as a ratio
 *   to that size's `node -e 0` (median / median), which load drift moves far less than the absolute numbers.
 * - The seed's ps as a process: bench/seed-ps.mjs (plain node, no compile step), two spawns per agent through
 *   execa, against `fleet ps --json`.
 * - plan() at BENCH_PLAN_N (1000) agents, in-process, on a snapshot widened from the largest size measured
 *   (bench/synth.ts explains how, and why not 1000 real agents).
 * - Watch mode's heal latency, idle CPU and RSS at BENCH_HEAL_SIZES (bench/heal.ts explains the trials).
 * - The issues' own fleets, after the sizes, each set up and pruned in the same sandbox: spend (bench/spend.ts:
 *   a no-op with 100 agents' metered history against none), alerts (bench/alerts.ts: watch mode at rest with
 *   alerts for 100 agents against none), register (bench/register.ts: 50 hosts × 20 agents in one PostgreSQL).
 *
 *   npm run bench                      build, then run everything (sizes 1, 10, 100, 250; heal at 20, 100)
 *   BENCH_SIZES=1,10 BENCH_REPS=5 ...  fewer sizes / repetitions for a quick look
 *   BENCH_PARTS=cli,heal ...           only some parts: observe, plan, cli, seed, heal, spend, alerts, register
 *                                      (default: all; BENCH_ONLY is the same)
 *   BENCH_HEAL_SIZES=20 BENCH_WATCH_INTERVAL=5 BENCH_HEAL_TIMEOUT_MS=10000 BENCH_IDLE_S=10 ...   watch mode knobs
 *
 * A quick look in under a minute: BENCH_PARTS=cli BENCH_SIZES=10 BENCH_REPS=5, or BENCH_PARTS=heal
 * BENCH_HEAL_SIZES=20 BENCH_HEAL_TRIALS=5 BENCH_IDLE_S=10, or BENCH_ONLY=spend BENCH_SPEND_N=9
 * BENCH_SPEND_TURNS=100 BENCH_SPEND_REPS=2 (each part's file names its knobs).
 *
 * Results: a table on stdout and `.bench-out/results.json` (gitignored).
 */
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, loadavg, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { loadAssets } from '../src/assets.js';
import { observeFor, planInput } from '../src/engine/session.js';
import { createRunner, type Runner } from '../src/exec.js';
import { loadDesired } from '../src/manifest/load.js';
import type { Observed } from '../src/model/observed.js';
import { observe } from '../src/observe/index.js';
import { readDirFiles, readHeartbeats, readState, readTree } from '../src/observe/files.js';
import { readProcessTable } from '../src/observe/proc.js';
import { observeSystemd } from '../src/observe/systemd.js';
import { openManagerBus } from '../src/observe/systemd-bus.js';
import { attachProcesses, observeSocket } from '../src/observe/tmux.js';
import { hostContext } from '../src/paths.js';
import { plan } from '../src/plan/planner.js';
import { startSandbox, type Sandbox } from '../src/dev/sandbox.js';
import {
  agentName,
  envNumber,
  envSizes,
  REPO,
  round1,
  round2,
  roster,
  rosterPath,
  sleep,
  SOCKET,
  stat,
  waitForSessions,
  writeRoster,
  type Stat,
} from './common.js';
import { HEAL, measureHeal, type HealKind, type HealResult } from './heal.js';
import {
  commandLines,
  expectCode,
  fleet,
  mutating,
  nodeFloor,
  procTimes,
  repeat,
  rounds,
  type CliRun,
  type ProcTimes,
  type Sample,
} from './cli.js';
import { cgroupCpuMs, inFlight, measure } from './proc.js';
import { widenObserved } from './synth.js';
import { alertsReport, alertsTargets, measureAlerts, type AlertsResult } from './alerts.js';
import { measureRegister, registerReport, registerTargets, type RegisterResult } from './register.js';
import { measureSpend, spendReport, spendTargets, type SpendResult } from './spend.js';

const OUT_DIR = join(REPO, '.bench-out');
const SEED_PS = join(REPO, 'bench', 'seed-ps.mjs');

const SIZES = envSizes('BENCH_SIZES', '1,10,100,250');
const REPS = Math.round(envNumber('BENCH_REPS', 10));
/** The seed's probing costs two spawns per agent; fewer repetitions at large N keep the run short. */
const seedReps = (n: number): number => (n >= 250 ? Math.min(REPS, 3) : n >= 100 ? Math.min(REPS, 5) : REPS);
/** Stub heartbeat interval: real agents are mostly idle; a 1 s beat from 250 bash loops would be the benchmark. */
const HEARTBEAT_SECONDS = '30';
/** The planner alone, at a fleet size the sandbox does not run (issue 14's target: <= 30 ms at 1000). */
const PLAN_N = Math.round(envNumber('BENCH_PLAN_N', 1000));

const ALL_PARTS = ['observe', 'plan', 'cli', 'seed', 'heal', 'spend', 'alerts', 'register'] as const;
type Part = (typeof ALL_PARTS)[number];
const PARTS: ReadonlySet<Part> = (() => {
  const raw = (process.env.BENCH_PARTS ?? process.env.BENCH_ONLY ?? '').trim();
  if (raw === '' || raw === 'all') return new Set(ALL_PARTS);
  const asked = raw.split(',').map((s) => s.trim());
  const unknown = asked.filter((p) => !(ALL_PARTS as readonly string[]).includes(p));
  if (unknown.length > 0) {
    throw new Error(`BENCH_PARTS: unknown part(s) ${unknown.join(', ')} (known: ${ALL_PARTS.join(', ')})`);
  }
  return new Set(asked as Part[]);
})();
const SIZE_PARTS = (['observe', 'plan', 'cli', 'seed'] as const).some((p) => PARTS.has(p));
/** The snapshot plan() at PLAN_N is widened from: the largest size measured (at least 10, so lists hold many). */
const PLAN_SOURCE = Math.max(0, ...SIZES.filter((n) => n >= 10 && n <= PLAN_N));

// ---------------------------------------------------------------------------------------------------------------
// processes

/** The sandbox manager's cgroup: systemd, the units it runs and the tmux servers they start (cgroup v2 only). */
function sandboxCgroup(sb: Sandbox): string {
  return `/sys/fs/cgroup/unified/fleet-sandbox-${sb.managerPid}`;
}

function sandboxCpuMs(sb: Sandbox): number | null {
  return cgroupCpuMs(sandboxCgroup(sb)) ?? cgroupCpuMs(`/sys/fs/cgroup/fleet-sandbox-${sb.managerPid}`);
}

const cpuDelta = (before: number | null, after: number | null): number | null =>
  before === null || after === null ? null : round1(after - before);

// ---------------------------------------------------------------------------------------------------------------
// measurements for one fleet size

interface SpawnCost {
  argv: string;
  ms: Stat;
}

interface ColdOrPrune {
  ms: number;
  /** CPU of the `fleet` process and its reaped children (systemctl and tmux clients). */
  cpuMs: number;
  /** CPU the sandbox's manager cgroup used meanwhile (systemd, the units' scripts, tmux servers); null if unread. */
  sandboxCpuMs: number | null;
  commands: number;
  mutating: number;
  actions: number;
  commandLines: string[];
}

interface SizeResult {
  n: number;
  /** 1-minute load average when this size's measurements began (other work on the machine). */
  loadAverage: number;
  cold: ColdOrPrune;
  settleMs: number;
  processes?: number;
  observe?: Stat & { spawns: number[] };
  observeSpawns?: SpawnCost[];
  /** observe()'s steps timed one at a time (inside observe() systemd and tmux run concurrently). */
  phases?: { systemd: Stat; systemdBus: Stat; tmux: Stat; processes: Stat; files: Stat; filesRead: number };
  procTable?: Stat & { entries: number };
  /** Wall time (the Stat's own fields) and CPU time of this process. */
  plan?: Stat & { cpu: Stat; actions: number };
  /** plan() on this size's snapshot widened to PLAN_N agents (only at PLAN_SOURCE). */
  planWide?: Stat & { cpu: Stat; n: number; from: number; actions: number };
  /** `node -e 0` measured in this size's rounds. */
  nodeFloor?: { wall: Stat; cpu: Stat };
  cliFloor?: ProcTimes;
  validate?: ProcTimes;
  dryRun?: ProcTimes & { spawns: number[] };
  ps?: ProcTimes & { spawns: number[]; agents: number };
  warm?: ProcTimes & { spawns: number[]; mutating: number[]; actions: number[] };
  /** bench/seed-ps.mjs as a process; speedup = its median wall / fleet ps's. */
  seedPs?: ProcTimes & { reps: number; agents: number; psSpeedup: number };
  /** The seed's per-agent probing in-process (spawns only, no node start-up). */
  seed?: Stat & { spawns: number; reps: number };
  heal?: HealResult;
  prune: ColdOrPrune & { leftoverUnits: number };
}

async function coldOrPrune(sb: Sandbox, args: string[], what: string): Promise<[ColdOrPrune, () => void]> {
  const before = sandboxCpuMs(sb);
  const run = await fleet(sb, args);
  expectCode(run, 0, what);
  const doc = JSON.parse(run.stdout) as { actions: unknown[] };
  const result: ColdOrPrune = {
    ms: round1(run.ms),
    cpuMs: round1(run.cpuMs),
    sandboxCpuMs: null,
    commands: run.commands.length,
    mutating: mutating(run),
    actions: doc.actions.length,
    commandLines: commandLines(run),
  };
  // The units' own work (start scripts, tmux) goes on after systemctl returns: the caller says when it is over.
  return [result, () => (result.sandboxCpuMs = cpuDelta(before, sandboxCpuMs(sb)))];
}

async function measureSize(sb: Sandbox, n: number, log: (s: string) => void): Promise<SizeResult> {
  const loadAverage = round1(loadavg()[0] ?? NaN);
  await writeRoster(sb, n);
  const sizeParts = SIZE_PARTS && SIZES.includes(n);
  const has = (p: Part): boolean => sizeParts && PARTS.has(p);

  log(`  cold reconcile of ${n} agents`);
  const [cold, coldDone] = await coldOrPrune(sb, ['reconcile', '--json'], `cold reconcile of ${n}`);
  const settle = await timeIt(async () => {
    await waitForSessions(sb, n);
    coldDone();
    await sleep(1000); // let the stubs' first heartbeats and the manager's job queue quiet down
  });
  const result: Omit<SizeResult, 'prune'> = { n, loadAverage, cold, settleMs: round1(settle) };

  const paths = sb.paths;
  const sockets = [SOCKET];

  if (has('observe')) {
    log('  observe() in-process');
    let lastObserved: Observed | undefined;
    let lastRunner: Runner | undefined;
    const obs = await repeat(REPS, async () => {
      const runner = createRunner(sb.env);
      lastObserved = await observe({ paths, sockets }, runner);
      lastRunner = runner;
      return runner.log.length;
    });
    if (lastObserved === undefined || lastRunner === undefined) throw new Error('observe did not run');
    if (!lastObserved.systemd.ok || !lastObserved.tmux.ok) {
      throw new Error(`observe failed: ${lastObserved.systemd.error ?? ''} ${lastObserved.tmux.error ?? ''}`);
    }

    log('  where observe() spends its time');
    const observeSpawns: SpawnCost[] = [];
    for (const cmd of lastRunner.log) {
      const runner = createRunner(sb.env);
      const r = await repeat(REPS, () => runner.run(cmd.argv, { reject: false, env: { TMUX: undefined } }));
      const shown = cmd.argv.map((a) => (a.includes('#{') ? "'<format>'" : a)).join(' ');
      observeSpawns.push({ argv: shown.length > 90 ? `${shown.slice(0, 87)}...` : shown, ms: stat(r.ms) });
    }
    let entries = 0;
    const proc = await repeat(REPS, () => {
      entries = readProcessTable().byPid.size;
      return Promise.resolve(entries);
    });
    const phaseRunner = createRunner(sb.env);
    // The systemd step both ways: through systemctl (a runner offering no environment) and over D-Bus, connection
    // included (what observe() does when it can).
    const ctlRunner: Runner = {
      log: phaseRunner.log,
      run: (argv, options) => phaseRunner.run(argv, options),
    };
    const systemdPhase = await repeat(REPS, () => observeSystemd(paths.unitDir, ctlRunner));
    const systemdBusPhase = await repeat(REPS, async () => {
      const bus = await openManagerBus(sb.env);
      try {
        return await observeSystemd(paths.unitDir, phaseRunner, bus);
      } finally {
        bus.close();
      }
    });
    const tmuxPhase = await repeat(REPS, () => observeSocket(SOCKET, phaseRunner));
    const lastTmux = tmuxPhase.values.at(-1);
    const panes = lastTmux !== undefined && lastTmux.kind !== 'no-tmux' ? lastTmux.socket.panes : [];
    const procPhase = await repeat(REPS, () => {
      attachProcesses(panes, readProcessTable());
      return Promise.resolve(panes.length);
    });
    const filesPhase = await repeat(REPS, async () => {
      const read = [
        ...(await readDirFiles(paths.unitDir, (name) => name.startsWith('mosaic-'))),
        ...(await readDirFiles(paths.agentsDir, (name) => name.endsWith('.env') && !name.startsWith('.'))),
        ...(await readTree(paths.toolsDir)),
      ];
      const heartbeats = await readHeartbeats(paths.runDir, Date.now());
      await readState(paths.stateDir);
      return read.length + Object.keys(heartbeats).length + 1;
    });
    Object.assign(result, {
      processes: entries,
      observe: { ...stat(obs.ms), spawns: obs.values },
      observeSpawns,
      phases: {
        systemd: stat(systemdPhase.ms),
        systemdBus: stat(systemdBusPhase.ms),
        tmux: stat(tmuxPhase.ms),
        processes: stat(procPhase.ms),
        files: stat(filesPhase.ms),
        filesRead: filesPhase.values.at(-1) ?? 0,
      },
      procTable: { ...stat(proc.ms), entries },
    });
  }

  if (has('plan')) {
    log('  plan() in-process');
    const desired = await loadDesired([paths.manifests], hostContext(paths));
    const assets = await loadAssets();
    // The snapshot a CLI run plans on (observeFor: also the programs and working directories it checks).
    const observed = await observeFor(desired, paths, createRunner(sb.env));
    // Wall time, and this process's CPU time beside it: on a loaded machine the wall time of a CPU-bound
    // function stretches with the other work, its CPU time much less.
    const timePlan = async (
      d: typeof desired,
      o: Observed,
    ): Promise<Stat & { cpu: Stat; actions: number }> => {
      const r = await repeat(Math.max(REPS, 20), () => {
        const c0 = process.cpuUsage();
        const actions = plan(planInput(d, o, paths, false, assets, sb.env)).actions.length;
        const c = process.cpuUsage(c0);
        return Promise.resolve({ actions, cpuMs: (c.user + c.system) / 1000 });
      });
      return {
        ...stat(r.ms),
        cpu: stat(r.values.map((v) => v.cpuMs)),
        actions: r.values.at(-1)?.actions ?? NaN,
      };
    };
    result.plan = await timePlan(desired, observed);

    if (n === PLAN_SOURCE) {
      log(`  plan() in-process at N=${PLAN_N} (this snapshot widened)`);
      const dir = join(sb.root, `bench-roster-${PLAN_N}`);
      await mkdir(dir, { recursive: true });
      await writeFile(join(dir, 'roster.yaml'), `${roster(PLAN_N)}\n`);
      const wideDesired = await loadDesired([dir], hostContext(paths));
      result.planWide = {
        ...(await timePlan(wideDesired, widenObserved(observed, n, PLAN_N))),
        n: PLAN_N,
        from: n,
      };
    }
  }

  if (has('cli')) {
    log('  the CLI as processes, in rounds with node -e 0 and the seed ps');
    const seedRounds = new Set(
      Array.from({ length: seedReps(n) }, (_, j) => Math.floor((j * REPS) / seedReps(n))),
    );
    const dry: number[] = [];
    const ps: number[] = [];
    let psAgents = 0;
    let seedAgents = 0;
    const warm: { spawns: number; mutating: number; actions: number }[] = [];
    const cli = async (args: string[], what: string, code = 0): Promise<CliRun> => {
      const r = await fleet(sb, args);
      expectCode(r, code, what);
      return r;
    };
    const sample = (r: { ms: number; cpuMs: number }): Sample => ({ wall: r.ms, cpu: r.cpuMs });
    const samples = await rounds(REPS, [
      {
        key: 'floor',
        run: async () => {
          const r = await nodeFloor(sb);
          return { wall: r.wallMs, cpu: r.cpuMs };
        },
      },
      { key: 'version', run: async () => sample(await cli(['--version'], 'fleet --version')) },
      { key: 'validate', run: async () => sample(await cli(['validate'], `validate of ${n}`)) },
      {
        key: 'dry',
        run: async (keep) => {
          const r = await cli(
            ['reconcile', '--dry-run', '--detailed-exitcode'],
            `dry-run of ${n} (0 = in sync)`,
          );
          if (keep) dry.push(r.commands.length);
          return sample(r);
        },
      },
      {
        key: 'ps',
        run: async (keep) => {
          const r = await cli(['ps', '--json'], `ps of ${n}`);
          psAgents = (JSON.parse(r.stdout) as { agents: unknown[] }).agents.length;
          if (keep) ps.push(r.commands.length);
          return sample(r);
        },
      },
      {
        key: 'warm',
        run: async (keep) => {
          const r = await cli(['reconcile', '--json'], `warm reconcile of ${n}`);
          const doc = JSON.parse(r.stdout) as { actions: unknown[] };
          if (keep)
            warm.push({ spawns: r.commands.length, mutating: mutating(r), actions: doc.actions.length });
          return sample(r);
        },
      },
      {
        key: 'seedPs',
        rounds: seedRounds,
        run: async () => {
          const r = await measure([process.execPath, SEED_PS, rosterPath(sb)], { env: sb.env, cwd: REPO });
          expectCode(r, 0, `seed ps of ${n}`);
          const rows = JSON.parse(r.stdout) as { active: string; session: boolean }[];
          seedAgents = rows.filter((row) => row.active === 'active' && row.session).length;
          if (seedAgents !== n)
            throw new Error(`seed ps of ${n}: ${seedAgents} agents active with a session`);
          return { wall: r.wallMs, cpu: r.cpuMs };
        },
      },
    ]);
    const floor = samples.get('floor') ?? [];
    const times = (key: string): ProcTimes => procTimes(samples.get(key) ?? [], floor);
    const psTimes = times('ps');
    const seedPs = times('seedPs');
    Object.assign(result, {
      nodeFloor: { wall: stat(floor.map((s) => s.wall)), cpu: stat(floor.map((s) => s.cpu)) },
      cliFloor: times('version'),
      validate: times('validate'),
      dryRun: { ...times('dry'), spawns: dry },
      ps: { ...psTimes, spawns: ps, agents: psAgents },
      warm: {
        ...times('warm'),
        spawns: warm.map((v) => v.spawns),
        mutating: warm.map((v) => v.mutating),
        actions: warm.map((v) => v.actions),
      },
      seedPs: {
        ...seedPs,
        reps: seedRounds.size,
        agents: seedAgents,
        psSpeedup: round2(seedPs.median / psTimes.median),
      },
    });
  }

  if (has('seed')) {
    log('  the seed way in-process: is-active + has-session per agent');
    const names = Array.from({ length: n }, (_, i) => agentName(i));
    let seedSpawns = 0;
    const reps = seedReps(n);
    const seed = await repeat(reps, async () => {
      const runner = createRunner(sb.env);
      for (const name of names) {
        await runner.run(['systemctl', '--user', 'is-active', `mosaic-agent@${name}.service`], {
          reject: false,
        });
        await runner.run(['tmux', '-L', SOCKET, 'has-session', '-t', `=${name}`], {
          reject: false,
          env: { TMUX: undefined },
        });
      }
      seedSpawns = runner.log.length;
      return seedSpawns;
    });
    result.seed = { ...stat(seed.ms), spawns: seedSpawns, reps };
  }

  if (PARTS.has('heal') && HEAL.sizes.includes(n)) {
    log(`  watch mode: heal latency, idle CPU and RSS (--interval ${HEAL.intervalSeconds})`);
    result.heal = await measureHeal(sb, n, log);
  }

  log(`  prune the ${n} agents away (roster with no agents, fleet reconcile --prune)`);
  await writeRoster(sb, 0);
  const [prune, pruneDone] = await coldOrPrune(sb, ['reconcile', '--prune', '--json'], `prune of ${n}`);
  pruneDone();
  const left = await sb.run(
    ['systemctl', '--user', 'list-units', '--all', '--no-legend', '--plain', 'mosaic-agent@*'],
    { reject: false },
  );
  return {
    ...result,
    prune: { ...prune, leftoverUnits: left.stdout.split('\n').filter((l) => l.trim() !== '').length },
  };
}

async function timeIt(fn: () => Promise<void>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

// ---------------------------------------------------------------------------------------------------------------
// report

function firstLine(text: string): string {
  return text.split('\n')[0]?.trim() ?? '';
}

async function machineInfo(sb: Sandbox): Promise<Record<string, unknown>> {
  const systemd = await sb.run(['systemctl', '--version'], { reject: false });
  const tmux = await sb.run(['tmux', '-V'], { reject: false });
  return {
    nproc: availableParallelism(),
    cpu: cpus()[0]?.model ?? 'unknown',
    memory_gib: round1(totalmem() / 2 ** 30),
    kernel: release(),
    node: process.version,
    systemd: firstLine(systemd.stdout),
    tmux: firstLine(tmux.stdout),
  };
}

const uniform = (xs: number[]): string =>
  xs.length === 0 ? '–' : new Set(xs).size === 1 ? String(xs[0]) : `${Math.min(...xs)}–${Math.max(...xs)}`;
const ms = (s: Stat): string => `${s.median.toFixed(1)} / ${s.p90.toFixed(1)}`;
const times = (s: ProcTimes): string => `${ms(s)} (${s.ratio.toFixed(2)}×)`;
const cpu = (s: ProcTimes): string => `${s.cpu.median.toFixed(0)} (${s.cpuRatio.toFixed(2)}×)`;
const alone = (c: ColdOrPrune): string =>
  `${c.cpuMs.toFixed(0)}${c.sandboxCpuMs === null ? '' : ` (+${c.sandboxCpuMs.toFixed(0)})`}`;
const healMs = (x: number | null): string => (x === null ? 'timeout' : x.toFixed(0));
const heal = (k: HealKind): string =>
  `${healMs(k.medianMs)} / ${healMs(k.maxMs)}${k.timeouts > 0 || k.skipped > 0 ? ` (${k.timeouts} t/o, ${k.skipped} skipped)` : ''}`;

function table(results: SizeResult[], floor: Stat | null, cliFloor: Stat | null): string {
  /** A row's cell, or '–' where this size did not measure it. */
  const cell =
    <K extends keyof SizeResult>(key: K, f: (v: NonNullable<SizeResult[K]>, r: SizeResult) => string) =>
    (r: SizeResult): string => {
      const v = r[key];
      return v === undefined || v === null ? '–' : f(v, r);
    };
  const rows: [string, (r: SizeResult) => string][] = [
    ['load average (1 min) at start', (r) => r.loadAverage.toFixed(1)],
    ['cold reconcile: wall ms', (r) => r.cold.ms.toFixed(0)],
    ['  CPU ms: fleet (+ systemd, units, tmux)', (r) => alone(r.cold)],
    ['  actions / commands (mutating)', (r) => `${r.cold.actions} / ${r.cold.commands} (${r.cold.mutating})`],
    ['observe(): median / p90 ms', cell('observe', ms)],
    ['  spawns', cell('observe', (o) => uniform(o.spawns))],
    ['  /proc table read ms (processes)', cell('procTable', (p) => `${p.median.toFixed(1)} (${p.entries})`)],
    ['  step: systemd over D-Bus (no spawn) ms', cell('phases', (p) => ms(p.systemdBus))],
    ['  step: systemd via systemctl (3 spawns) ms', cell('phases', (p) => ms(p.systemd))],
    ['  step: tmux list-panes ms', cell('phases', (p) => ms(p.tmux))],
    ['  step: /proc + pane trees ms', cell('phases', (p) => ms(p.processes))],
    ['  step: files (files read) ms', cell('phases', (p) => `${ms(p.files)} (${p.filesRead})`)],
    ['plan(): median / p90 ms', cell('plan', ms)],
    ['  CPU ms', cell('plan', (p) => p.cpu.median.toFixed(1))],
    ['  actions (in sync = 0)', cell('plan', (p) => String(p.actions))],
    ['node -e 0 ms (this size)', cell('nodeFloor', (f) => ms(f.wall))],
    ['  CPU ms', cell('nodeFloor', (f) => f.cpu.median.toFixed(0))],
    ['fleet --version ms (× node)', cell('cliFloor', times)],
    ['  CPU ms (× node)', cell('cliFloor', cpu)],
    ['fleet validate ms (× node)', cell('validate', times)],
    ['  CPU ms (× node)', cell('validate', cpu)],
    ['fleet reconcile --dry-run ms (× node)', cell('dryRun', times)],
    ['  CPU ms (× node)', cell('dryRun', cpu)],
    ['  spawns', cell('dryRun', (d) => uniform(d.spawns))],
    ['fleet ps --json ms (× node)', cell('ps', times)],
    ['  CPU ms (× node)', cell('ps', cpu)],
    ['  spawns (agents listed)', cell('ps', (p) => `${uniform(p.spawns)} (${p.agents})`)],
    ['warm fleet reconcile ms (× node)', cell('warm', times)],
    ['  CPU ms (× node)', cell('warm', cpu)],
    [
      '  spawns / mutating / actions',
      cell('warm', (w) => `${uniform(w.spawns)} / ${uniform(w.mutating)} / ${uniform(w.actions)}`),
    ],
    ['seed ps process (.mjs) ms (× node)', cell('seedPs', times)],
    ['  CPU ms (× node)', cell('seedPs', cpu)],
    ['  fleet ps faster by (seed / ps wall)', cell('seedPs', (s) => `${s.psSpeedup.toFixed(2)}×`)],
    ['seed way in-process (per agent) ms', cell('seed', ms)],
    ['  spawns', cell('seed', (s) => String(s.spawns))],
    ['watch: pane killed → running ms med / max', cell('heal', (h) => heal(h.pane))],
    ['watch: session killed → running ms', cell('heal', (h) => heal(h.session))],
    [
      'watch: idle CPU % / RSS MiB (peak)',
      cell(
        'heal',
        (h) =>
          `${h.idle.cpuPercent.toFixed(2)} / ${h.idle.rssMiB.toFixed(0)} (${h.idle.peakRssMiB.toFixed(0)})`,
      ),
    ],
    ['prune N agents: wall ms', (r) => r.prune.ms.toFixed(0)],
    ['  CPU ms: fleet (+ systemd, units, tmux)', (r) => alone(r.prune)],
    [
      '  actions / commands (mutating)',
      (r) => `${r.prune.actions} / ${r.prune.commands} (${r.prune.mutating})`,
    ],
  ];
  const shown = rows.filter(([, f]) => results.some((r) => f(r) !== '–'));
  const head = ['', ...results.map((r) => `N=${r.n}`)];
  const body = shown.map(([label, f]) => [label, ...results.map(f)]);
  const widths = head.map((_, c) => Math.max(...[head, ...body].map((row) => (row[c] ?? '').length)));
  const fmt = (row: string[]): string =>
    row.map((cell, c) => (c === 0 ? cell.padEnd(widths[c] ?? 0) : cell.padStart(widths[c] ?? 0))).join('  ');
  const lines = [fmt(head), ...body.map(fmt)];
  lines.push('');
  lines.push(
    'Wall: median / p90 ms; (×) = median / median of node -e 0 in the same rounds. CPU: median ms, user + sys',
    'of the process and its children; (+N) = the sandbox manager cgroup meanwhile (systemd, units, tmux servers).',
  );
  if (floor !== null && cliFloor !== null) {
    lines.push(`before the sizes: node -e 0 ${ms(floor)} ms; fleet --version ${ms(cliFloor)} ms`);
  }
  for (const r of results) {
    if (r.planWide !== undefined) {
      lines.push(
        `plan() at N=${r.planWide.n} (the N=${r.planWide.from} snapshot widened): ${ms(r.planWide)} ms, CPU ${r.planWide.cpu.median.toFixed(1)} ms, ${r.planWide.actions} actions (in sync = 0)`,
      );
    }
  }
  for (const r of results) {
    if (r.heal === undefined) continue;
    const h = r.heal;
    lines.push(
      `watch at N=${r.n} (--interval ${h.settings.intervalSeconds}): first cycle ${h.firstCycleMs.toFixed(0)} ms; idle ${h.idle.seconds} s: ` +
        `${h.idle.cpuMs.toFixed(0)} ms CPU, ${h.idle.cycles} cycles, ${h.idle.processes} processes, ${h.idle.treeRssMiB.toFixed(0)} MiB with them; ` +
        `trials timed out after ${h.settings.timeoutMs} ms, polled every ${h.settings.pollMs} ms; SIGTERM → exit ${h.stop.ms.toFixed(0)} ms (code ${String(h.stop.code)})`,
    );
  }
  for (const r of results) {
    if (r.observeSpawns === undefined) continue;
    lines.push(`observe() spawns at N=${r.n}, each alone (median / p90 ms):`);
    for (const s of r.observeSpawns) lines.push(`  ${ms(s.ms).padStart(13)}  ${s.argv}`);
  }
  lines.push(...targets(results));
  return lines.join('\n');
}

/** Issue 14's targets (at N = 100), met or not, for what this run measured. */
function targets(results: SizeResult[]): string[] {
  const out: string[] = [];
  const check = (what: string, value: string, ok: boolean): void => {
    out.push(`  ${ok ? 'met   ' : 'MISSED'}  ${what}: ${value}`);
  };
  const r = results.find((x) => x.n === 100);
  if (r?.warm !== undefined && r.ps !== undefined) {
    for (const [name, t] of [
      ['warm reconcile', r.warm],
      ['fleet ps', r.ps],
    ] as const) {
      check(`${name} ≤ 2.0× node wall`, `${t.ratio.toFixed(2)}×`, t.ratio <= 2);
      check(`${name} ≤ 250 ms CPU`, `${t.cpu.median.toFixed(0)} ms`, t.cpu.median <= 250);
    }
  }
  if (r?.seedPs !== undefined) {
    check(
      'fleet ps ≥ 4× faster than the seed ps',
      `${r.seedPs.psSpeedup.toFixed(2)}×`,
      r.seedPs.psSpeedup >= 4,
    );
  }
  if (r?.heal !== undefined) {
    for (const [kind, k] of [
      ['pane', r.heal.pane],
      ['session', r.heal.session],
    ] as const) {
      check(`killed ${kind}: median ≤ 1 s`, healMs(k.medianMs), k.medianMs !== null && k.medianMs <= 1000);
      check(
        `killed ${kind}: max ≤ 2 s`,
        healMs(k.maxMs),
        k.maxMs !== null && k.maxMs <= 2000 && k.skipped === 0,
      );
    }
    check('watch idle CPU ≤ 0.5 %', `${r.heal.idle.cpuPercent.toFixed(2)} %`, r.heal.idle.cpuPercent <= 0.5);
    check('watch RSS ≤ 80 MB', `${r.heal.idle.rssMiB.toFixed(0)} MiB`, r.heal.idle.rssMiB * 1.048576 <= 80);
  }
  if (r !== undefined) check('cold apply ≤ 2 s', `${r.cold.ms.toFixed(0)} ms`, r.cold.ms <= 2000);
  const wide = results.find((x) => x.planWide !== undefined)?.planWide;
  if (wide !== undefined) {
    check(
      `plan() at N=${wide.n} ≤ 30 ms`,
      `${wide.median.toFixed(1)} ms`,
      wide.median <= 30 && wide.actions === 0,
    );
  }
  return out.length === 0 ? [] : ['', 'issue 14 targets (at N = 100; the planner at its own N):', ...out];
}

/** The spend, alerts and register parts: their figures, then their targets met or not. */
interface Extra {
  spend?: SpendResult;
  alerts?: AlertsResult;
  register?: RegisterResult;
}

function extraReport(extra: Extra): string[] {
  const lines: string[] = [];
  const checks: [string, string, boolean][] = [];
  if (extra.spend) {
    lines.push(...spendReport(extra.spend));
    checks.push(...spendTargets(extra.spend));
  }
  if (extra.alerts) {
    lines.push(...alertsReport(extra.alerts));
    checks.push(...alertsTargets(extra.alerts));
  }
  if (extra.register) {
    lines.push(...registerReport(extra.register));
    checks.push(...registerTargets(extra.register));
  }
  if (checks.length === 0) return lines;
  return [
    ...lines,
    '',
    'issues 21, 23, 24 targets:',
    ...checks.map(([what, value, ok]) => `  ${ok ? 'met   ' : 'MISSED'}  ${what}: ${value}`),
  ];
}

// ---------------------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  if (!existsSync(join(REPO, 'dist', 'main.js')))
    throw new Error('dist/ is missing: run `npm run bench` (it builds)');
  const started = performance.now();
  const log = (s: string): void => {
    process.stderr.write(`[${((performance.now() - started) / 1000).toFixed(1).padStart(6)} s] ${s}\n`);
  };
  const loadBefore = loadavg();
  log(`parts: ${[...PARTS].join(', ')}`);
  log('starting the sandbox');
  const sb = await startSandbox({
    tmpPrefix: 'fleet-bench-',
    env: { MOSAIC_HEARTBEAT_INTERVAL: HEARTBEAT_SECONDS },
  });

  // Ctrl-C: stop the sandbox in order (its manager is in a process group of its own); a second one is impatient.
  let interrupted = false;
  const onSigint = (): void => {
    if (interrupted) {
      sb.forceStop();
      return;
    }
    interrupted = true;
    process.stderr.write('\ninterrupted: stopping the sandbox\n');
    for (const pid of inFlight) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        // already gone
      }
    }
    void sb.stop().finally(() => process.exit(130));
  };
  process.on('SIGINT', onSigint);

  try {
    const machine = await machineInfo(sb);
    log(`machine: ${JSON.stringify(machine)}`);
    let floor: { wall: Stat; cpu: Stat } | null = null;
    let cliFloor: Stat | null = null;
    if (PARTS.has('cli')) {
      const f = await repeat(REPS, () => nodeFloor(sb));
      floor = { wall: stat(f.values.map((r) => r.wallMs)), cpu: stat(f.values.map((r) => r.cpuMs)) };
      const v = await repeat(REPS, async () => {
        const r = await fleet(sb, ['--version']);
        expectCode(r, 0, 'fleet --version');
        return r.ms;
      });
      cliFloor = stat(v.values);
    }

    const sizes = [...new Set([...(SIZE_PARTS ? SIZES : []), ...(PARTS.has('heal') ? HEAL.sizes : [])])].sort(
      (a, b) => a - b,
    );
    const results: SizeResult[] = [];
    for (const n of sizes) {
      log(`N = ${n}`);
      results.push(await measureSize(sb, n, log));
    }

    // The issues' own fleets (spend, alerts, register): each sets up its fleet in the sandbox and prunes it.
    const extra: Extra = {};
    if (PARTS.has('spend')) {
      log('spend: no-op cost with and without metered history');
      extra.spend = await measureSpend(sb, log);
    }
    if (PARTS.has('alerts')) {
      log('alerts: watch mode at rest with alerts for every agent');
      extra.alerts = await measureAlerts(sb, log);
    }
    if (PARTS.has('register')) {
      log('register: many hosts publishing to one PostgreSQL');
      extra.register = await measureRegister(sb, log);
    }

    const text = [table(results, floor?.wall ?? null, cliFloor), ...extraReport(extra)].join('\n');
    const totalS = round1((performance.now() - started) / 1000);
    process.stdout.write(
      `\n${text}\n\ntotal ${totalS} s; load average before ${loadBefore.map(round1).join(' ')}, after ${loadavg().map(round1).join(' ')}\n`,
    );

    await mkdir(OUT_DIR, { recursive: true });
    const doc = {
      format_version: 2,
      date: new Date().toISOString(),
      machine,
      settings: {
        sizes: SIZES,
        reps: REPS,
        parts: [...PARTS],
        heartbeat_interval_seconds: Number(HEARTBEAT_SECONDS),
        plan_n: PLAN_N,
        heal: HEAL,
      },
      load_average: { before: loadBefore, after: loadavg() },
      total_seconds: totalS,
      node_floor_ms: floor?.wall ?? null,
      node_floor_cpu_ms: floor?.cpu ?? null,
      cli_floor_ms: cliFloor,
      sizes: results,
      ...extra,
    };
    await writeFile(join(OUT_DIR, 'results.json'), `${JSON.stringify(doc, null, 2)}\n`);
    process.stdout.write(`results: ${join(OUT_DIR, 'results.json')}\n`);
  } finally {
    log('stopping the sandbox');
    await sb.stop();
    process.off('SIGINT', onSigint);
  }
}

main().catch((error: unknown) => {
  process.stderr.write(
    `bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  process.exitCode = 1;
});
