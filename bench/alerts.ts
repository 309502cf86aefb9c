/**
 * Watch mode at rest with alerts configured (issue 23): its idle CPU with one rule covering every agent and every
 * condition (waiting, wedged, stale, crash-loop, over-budget, restart-deferred; a command sink), against the
 * same fleet without `alerts:`. The target is the existing one for watch mode at N = 100: ≤ 0.5 % of a core.
 *
 * Two fleets of BENCH_ALERTS_N (100) agents, BENCH_ALERTS_FLEETS picks which:
 * - `hooks`: agents that report their own state as a real runtime does: a runtime with `state: claude-hooks`, so
 *   the fleet's launcher and liveness ticker run it (its heartbeat rewritten every 10 s with `state=`), whose
 *   program (bench-agent.sh here) says it is ready (`agent-state.sh ready`: idle) and then sleeps. A rule on
 *   `waiting` or `wedged` makes the watcher listen to these agents' heartbeats (src/alerts/watch.ts): this is the
 *   fleet where alerts can cost something at rest;
 * - `stub`: the stub agents of the other parts, whose bare heartbeats (`ts=`) never carry a state.
 * For each, BENCH_ALERTS_ROUNDS (2) rounds, without then with alerts and the other way round the next round
 * (ABBA: drift in the machine's load falls on both alike), each a fresh watcher measured as bench/heal.ts
 * measures idling (BENCH_IDLE_S seconds, its process tree's CPU from /proc), with no trials. The sink records
 * what it is sent: nothing should fire while everything is healthy.
 */
import { chmodSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Sandbox } from '../src/dev/sandbox.js';
import { applyRoster, pruneAll } from './cli.js';
import { envNumber, median, round2, sleep, writeRoster, type RosterSpec } from './common.js';
import { HEAL, measureHeal } from './heal.js';

export const ALERTS = {
  n: Math.round(envNumber('BENCH_ALERTS_N', 100)),
  rounds: Math.round(envNumber('BENCH_ALERTS_ROUNDS', 2)),
  fleets: (process.env.BENCH_ALERTS_FLEETS ?? 'hooks,stub')
    .split(',')
    .map((s) => s.trim())
    .filter((s): s is AlertFleet => s === 'hooks' || s === 'stub'),
};

type AlertFleet = 'hooks' | 'stub';

/** Watch mode's existing target at N = 100 (docs/benchmarks.md, issue 14). */
export const IDLE_TARGET_PERCENT = 0.5;

const CONDITIONS = ['waiting', 'wedged', 'stale', 'crash-loop', 'over-budget', 'restart-deferred'];

const AGENT = `#!/usr/bin/env bash
# bench/alerts.ts: a runtime that reports its own state through the fleet's launcher and ticker, idle.
"$MOSAIC_HOME/tools/fleet/agent-state.sh" ready bench-ready
s=
trap '[[ -n "$s" ]] && kill "$s" 2>/dev/null; exit 0' TERM HUP INT
while :; do
  sleep 3600 &
  s=$!
  wait "$s"
done
`;

const SINK = `#!/usr/bin/env bash
# bench/alerts.ts: an alert sink that keeps what it is sent.
cat >>"$(dirname "$0")/alerts-received.jsonl"
echo >>"$(dirname "$0")/alerts-received.jsonl"
`;

interface Idle {
  cpuPercent: number;
  cpuMs: number;
  seconds: number;
  cycles: number;
  rssMiB: number;
}

export interface AlertFleetResult {
  fleet: AlertFleet;
  n: number;
  without: Idle[];
  with: Idle[];
  /** Medians of the idle CPU percent. */
  withoutPercent: number;
  withPercent: number;
  /** Messages the sink received during the measurements with alerts (0 while all is healthy). */
  received: number;
}

export interface AlertsResult {
  idleSeconds: number;
  rounds: number;
  fleets: AlertFleetResult[];
}

function spec(sb: Sandbox, fleet: AlertFleet, alerts: boolean): RosterSpec {
  const top: string[] = [];
  if (fleet === 'hooks') {
    top.push(
      'runtimes:',
      '  bench-hooks:',
      `    command: ${join(sb.root, 'bench-agent.sh')}`,
      '    state: claude-hooks',
      '    heartbeat: true',
      '    model_args: []',
    );
  }
  if (alerts) {
    top.push(
      'alerts:',
      '  - name: bench',
      `    when: [${CONDITIONS.join(', ')}]`,
      "    agents: ['*']",
      '    send:',
      `      command: [${join(sb.root, 'bench-alert-sink.sh')}]`,
    );
  }
  return { top, runtime: () => (fleet === 'hooks' ? 'bench-hooks' : 'stub') };
}

function received(sb: Sandbox): number {
  const file = join(sb.root, 'alerts-received.jsonl');
  if (!existsSync(file)) return 0;
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '').length;
}

/**
 * Until every agent's heartbeat carries a state (the hooks fleet) or at least exists (the stubs). Most hooks
 * agents say idle by then; one whose ready write lost a race with its ticker under load stays `starting`, which
 * is watched all the same.
 */
async function settled(sb: Sandbox, fleet: AlertFleet, n: number, log: (s: string) => void): Promise<void> {
  const deadline = Date.now() + 120_000;
  for (;;) {
    let ok = 0;
    let idle = 0;
    for (let i = 0; i < n; i++) {
      try {
        const text = readFileSync(join(sb.paths.runDir, `agent${String(i).padStart(4, '0')}.hb`), 'utf8');
        if (fleet === 'stub' || /^state=/m.test(text)) ok++;
        if (/^state=idle$/m.test(text)) idle++;
      } catch {
        // not yet
      }
    }
    if (ok === n && (fleet === 'stub' || idle === n || Date.now() > deadline - 60_000)) {
      if (fleet === 'hooks') log(`  alerts: ${idle} of ${n} agents say idle, the others starting`);
      return;
    }
    if (Date.now() > deadline)
      throw new Error(`${n - ok} of ${n} ${fleet} agents without a heartbeat in 120 s`);
    await sleep(500);
  }
}

async function measureFleet(
  sb: Sandbox,
  fleet: AlertFleet,
  log: (s: string) => void,
): Promise<AlertFleetResult> {
  const n = ALERTS.n;
  log(`  alerts: ${n} ${fleet} agents, cold reconcile`);
  await writeRoster(sb, n, spec(sb, fleet, false));
  await applyRoster(sb, n, `cold reconcile of ${n} ${fleet} agents`);
  await settled(sb, fleet, n, log);
  const out: { without: Idle[]; with: Idle[] } = { without: [], with: [] };
  let got = 0;
  for (let r = 0; r < ALERTS.rounds; r++) {
    for (const alerts of r % 2 === 0 ? [false, true] : [true, false]) {
      await writeRoster(sb, n, spec(sb, fleet, alerts));
      log(`  alerts: ${fleet} fleet, round ${r + 1}, ${alerts ? 'with' : 'without'} alerts`);
      const before = received(sb);
      const h = await measureHeal(sb, n, log, { trials: 0 });
      if (alerts) got += received(sb) - before;
      (alerts ? out.with : out.without).push({
        cpuPercent: h.idle.cpuPercent,
        cpuMs: h.idle.cpuMs,
        seconds: h.idle.seconds,
        cycles: h.idle.cycles,
        rssMiB: h.idle.rssMiB,
      });
    }
  }
  const pct = (xs: Idle[]): number => round2(median(xs.map((x) => x.cpuPercent)));
  return {
    fleet,
    n,
    ...out,
    withoutPercent: pct(out.without),
    withPercent: pct(out.with),
    received: got,
  };
}

export async function measureAlerts(sb: Sandbox, log: (s: string) => void): Promise<AlertsResult> {
  writeFileSync(join(sb.root, 'bench-agent.sh'), AGENT);
  writeFileSync(join(sb.root, 'bench-alert-sink.sh'), SINK);
  chmodSync(join(sb.root, 'bench-agent.sh'), 0o755);
  chmodSync(join(sb.root, 'bench-alert-sink.sh'), 0o755);
  const fleets: AlertFleetResult[] = [];
  try {
    for (const fleet of ALERTS.fleets) {
      try {
        fleets.push(await measureFleet(sb, fleet, log));
      } finally {
        log(`  alerts: prune the ${fleet} agents away`);
        await pruneAll(sb);
      }
    }
  } finally {
    rmSync(join(sb.root, 'alerts-received.jsonl'), { force: true });
  }
  return { idleSeconds: HEAL.idleSeconds, rounds: ALERTS.rounds, fleets };
}

const idleText = (xs: Idle[]): string =>
  xs.map((x) => `${x.cpuPercent.toFixed(2)} % (${x.cycles} cycles, ${x.rssMiB.toFixed(0)} MiB)`).join(', ');

export function alertsReport(r: AlertsResult): string[] {
  return [
    '',
    `alerts (issue 23): watch mode idle ${r.idleSeconds} s, one rule on every condition for every agent (command sink), ${r.rounds} rounds ABBA`,
    ...r.fleets.map(
      (f) =>
        `  ${f.n} ${f.fleet} agents: without alerts ${f.withoutPercent.toFixed(2)} % [${idleText(f.without)}]; ` +
        `with ${f.withPercent.toFixed(2)} % [${idleText(f.with)}]; alerts sent meanwhile: ${f.received}`,
    ),
  ];
}

export function alertsTargets(r: AlertsResult): [string, string, boolean][] {
  return r.fleets.flatMap((f): [string, string, boolean][] => [
    [
      `alerts: watch idle CPU with alerts ≤ ${IDLE_TARGET_PERCENT} % (${f.n} ${f.fleet} agents)`,
      `${f.withPercent.toFixed(2)} % (without: ${f.withoutPercent.toFixed(2)} %)`,
      f.withPercent <= IDLE_TARGET_PERCENT,
    ],
    [`alerts: nothing sent while healthy (${f.fleet})`, String(f.received), f.received === 0],
  ]);
}
