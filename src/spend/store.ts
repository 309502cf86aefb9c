/**
 * Where metering keeps what it counted: `<state dir>/spend/meter.json` (the cursors, and how many bytes of the
 * ledger are committed) and `ledger-<n>.jsonl` (append-only deltas). The commit point is meter.json, written
 * atomically after the ledger's new lines are synced: a run killed before it leaves the old cursors and an
 * uncommitted ledger tail that readers ignore and the next run cuts off. So a SIGKILL mid-metering neither
 * counts twice nor loses a count (docs/spend.md).
 */
import { closeSync, constants, fsyncSync, ftruncateSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { FileCursor } from './cursor.js';
import type { ReaderMemo, TokenCounts } from './usage.js';
import { writeFileAtomic } from '../base/atomic.js';
import { homeOfStateDir, mkdirNoFollow, readNoFollowSync } from '../base/safe-path.js';
import { rm } from '../fs-async.js';
import { compactEntries, formatEntry, parseEntry, type LedgerEntry } from './ledger.js';

/** Where an agent's runtime keeps its records: from the running agent's environment, remembered. */
export interface Roots {
  home: string;
  codexHome: string;
  piDir: string;
  dataHome: string;
  workdir: string;
}

export interface AgentMeter {
  runtime: string;
  roots?: Roots;
  /** Cursor per record file, by path. */
  files: Record<string, FileCursor>;
  /** No longer written (SpendState.rollouts replaced it); ignored when read. */
  foreign?: string[];
}

/** An opencode database: its files' sizes and times when last read, and the last event seq per session. */
export interface DbCursor {
  stamp: string;
  seqs: Record<string, number>;
  recent?: [string, TokenCounts][];
  memo?: ReaderMemo;
}

export interface SpendState {
  version: 1;
  ledger: { file: string; bytes: number; compactedBytes: number };
  agents: Record<string, AgentMeter>;
  opencode: Record<string, DbCursor>;
  /**
   * The working directory each Codex rollout of the recent day folders names, by path: every Codex agent lists
   * the same folders, so the fleet keeps this once (not a list of the other agents' rollouts per agent, which
   * grew with the square of the Codex agents) and a rollout's first line is read once.
   */
  rollouts?: Record<string, string>;
}

export function spendDir(stateDir: string): string {
  return join(stateDir, 'spend');
}

export function emptySpendState(): SpendState {
  return {
    version: 1,
    ledger: { file: 'ledger-1.jsonl', bytes: 0, compactedBytes: 0 },
    agents: {},
    opencode: {},
  };
}

/** The committed state (an unreadable or foreign one starts afresh: the ledger file it named is kept). */
export function readSpendState(stateDir: string): SpendState {
  const r = readNoFollowSync(join(spendDir(stateDir), 'meter.json'));
  if (r.kind !== 'file') return emptySpendState();
  try {
    const v = JSON.parse(r.content) as SpendState;
    if (v.version !== 1 || typeof v.ledger?.file !== 'string' || !/^ledger-\d+\.jsonl$/.test(v.ledger.file)) {
      return emptySpendState();
    }
    return { ...v, agents: v.agents ?? {}, opencode: v.opencode ?? {} };
  } catch {
    return emptySpendState();
  }
}

/** The committed ledger entries (the bytes meter.json vouches for; a longer tail is an uncommitted run's). */
export function readLedger(stateDir: string, state: SpendState = readSpendState(stateDir)): LedgerEntry[] {
  if (state.ledger.bytes === 0) return [];
  const r = readNoFollowSync(join(spendDir(stateDir), state.ledger.file));
  if (r.kind !== 'file') return [];
  const committed = Buffer.from(r.content, 'utf8').subarray(0, state.ledger.bytes).toString('utf8');
  const out: LedgerEntry[] = [];
  for (const line of committed.split('\n')) {
    const e = line === '' ? null : parseEntry(line);
    if (e !== null) out.push(e);
  }
  return out;
}

/** Test-only fault point: `FLEET_TEST_CRASH_IN_METER=1` dies by SIGKILL after the ledger append, before the commit. */
function crashInMeter(): void {
  if (process.env.FLEET_TEST_CRASH_IN_METER === '1') process.kill(process.pid, 'SIGKILL');
}

/** Append entries after the committed bytes (cutting off an uncommitted tail first), synced; the new length. */
function appendLedger(path: string, from: number, entries: readonly LedgerEntry[]): number {
  const text = Buffer.from(entries.map((e) => `${formatEntry(e)}\n`).join(''), 'utf8');
  const fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_NOFOLLOW, 0o644);
  try {
    ftruncateSync(fd, from);
    let done = 0;
    while (done < text.length) done += writeSync(fd, text, done, text.length - done, from + done);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return from + text.length;
}

/**
 * Commit one metering run: the ledger's new entries, then the state that names them (the commit point). With
 * no entries only the cursors move.
 */
export async function commitSpend(
  stateDir: string,
  state: SpendState,
  entries: readonly LedgerEntry[],
): Promise<SpendState> {
  const dir = spendDir(stateDir);
  const root = homeOfStateDir(stateDir);
  await mkdirNoFollow(root, dir);
  let next = state;
  if (entries.length > 0) {
    const bytes = appendLedger(join(dir, state.ledger.file), state.ledger.bytes, entries);
    next = { ...state, ledger: { ...state.ledger, bytes } };
    crashInMeter();
  }
  await writeFileAtomic(join(dir, 'meter.json'), `${JSON.stringify(next)}\n`, 0o644, root);
  return next;
}

/** Compaction threshold: a ledger grows to twice its compacted size (and at least this) before it is rewritten. */
const COMPACT_MIN_BYTES = 256 * 1024;

/**
 * Rewrite the ledger merged (hours older than the retention as days) into the next generation's file, commit
 * the state naming it, then remove the old file. Totals are unchanged; a crash leaves either generation whole.
 */
export async function compactIfDue(stateDir: string, state: SpendState, nowMs: number): Promise<SpendState> {
  const { bytes, compactedBytes, file } = state.ledger;
  if (bytes < COMPACT_MIN_BYTES || bytes < 2 * compactedBytes) return state;
  const dir = spendDir(stateDir);
  const root = homeOfStateDir(stateDir);
  const merged = compactEntries(readLedger(stateDir, state), nowMs);
  const text = merged.map((e) => `${formatEntry(e)}\n`).join('');
  const gen = Number(/\d+/.exec(file)?.[0] ?? '1') + 1;
  const nextFile = `ledger-${gen}.jsonl`;
  await writeFileAtomic(join(dir, nextFile), text, 0o644, root);
  const size = Buffer.byteLength(text, 'utf8');
  const next = { ...state, ledger: { file: nextFile, bytes: size, compactedBytes: size } };
  await writeFileAtomic(join(dir, 'meter.json'), `${JSON.stringify(next)}\n`, 0o644, root);
  await rm(join(dir, file), { force: true });
  return next;
}
