/**
 * Benchmarks: what observation, planning and the CLI cost as the fleet grows (docs/benchmarks.md).
 *
 * The claim under test: observing and planning spawn a constant number of processes whatever the fleet's size,
 * and stay fast at hundreds of agents. Timings live here, never in tests: a 2-core machine shared with other
 * work is too noisy for a timed assertion, but a table of medians over repeated runs shows the shape.
 *
 * One private systemd user manager + tmux (the sandbox) for the whole run. For each fleet size N: write a roster
 * of N stub agents and run the real `fleet reconcile` (a cold apply of N agents), measure observe/plan/CLI with
 * repeated runs, compare with the seed's per-agent probing, then prune the fleet away (also measured) so the next
 * size starts from no agents again.
 *
 *   npm run bench                      build, then run everything (sizes 1, 10, 100, 250)
 *   BENCH_SIZES=1,10 BENCH_REPS=5 ...  fewer sizes / repetitions for a quick look
 *
 * Results: a table on stdout and `.bench-out/results.json` (gitignored).
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, loadavg, release, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { loadAssets } from '../src/assets.js';
import { planInput } from '../src/engine/session.js';
import { createRunner, type RecordedCommand, type Runner } from '../src/exec.js';
import { loadDesired } from '../src/manifest/load.js';
import { observe } from '../src/observe/index.js';
import { readDirFiles, readHeartbeats, readState, readTree } from '../src/observe/files.js';
import { readProcessTable } from '../src/observe/proc.js';
import { observeSystemd } from '../src/observe/systemd.js';
import { attachProcesses, observeSocket } from '../src/observe/tmux.js';
import { hostContext } from '../src/paths.js';
import { plan } from '../src/plan/planner.js';
import { startSandbox, type Sandbox } from '../src/sandbox.js';

const REPO = resolve(import.meta.dirname, '..');
const FLEET_BIN = join(REPO, 'bin', 'fleet.js');
const OUT_DIR = join(REPO, '.bench-out');
const SOCKET = 'bench-fleet';

const SIZES = (process.env.BENCH_SIZES ?? '1,10,100,250')
  .split(',')
  .map((s) => Number(s.trim()))
  .filter((n) => Number.isInteger(n) && n > 0);
const REPS = Math.max(1, Number(process.env.BENCH_REPS ?? '10') || 10);
/** The seed's probing costs two spawns per agent; fewer repetitions at large N keep the run short. */
const seedReps = (n: number): number => (n >= 250 ? Math.min(REPS, 3) : n >= 100 ? Math.min(REPS, 5) : REPS);
/** Stub heartbeat interval: real agents are mostly idle; a 1 s beat from 250 bash loops would be the benchmark. */
const HEARTBEAT_SECONDS = '30';

// ---------------------------------------------------------------------------------------------------------------
// statistics

interface Stat {
  samples: number[];
  median: number;
  p90: number;
  min: number;
}

function stat(samples: number[]): Stat {
  const sorted = [...samples].sort((a, b) => a - b);
  // Nearest rank: with 10 samples, p90 is the 9th, so one outlier does not become "p90".
  const rank = (p: number): number => sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)] ?? NaN;
  const mid = sorted.length / 2;
  const median =
    sorted.length % 2 === 1
      ? (sorted[Math.floor(mid)] ?? NaN)
      : ((sorted[mid - 1] ?? NaN) + (sorted[mid] ?? NaN)) / 2;
  return {
    samples: samples.map(round1),
    median: round1(median),
    p90: round1(rank(0.9)),
    min: round1(sorted[0] ?? NaN),
  };
}

function round1(x: number): number {
  return Math.round(x * 10) / 10;
}

async function timeIt<T>(fn: () => Promise<T> | T): Promise<{ ms: number; value: T }> {
  const t0 = performance.now();
  const value = await fn();
  return { ms: performance.now() - t0, value };
}

// ---------------------------------------------------------------------------------------------------------------
// the real CLI as a process

interface CliRun {
  ms: number;
  code: number;
  stdout: string;
  stderr: string;
  commands: RecordedCommand[];
}

let logSeq = 0;

/** Run `node bin/fleet.js ARGS` in the sandbox environment; wall time includes node's start-up, as for an operator. */
function fleet(sb: Sandbox, args: string[], timeoutMs = 300_000): Promise<CliRun> {
  const logFile = join(sb.root, `bench-commands-${logSeq++}.jsonl`);
  const t0 = performance.now();
  return new Promise((resolveRun) => {
    execFile(
      process.execPath,
      [FLEET_BIN, ...args],
      {
        env: { ...sb.env, FLEET_COMMAND_LOG: logFile, NO_COLOR: '1' },
        cwd: REPO,
        timeout: timeoutMs,
        maxBuffer: 64 * 1024 * 1024,
      },
      (error, stdout, stderr) => {
        const ms = performance.now() - t0;
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        const commands = existsSync(logFile)
          ? readFileSync(logFile, 'utf8')
              .split('\n')
              .filter((l) => l.trim() !== '')
              .map((l) => JSON.parse(l) as RecordedCommand)
          : [];
        rmSync(logFile, { force: true });
        resolveRun({ ms, code, stdout, stderr, commands });
      },
    );
  });
}

/** The commands a run issued, one line each, long unit lists cut short (the JSON keeps them readable). */
function commandLines(run: CliRun): string[] {
  return run.commands.map((c) => {
    const shown = c.argv.map((a) => (a.includes('#{') ? "'<format>'" : a));
    const line =
      shown.length > 12 ? `${shown.slice(0, 10).join(' ')} … (${shown.length} words)` : shown.join(' ');
    return `${c.kind === 'mutate' ? 'M' : 'R'} ${line}`;
  });
}

function mutating(run: CliRun): number {
  return run.commands.filter((c) => c.kind === 'mutate').length;
}

function expectCode(run: CliRun, code: number, what: string): void {
  if (run.code !== code) {
    throw new Error(
      `${what}: exit ${run.code}, expected ${code}\n${run.stderr.trim()}\n${run.stdout.slice(-2000)}`,
    );
  }
}

/** A bare process: `node -e 0` (the start-up floor DOMAIN.md section 8 quotes). */
function nodeFloor(): Promise<number> {
  const t0 = performance.now();
  return new Promise((resolveRun, reject) => {
    execFile(process.execPath, ['-e', '0'], (error) => {
      if (error) reject(new Error(`node -e 0 failed: ${error.message}`));
      else resolveRun(performance.now() - t0);
    });
  });
}

// ---------------------------------------------------------------------------------------------------------------
// the fleet

function agentName(i: number): string {
  return `agent${String(i).padStart(4, '0')}`;
}

function roster(n: number): string {
  const agents = Array.from(
    { length: n },
    (_, i) => `  - name: ${agentName(i)}\n    runtime: stub\n    class: coder\n    model_hint: m1\n`,
  );
  return [
    '# Written by bench/run.ts',
    'version: 1',
    'transport: tmux',
    'tmux:',
    `  socket_name: ${SOCKET}`,
    n === 0 ? 'agents: []' : 'agents:',
    ...agents,
  ].join('\n');
}

async function writeRoster(sb: Sandbox, n: number): Promise<void> {
  const dir = join(sb.paths.mosaicHome, 'fleet');
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'roster.yaml'), `${roster(n)}\n`);
}

/** Live (not dead) panes on the bench socket, by session name. */
async function liveSessions(sb: Sandbox): Promise<Set<string>> {
  const r = await sb.run(['tmux', '-L', SOCKET, 'list-panes', '-a', '-F', '#{session_name} #{pane_dead}'], {
    reject: false,
  });
  const live = new Set<string>();
  if (r.exitCode !== 0) return live;
  for (const line of r.stdout.split('\n')) {
    const [name, dead] = line.split(' ');
    if (name && dead === '0') live.add(name);
  }
  return live;
}

async function waitForSessions(sb: Sandbox, n: number, timeoutMs = 60_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const live = await liveSessions(sb);
    const missing = Array.from({ length: n }, (_, i) => agentName(i)).filter((a) => !live.has(a));
    if (missing.length === 0) return;
    if (performance.now() > deadline) {
      throw new Error(
        `${missing.length} agent sessions not running after the cold reconcile: ${missing.slice(0, 5).join(', ')}…`,
      );
    }
    await sleep(200);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

// ---------------------------------------------------------------------------------------------------------------
// measurements for one fleet size

interface SpawnCost {
  argv: string;
  ms: Stat;
}

interface SizeResult {
  n: number;
  /** 1-minute load average when this size's measurements began (other work on the machine). */
  loadAverage: number;
  cold: { ms: number; commands: number; mutating: number; actions: number; commandLines: string[] };
  settleMs: number;
  processes: number;
  observe: Stat & { spawns: number[] };
  observeSpawns: SpawnCost[];
  /** observe()'s steps timed one at a time (inside observe() systemd and tmux run concurrently). */
  phases: { systemd: Stat; tmux: Stat; processes: Stat; files: Stat; filesRead: number };
  procTable: Stat & { entries: number };
  plan: Stat & { actions: number };
  validate: Stat;
  dryRun: Stat & { spawns: number[] };
  ps: Stat & { spawns: number[]; agents: number };
  warm: Stat & { spawns: number[]; mutating: number[]; actions: number[] };
  seed: Stat & { spawns: number; reps: number };
  prune: {
    ms: number;
    commands: number;
    mutating: number;
    actions: number;
    leftoverUnits: number;
    commandLines: string[];
  };
}

async function repeat<T>(reps: number, fn: () => Promise<T>): Promise<{ ms: number[]; values: T[] }> {
  await fn(); // warm-up: first-touch page cache, the manager's first answer after a burst, node's JIT
  const ms: number[] = [];
  const values: T[] = [];
  for (let i = 0; i < reps; i++) {
    const r = await timeIt(fn);
    ms.push(r.ms);
    values.push(r.value);
  }
  return { ms, values };
}

async function measureSize(sb: Sandbox, n: number, log: (s: string) => void): Promise<SizeResult> {
  const loadAverage = round1(loadavg()[0] ?? NaN);
  await writeRoster(sb, n);

  log(`  cold reconcile of ${n} agents`);
  const cold = await fleet(sb, ['reconcile', '--json']);
  expectCode(cold, 0, `cold reconcile of ${n}`);
  const coldDoc = JSON.parse(cold.stdout) as { actions: unknown[] };
  const settle = await timeIt(async () => {
    await waitForSessions(sb, n);
    await sleep(1000); // let the stubs' first heartbeats and the manager's job queue quiet down
  });

  const paths = sb.paths;
  const sockets = [SOCKET];

  log('  observe() in-process');
  let lastObserved: Awaited<ReturnType<typeof observe>> | undefined;
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
  const systemdPhase = await repeat(REPS, () => observeSystemd(paths.unitDir, phaseRunner));
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

  log('  plan() in-process');
  const desired = await loadDesired([paths.manifests], hostContext(paths));
  const assets = await loadAssets();
  const observed = lastObserved;
  let planActions = 0;
  const planned = await repeat(Math.max(REPS, 20), () => {
    const p = plan(planInput(desired, observed, paths, false, assets, sb.env));
    planActions = p.actions.length;
    return Promise.resolve(planActions);
  });

  log('  fleet validate');
  const validate = await repeat(REPS, async () => {
    const r = await fleet(sb, ['validate']);
    expectCode(r, 0, `validate of ${n}`);
  });

  log('  fleet reconcile --dry-run');
  const dry = await repeat(REPS, async () => {
    const r = await fleet(sb, ['reconcile', '--dry-run', '--detailed-exitcode']);
    expectCode(r, 0, `dry-run of ${n} (0 = in sync)`);
    return r.commands.length;
  });

  log('  fleet ps --json');
  let psAgents = 0;
  const ps = await repeat(REPS, async () => {
    const r = await fleet(sb, ['ps', '--json']);
    expectCode(r, 0, `ps of ${n}`);
    psAgents = (JSON.parse(r.stdout) as { agents: unknown[] }).agents.length;
    return r.commands.length;
  });

  log('  warm (no-op) fleet reconcile');
  const warm = await repeat(Math.min(REPS, 5), async () => {
    const r = await fleet(sb, ['reconcile', '--json']);
    expectCode(r, 0, `warm reconcile of ${n}`);
    const doc = JSON.parse(r.stdout) as { actions: unknown[] };
    return { spawns: r.commands.length, mutating: mutating(r), actions: doc.actions.length };
  });

  log('  the seed way: is-active + has-session per agent');
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

  log(`  prune the ${n} agents away (roster with no agents, fleet reconcile --prune)`);
  await writeRoster(sb, 0);
  const prune = await fleet(sb, ['reconcile', '--prune', '--json']);
  expectCode(prune, 0, `prune of ${n}`);
  const pruneDoc = JSON.parse(prune.stdout) as { actions: unknown[] };
  const left = await sb.run(
    ['systemctl', '--user', 'list-units', '--all', '--no-legend', '--plain', 'mosaic-agent@*'],
    {
      reject: false,
    },
  );
  const leftoverUnits = left.stdout.split('\n').filter((l) => l.trim() !== '').length;

  return {
    n,
    loadAverage,
    cold: {
      ms: round1(cold.ms),
      commands: cold.commands.length,
      mutating: mutating(cold),
      actions: coldDoc.actions.length,
      commandLines: commandLines(cold),
    },
    settleMs: round1(settle.ms),
    processes: entries,
    observe: { ...stat(obs.ms), spawns: obs.values },
    observeSpawns,
    phases: {
      systemd: stat(systemdPhase.ms),
      tmux: stat(tmuxPhase.ms),
      processes: stat(procPhase.ms),
      files: stat(filesPhase.ms),
      filesRead: filesPhase.values.at(-1) ?? 0,
    },
    procTable: { ...stat(proc.ms), entries },
    plan: { ...stat(planned.ms), actions: planActions },
    validate: stat(validate.ms),
    dryRun: { ...stat(dry.ms), spawns: dry.values },
    ps: { ...stat(ps.ms), spawns: ps.values, agents: psAgents },
    warm: {
      ...stat(warm.ms),
      spawns: warm.values.map((v) => v.spawns),
      mutating: warm.values.map((v) => v.mutating),
      actions: warm.values.map((v) => v.actions),
    },
    seed: { ...stat(seed.ms), spawns: seedSpawns, reps },
    prune: {
      ms: round1(prune.ms),
      commands: prune.commands.length,
      mutating: mutating(prune),
      actions: pruneDoc.actions.length,
      leftoverUnits,
      commandLines: commandLines(prune),
    },
  };
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
  new Set(xs).size === 1 ? String(xs[0]) : `${Math.min(...xs)}–${Math.max(...xs)}`;
const ms = (s: Stat): string => `${s.median.toFixed(1)} / ${s.p90.toFixed(1)}`;

function table(results: SizeResult[], floor: Stat, cliFloor: Stat): string {
  const rows: [string, (r: SizeResult) => string][] = [
    ['load average (1 min) at start', (r) => r.loadAverage.toFixed(1)],
    ['cold reconcile: wall ms', (r) => r.cold.ms.toFixed(0)],
    ['  actions / commands (mutating)', (r) => `${r.cold.actions} / ${r.cold.commands} (${r.cold.mutating})`],
    ['observe(): median / p90 ms', (r) => ms(r.observe)],
    ['  spawns', (r) => uniform(r.observe.spawns)],
    ['  /proc table read ms (processes)', (r) => `${r.procTable.median.toFixed(1)} (${r.procTable.entries})`],
    ['  step: systemd (3 spawns) ms', (r) => ms(r.phases.systemd)],
    ['  step: tmux list-panes ms', (r) => ms(r.phases.tmux)],
    ['  step: /proc + pane trees ms', (r) => ms(r.phases.processes)],
    ['  step: files (files read) ms', (r) => `${ms(r.phases.files)} (${r.phases.filesRead})`],
    ['plan(): median / p90 ms', (r) => ms(r.plan)],
    ['  actions (in sync = 0)', (r) => String(r.plan.actions)],
    ['fleet validate ms', (r) => ms(r.validate)],
    ['fleet reconcile --dry-run ms', (r) => ms(r.dryRun)],
    ['  spawns', (r) => uniform(r.dryRun.spawns)],
    ['fleet ps --json ms', (r) => ms(r.ps)],
    ['  spawns (agents listed)', (r) => `${uniform(r.ps.spawns)} (${r.ps.agents})`],
    ['warm fleet reconcile ms', (r) => ms(r.warm)],
    [
      '  spawns / mutating / actions',
      (r) => `${uniform(r.warm.spawns)} / ${uniform(r.warm.mutating)} / ${uniform(r.warm.actions)}`,
    ],
    ['seed way (per agent) ms', (r) => ms(r.seed)],
    ['  spawns', (r) => String(r.seed.spawns)],
    ['prune N agents: wall ms', (r) => r.prune.ms.toFixed(0)],
    [
      '  actions / commands (mutating)',
      (r) => `${r.prune.actions} / ${r.prune.commands} (${r.prune.mutating})`,
    ],
  ];
  const head = ['', ...results.map((r) => `N=${r.n}`)];
  const body = rows.map(([label, f]) => [label, ...results.map(f)]);
  const widths = head.map((_, c) => Math.max(...[head, ...body].map((row) => (row[c] ?? '').length)));
  const fmt = (row: string[]): string =>
    row.map((cell, c) => (c === 0 ? cell.padEnd(widths[c] ?? 0) : cell.padStart(widths[c] ?? 0))).join('  ');
  const lines = [fmt(head), ...body.map(fmt)];
  lines.push('');
  lines.push(`node -e 0 (start-up floor): ${ms(floor)} ms; fleet --version (CLI floor): ${ms(cliFloor)} ms`);
  for (const r of results) {
    lines.push(`observe() spawns at N=${r.n}, each alone (median / p90 ms):`);
    for (const s of r.observeSpawns) lines.push(`  ${ms(s.ms).padStart(13)}  ${s.argv}`);
  }
  return lines.join('\n');
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
    void sb.stop().finally(() => process.exit(130));
  };
  process.on('SIGINT', onSigint);

  try {
    const machine = await machineInfo(sb);
    log(`machine: ${JSON.stringify(machine)}`);
    const floor = stat((await repeat(REPS, () => nodeFloor())).ms);
    const cliFloor = stat(
      (
        await repeat(REPS, async () => {
          const r = await fleet(sb, ['--version']);
          expectCode(r, 0, 'fleet --version');
        })
      ).ms,
    );

    const results: SizeResult[] = [];
    for (const n of SIZES) {
      log(`N = ${n}`);
      results.push(await measureSize(sb, n, log));
    }

    const text = table(results, floor, cliFloor);
    const totalS = round1((performance.now() - started) / 1000);
    process.stdout.write(
      `\n${text}\n\ntotal ${totalS} s; load average before ${loadBefore.map(round1).join(' ')}, after ${loadavg().map(round1).join(' ')}\n`,
    );

    await mkdir(OUT_DIR, { recursive: true });
    const doc = {
      format_version: 1,
      date: new Date().toISOString(),
      machine,
      settings: { sizes: SIZES, reps: REPS, heartbeat_interval_seconds: Number(HEARTBEAT_SECONDS) },
      load_average: { before: loadBefore, after: loadavg() },
      total_seconds: totalS,
      node_floor_ms: floor,
      cli_floor_ms: cliFloor,
      sizes: results,
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
