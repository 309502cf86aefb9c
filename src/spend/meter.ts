/**
 * One metering run: read what every agent's runtime recorded since its cursors, add it to the ledger, and move
 * the cursors with it in one commit (src/spend/store.ts). Effectful (files, /proc, one sqlite3 spawn at most);
 * run under the fleet lock by `fleet spend` and by every reconcile. Read-only towards the agents.
 */
import type { Runner } from '../exec.js';
import type { DesiredFleet } from '../model/desired.js';
import type { FleetPaths } from '../paths.js';
import { claudeUsage } from '../runtimes/claude/usage.js';
import { codexUsage } from '../runtimes/codex/usage.js';
import { piUsage } from '../runtimes/pi/usage.js';
import type { FileCursor } from './cursor.js';
import { hourOf, mergeEntries, type LedgerEntry } from './ledger.js';
import {
  codexRolloutCwd,
  heartbeatKeys,
  jsonlIn,
  recordFiles,
  rootsOf,
  type RecordLookup,
  type UsageKind,
} from './locate.js';
import { countRows, dbStamp, opencodeDbPath, queryDbs } from './opencode.js';
import { commitSpend, compactIfDue, readSpendState, type AgentMeter, type SpendState } from './store.js';
import { tailFile } from './tail.js';
import type { UsageReader } from './usage.js';

export interface MeteredAgent {
  name: string;
  runtime: string;
  kind: UsageKind | null;
  workdir: string;
}

export interface MeterResult {
  state: SpendState;
  /** Ledger entries this run added (merged per agent, model and hour). */
  entries: LedgerEntry[];
  /** One line per skipped record, naming the file and line. */
  warnings: string[];
  /** Whether anything was written. */
  wrote: boolean;
}

const READERS: Record<Exclude<UsageKind, 'opencode'>, UsageReader> = {
  claude: claudeUsage,
  codex: codexUsage,
  pi: piUsage,
};

/** Which record format a runtime writes: by the state signal its adapter uses (a renamed runtime keeps it). */
export function usageKindOf(runtimeName: string, state: string): UsageKind | null {
  switch (state) {
    case 'claude-hooks':
      return 'claude';
    case 'codex-notify':
      return 'codex';
    case 'pi-extension':
      return 'pi';
    case 'opencode-events':
      return 'opencode';
    default:
      return (['claude', 'codex', 'pi', 'opencode'] as const).find((k) => k === runtimeName) ?? null;
  }
}

export function meteredAgents(desired: DesiredFleet): MeteredAgent[] {
  return desired.agents.map((a) => {
    const spec = desired.runtimes[a.runtime];
    return {
      name: a.name,
      runtime: a.runtime,
      kind: usageKindOf(a.runtime, spec?.state ?? 'none'),
      workdir: a.workingDirectory,
    };
  });
}

interface Run {
  nowMs: number;
  /**
   * Record folders listed in this run, by path: Codex keeps every agent's rollouts in the same day folders, so
   * each is listed once per run, not once per agent (100 agents' no-op, docs/benchmarks.md).
   */
  listed: Map<string, readonly string[]>;
  /** The rollouts' working directories: the committed ones, and those read in this run. */
  rollouts: Map<string, string>;
  entries: LedgerEntry[];
  warnings: string[];
  changed: boolean;
}

function add(
  run: Run,
  agent: MeteredAgent,
  model: string,
  atMs: number | null,
  tokens: LedgerEntry['tokens'],
): void {
  run.entries.push({
    agent: agent.name,
    runtime: agent.runtime,
    model,
    at: hourOf(atMs ?? run.nowMs),
    span: 'h',
    tokens,
  });
}

/** Folders listed once per run, a rollout's first line read once (then remembered in the state). */
function lookup(run: Run): RecordLookup {
  return {
    list: (dir) => {
      let names = run.listed.get(dir);
      if (names === undefined) run.listed.set(dir, (names = jsonlIn(dir)));
      return names;
    },
    rolloutCwd: (path) => {
      const had = run.rollouts.get(path);
      if (had !== undefined) return had;
      const cwd = codexRolloutCwd(path);
      if (cwd !== null) run.rollouts.set(path, cwd);
      return cwd;
    },
  };
}

/** The rollouts still in the folders listed this run, in a stable order (a rollout of a past day is dropped). */
function keptRollouts(run: Run): Record<string, string> | undefined {
  const present = new Set([...run.listed.values()].flat());
  const kept = [...run.rollouts].filter(([path]) => present.has(path)).sort(([a], [b]) => (a < b ? -1 : 1));
  return kept.length === 0 ? undefined : Object.fromEntries(kept);
}

/** An agent with JSONL records: every file it has a cursor for or that its runtime's folder holds. */
function meterFiles(
  run: Run,
  agent: MeteredAgent,
  kind: Exclude<UsageKind, 'opencode'>,
  old: AgentMeter,
  paths: FleetPaths,
): AgentMeter {
  const hb = heartbeatKeys(paths.runDir, agent.name);
  const roots = rootsOf(agent.name, agent.workdir, hb, old.roots, paths.userHome);
  const known = new Set(Object.keys(old.files));
  const listed = recordFiles(kind, roots, hb, known, run.nowMs, lookup(run));
  const files: Record<string, FileCursor> = {};
  for (const path of [...new Set([...known, ...listed])].sort()) {
    const r = tailFile(path, old.files[path], READERS[kind]);
    run.warnings.push(...r.warnings);
    if (r.changed) run.changed = true;
    if (r.cursor !== null) files[path] = r.cursor;
    for (const c of r.counted) add(run, agent, c.record.model, c.record.atMs, c.added);
  }
  const next: AgentMeter = { runtime: agent.runtime, roots, files };
  if (JSON.stringify({ ...old, files: {} }) !== JSON.stringify({ ...next, files: {} })) run.changed = true;
  return next;
}

/** opencode agents: their databases that changed, in one sqlite3 spawn; each event to the agent of its directory. */
async function meterOpencode(
  run: Run,
  agents: readonly MeteredAgent[],
  state: SpendState,
  paths: FleetPaths,
  runner: Runner,
): Promise<void> {
  const byDb = new Map<string, MeteredAgent[]>();
  for (const a of agents) {
    const old = state.agents[a.name] ?? { runtime: a.runtime, files: {} };
    const roots = rootsOf(a.name, a.workdir, heartbeatKeys(paths.runDir, a.name), old.roots, paths.userHome);
    if (JSON.stringify(old.roots) !== JSON.stringify(roots)) run.changed = true;
    state.agents[a.name] = { ...old, runtime: a.runtime, roots };
    const db = opencodeDbPath(roots.dataHome);
    byDb.set(db, [...(byDb.get(db) ?? []), a]);
  }
  const changed: { path: string; stamp: string }[] = [];
  for (const db of [...byDb.keys()].sort()) {
    const stamp = dbStamp(db);
    if (stamp !== null && stamp !== state.opencode[db]?.stamp) changed.push({ path: db, stamp });
  }
  if (changed.length === 0) return;
  let rows;
  try {
    rows = await queryDbs(
      runner,
      changed.map((c) => ({ path: c.path, cursor: state.opencode[c.path] })),
    );
  } catch (error) {
    const first = ((error as Error).message.split('\n')[0] ?? '').slice(0, 300);
    run.warnings.push(`opencode usage not read (${changed.map((c) => c.path).join(', ')}): ${first}`);
    return;
  }
  changed.forEach((c, i) => {
    const r = countRows(
      c.path,
      rows.filter((row) => row.db === i),
      state.opencode[c.path],
      c.stamp,
    );
    state.opencode[c.path] = r.cursor;
    run.changed = true;
    run.warnings.push(...r.warnings);
    const users = byDb.get(c.path) ?? [];
    for (const x of r.counted) {
      // A session belongs to the agent working in its directory; with one agent on the database, to that one.
      const owner = users.find((a) => a.workdir === x.dir) ?? (users.length === 1 ? users[0] : undefined);
      if (owner !== undefined) add(run, owner, x.record.model, x.record.atMs, x.added);
    }
  });
}

/** Meter every agent of the fleet once, and commit. */
export async function meter(
  agents: readonly MeteredAgent[],
  paths: FleetPaths,
  runner: Runner,
  nowMs: number,
): Promise<MeterResult> {
  const old = readSpendState(paths.stateDir);
  const state: SpendState = { ...old, agents: { ...old.agents }, opencode: { ...old.opencode } };
  const run: Run = {
    nowMs,
    listed: new Map(),
    rollouts: new Map(Object.entries(old.rollouts ?? {})),
    entries: [],
    warnings: [],
    changed: false,
  };
  for (const a of agents) {
    if (a.kind === null || a.kind === 'opencode') continue;
    const prev = state.agents[a.name] ?? { runtime: a.runtime, files: {} };
    state.agents[a.name] = meterFiles(run, a, a.kind, prev, paths);
  }
  const rollouts = keptRollouts(run);
  if (JSON.stringify(rollouts) !== JSON.stringify(old.rollouts)) run.changed = true;
  if (rollouts === undefined) delete state.rollouts;
  else state.rollouts = rollouts;
  await meterOpencode(
    run,
    agents.filter((a) => a.kind === 'opencode'),
    state,
    paths,
    runner,
  );
  if (!run.changed && run.entries.length === 0)
    return { state: old, entries: [], warnings: run.warnings, wrote: false };
  const entries = mergeEntries(run.entries);
  let committed = await commitSpend(paths.stateDir, state, entries);
  committed = await compactIfDue(paths.stateDir, committed, nowMs);
  return { state: committed, entries, warnings: run.warnings, wrote: true };
}
