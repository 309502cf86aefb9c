/**
 * The register at scale (issue 24): BENCH_REGISTER_HOSTS (50) hosts × BENCH_REGISTER_PER_HOST (20) agents
 * publishing to one PostgreSQL register, and what reading it costs.
 *
 * A private PostgreSQL (src/dev/pg-cluster.ts, started and removed here), a database of its own, `fleet register
 * migrate` as a process. The hosts are simulated in this process, through the real publish path
 * (src/register/cycle.ts `publishCycle`: DSN, connection, schema check, one transaction, the notice file), each
 * with its own Mosaic home (state dir, journal: a copy of the sandbox's real one) and host name. What each host
 * observed is the sandbox's real observation of its 100 running stub agents, widened to 1000 (bench/synth.ts)
 * and named as that host: the roster of 1000 agents gives each host its 20 (`host:`), so each publishes 20
 * status rows. Every cycle observes the sandbox afresh (new heartbeats, new clock), as a real host's cycle does.
 *
 * Rows written are counted by PostgreSQL itself: the sum of n_tup_ins + n_tup_upd + n_tup_del over the `fleet`
 * schema's tables in pg_stat_user_tables, before and after a round of cycles of every host (read once the
 * counters stop moving: a backend reports its counts as it exits). Then, in rounds with `node -e 0`,
 * `fleet ps --all-hosts` (the register's 1000 agents) against `fleet ps` of the sandbox's own 100 (both text and
 * --json), as processes. Last, the sandbox's own host publishes through real `fleet reconcile` processes: its
 * first publication, then no-op reconciles counted the same way.
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import type { Sandbox } from '../src/dev/sandbox.js';
import { postgresUnavailableReason, startCluster, type PgCluster } from '../src/dev/pg-cluster.js';
import { observeFor } from '../src/engine/session.js';
import { createRunner } from '../src/exec.js';
import { loadDesired } from '../src/manifest/load.js';
import { hostContext, resolvePaths, type FleetPaths } from '../src/paths.js';
import { publishCycle } from '../src/register/cycle.js';
import {
  applyRoster,
  expectCode,
  fleet,
  nodeFloor,
  noop,
  procTimes,
  pruneAll,
  rounds,
  type ProcTimes,
} from './cli.js';
import { envNumber, round1, round2, sleep, stat, writeRoster, roster, type Stat } from './common.js';
import { widenObserved } from './synth.js';

export const REGISTER = {
  hosts: Math.round(envNumber('BENCH_REGISTER_HOSTS', 50)),
  perHost: Math.round(envNumber('BENCH_REGISTER_PER_HOST', 20)),
  localN: Math.round(envNumber('BENCH_REGISTER_LOCAL_N', 100)),
  cycles: Math.round(envNumber('BENCH_REGISTER_CYCLES', 5)),
  reps: Math.round(envNumber('BENCH_REGISTER_REPS', envNumber('BENCH_REPS', 10))),
};

const DSN_VAR = 'FLEET_BENCH_REGISTER';
const hostName = (h: number): string => `bench-h${String(h + 1).padStart(2, '0')}`;

export interface RegisterResult {
  hosts: number;
  perHost: number;
  agents: number;
  localN: number;
  migrate: { wallMs: number; code: number };
  /** The first round: every host's first publication (its lease, its agents, its journal). */
  firstRound: { rows: number; ourCount: number; msPerHost: Stat };
  /** No-op rounds: rows written per host and cycle, by PostgreSQL's counters and by our own. */
  noopRounds: {
    rowsPerHost: number[];
    ourPerHost: number[];
    byTable: Record<string, number>;
    msPerHost: Stat;
  };
  /** Agents `fleet ps --all-hosts --json` listed (must be hosts × perHost). */
  allHostsAgents: number;
  ps: ProcTimes;
  psAll: ProcTimes;
  psJson: ProcTimes;
  psAllJson: ProcTimes;
  /** psAll / ps, median wall and median CPU (target: ≤ 2). */
  ratio: { wall: number; cpu: number; wallJson: number; cpuJson: number };
  /** The sandbox's own host through real `fleet reconcile` processes: rows per no-op run. */
  realHost: { firstRows: number; rowsPerNoop: number[] };
}

type Counts = Record<string, number>;

/** n_tup_ins + n_tup_upd + n_tup_del per table of the `fleet` schema, once the counters stop moving. */
async function tupleCounts(admin: pg.Client): Promise<Counts> {
  let last = '';
  for (let i = 0; i < 40; i++) {
    await admin.query('SELECT pg_stat_clear_snapshot()');
    const r = await admin.query<{ relname: string; n: string }>(
      `SELECT relname, (n_tup_ins + n_tup_upd + n_tup_del)::text AS n FROM pg_stat_user_tables
       WHERE schemaname = 'fleet' ORDER BY relname`,
    );
    const counts = Object.fromEntries(r.rows.map((x) => [x.relname, Number(x.n)]));
    const text = JSON.stringify(counts);
    if (text === last) return counts;
    last = text;
    await sleep(250);
  }
  throw new Error('pg_stat_user_tables did not settle in 10 s');
}

const total = (c: Counts): number => Object.values(c).reduce((a, b) => a + b, 0);
const delta = (a: Counts, b: Counts): Counts =>
  Object.fromEntries(Object.keys(b).map((k) => [k, (b[k] ?? 0) - (a[k] ?? 0)]));

const registerTop = ['register:', `  url_env: ${DSN_VAR}`, '  lease: 10m'];

export async function measureRegister(sb: Sandbox, log: (s: string) => void): Promise<RegisterResult> {
  const why = postgresUnavailableReason();
  if (why !== null) throw new Error(`register part: ${why}`);
  const { hosts, perHost, localN } = REGISTER;
  log('  register: starting a private PostgreSQL');
  let cluster: PgCluster | null = await startCluster();
  const work = mkdtempSync(join(sb.root, 'register-'));
  let admin: pg.Client | null = null;
  const oldDsn = process.env[DSN_VAR];
  try {
    admin = new pg.Client({ connectionString: cluster.dsn('postgres') });
    await admin.connect();
    await admin.query('CREATE DATABASE fleet_bench');
    await admin.end();
    const dsn = cluster.dsn('fleet_bench');
    admin = new pg.Client({ connectionString: dsn });
    await admin.connect();
    const env = { [DSN_VAR]: dsn };

    log(`  register: the sandbox's own fleet of ${localN}, then register: in its roster`);
    await writeRoster(sb, localN);
    await applyRoster(sb, localN, `cold reconcile of ${localN}`);
    await writeRoster(sb, localN, { top: registerTop });
    // Without the DSN: the reconcile remembers the roster (the manifest cache `fleet ps` reads) and says the
    // register is not set, without publishing this host (the register holds the simulated hosts' agents only).
    await noop(sb, 'a reconcile that caches the roster with register:');
    const migrate = await fleet(sb, ['register', 'migrate'], 60_000, env);
    expectCode(migrate, 0, 'fleet register migrate');

    // The simulated hosts: the roster of all their agents, each host's own home.
    const dir = join(work, 'roster');
    mkdirSync(dir, { recursive: true });
    const agents = hosts * perHost;
    writeFileSync(
      join(dir, 'roster.yaml'),
      `${roster(agents, { top: registerTop, fields: (i) => [`host: ${hostName(Math.floor(i / perHost))}`] })}\n`,
    );
    const desiredAll = await loadDesired([dir], hostContext(sb.paths));
    const desiredLocal = await loadDesired([sb.paths.manifests], hostContext(sb.paths));
    const journal = join(sb.paths.stateDir, 'journal.jsonl');
    const homes: FleetPaths[] = Array.from({ length: hosts }, (_, h) => {
      const p = resolvePaths({ home: join(work, hostName(h)) }, sb.env);
      mkdirSync(p.stateDir, { recursive: true });
      if (existsSync(journal)) copyFileSync(journal, join(p.stateDir, 'journal.jsonl'));
      return p;
    });
    process.env[DSN_VAR] = dsn;

    /** One cycle of every host on a fresh observation: rows by PostgreSQL's count and ours, ms per publish. */
    const round = async (): Promise<{ rows: Counts; ours: number; ms: number[] }> => {
      const observed = await observeFor(desiredLocal, sb.paths, createRunner(sb.env));
      const wide = widenObserved(observed, localN, agents);
      const before = await tupleCounts(admin as pg.Client);
      let ours = 0;
      const ms: number[] = [];
      for (let h = 0; h < hosts; h++) {
        const t0 = performance.now();
        const out = await publishCycle({
          desired: desiredAll,
          observed: { ...wide, hostname: hostName(h) },
          paths: homes[h],
        });
        ms.push(performance.now() - t0);
        if (out.published === null)
          throw new Error(`${hostName(h)}: ${out.problem?.message ?? 'not published'}`);
        ours += out.published.rowsWritten;
      }
      return { rows: delta(before, await tupleCounts(admin as pg.Client)), ours, ms };
    };

    log(`  register: ${hosts} hosts × ${perHost} agents, first publication`);
    const first = await round();
    log(`  register: ${REGISTER.cycles} no-op rounds of every host`);
    const noops: Awaited<ReturnType<typeof round>>[] = [];
    for (let c = 0; c < REGISTER.cycles; c++) noops.push(await round());
    const byTable: Counts = {};
    for (const r of noops) for (const [k, v] of Object.entries(r.rows)) byTable[k] = (byTable[k] ?? 0) + v;

    const check = await fleet(sb, ['ps', '--all-hosts', '--json'], 60_000, env);
    expectCode(check, 0, 'fleet ps --all-hosts --json');
    const allHostsAgents = (JSON.parse(check.stdout) as { agents: unknown[] }).agents.length;
    if (allHostsAgents !== agents)
      throw new Error(`ps --all-hosts listed ${allHostsAgents} agents, not ${agents}`);

    log(`  register: fleet ps --all-hosts (${agents}) against fleet ps (${localN}), ${REGISTER.reps} rounds`);
    const ps = (key: string, args: string[]) => ({
      key,
      run: async () => {
        const r = await fleet(sb, args, 60_000, env);
        expectCode(r, 0, `fleet ${args.join(' ')}`);
        return { wall: r.ms, cpu: r.cpuMs };
      },
    });
    const s = await rounds(REGISTER.reps, [
      {
        key: 'floor',
        run: async () => {
          const r = await nodeFloor(sb);
          return { wall: r.wallMs, cpu: r.cpuMs };
        },
      },
      ps('ps', ['ps']),
      ps('psAll', ['ps', '--all-hosts']),
      ps('psJson', ['ps', '--json']),
      ps('psAllJson', ['ps', '--all-hosts', '--json']),
    ]);
    const floor = s.get('floor') ?? [];
    const t = (k: string): ProcTimes => procTimes(s.get(k) ?? [], floor);
    const [psT, psAllT, psJsonT, psAllJsonT] = [t('ps'), t('psAll'), t('psJson'), t('psAllJson')];

    log(`  register: this sandbox's own host publishing through fleet reconcile`);
    const c0 = await tupleCounts(admin);
    await noop(sb, 'the first reconcile that publishes this host', env);
    const c1 = await tupleCounts(admin);
    const rowsPerNoop: number[] = [];
    let prev = c1;
    for (let k = 0; k < REGISTER.cycles; k++) {
      await noop(sb, 'a no-op reconcile with the register', env);
      const next = await tupleCounts(admin);
      rowsPerNoop.push(total(delta(prev, next)));
      prev = next;
    }

    return {
      hosts,
      perHost,
      agents,
      localN,
      migrate: { wallMs: round1(migrate.ms), code: migrate.code },
      firstRound: { rows: total(first.rows), ourCount: first.ours, msPerHost: stat(first.ms) },
      noopRounds: {
        rowsPerHost: noops.map((r) => round2(total(r.rows) / hosts)),
        ourPerHost: noops.map((r) => round2(r.ours / hosts)),
        byTable,
        msPerHost: stat(noops.flatMap((r) => r.ms)),
      },
      allHostsAgents,
      ps: psT,
      psAll: psAllT,
      psJson: psJsonT,
      psAllJson: psAllJsonT,
      ratio: {
        wall: round2(psAllT.median / psT.median),
        cpu: round2(psAllT.cpu.median / psT.cpu.median),
        wallJson: round2(psAllJsonT.median / psJsonT.median),
        cpuJson: round2(psAllJsonT.cpu.median / psJsonT.cpu.median),
      },
      realHost: { firstRows: total(delta(c0, c1)), rowsPerNoop },
    };
  } finally {
    if (oldDsn === undefined) delete process.env[DSN_VAR];
    else process.env[DSN_VAR] = oldDsn;
    await admin?.end().catch(() => undefined);
    log('  register: removing PostgreSQL, pruning the agents');
    await cluster?.destroy();
    cluster = null;
    rmSync(work, { recursive: true, force: true });
    await pruneAll(sb);
  }
}

export function registerReport(r: RegisterResult): string[] {
  const pt = (x: ProcTimes): string =>
    `${x.median.toFixed(0)} ms wall (${x.ratio.toFixed(2)}× node), ${x.cpu.median.toFixed(0)} ms CPU`;
  return [
    '',
    `register (issue 24): ${r.hosts} simulated hosts × ${r.perHost} agents = ${r.agents} in one PostgreSQL register; migrate ${r.migrate.wallMs.toFixed(0)} ms`,
    `  first publication of every host: ${r.firstRound.rows} rows (our count ${r.firstRound.ourCount}); ${r.firstRound.msPerHost.median.toFixed(1)} ms per host`,
    `  no-op cycles: rows written per host and cycle (pg_stat_user_tables) ${r.noopRounds.rowsPerHost.join(', ')}; ` +
      `our count ${r.noopRounds.ourPerHost.join(', ')}; by table ${JSON.stringify(r.noopRounds.byTable)}; ${r.noopRounds.msPerHost.median.toFixed(1)} ms per publish`,
    `  fleet ps (${r.localN} local): ${pt(r.ps)}; fleet ps --all-hosts (${r.allHostsAgents}): ${pt(r.psAll)}; ratio ${r.ratio.wall.toFixed(2)}× wall, ${r.ratio.cpu.toFixed(2)}× CPU`,
    `  --json: fleet ps ${pt(r.psJson)}; --all-hosts ${pt(r.psAllJson)}; ratio ${r.ratio.wallJson.toFixed(2)}× wall, ${r.ratio.cpuJson.toFixed(2)}× CPU`,
    `  this sandbox's own host through fleet reconcile: first publication ${r.realHost.firstRows} rows; each no-op ${r.realHost.rowsPerNoop.join(', ')}`,
  ];
}

export function registerTargets(r: RegisterResult): [string, string, boolean][] {
  const perHost = [...r.noopRounds.rowsPerHost, ...r.realHost.rowsPerNoop];
  return [
    [
      'register: rows written per no-op cycle per host = 1 (the lease)',
      `${Math.min(...perHost)}–${Math.max(...perHost)}`,
      perHost.every((x) => x === 1),
    ],
    [
      `register: ps --all-hosts at ${r.agents} ≤ 2× ps at ${r.localN}`,
      `${r.ratio.wall.toFixed(2)}× wall, ${r.ratio.cpu.toFixed(2)}× CPU`,
      r.ratio.wall <= 2 && r.ratio.cpu <= 2,
    ],
  ];
}
