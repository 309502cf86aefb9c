import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createRunner } from '../../src/exec.js';
import { resolvePaths, type FleetPaths } from '../../src/paths.js';
import { HOUR_MS, compactEntries, DAY_MS } from '../../src/spend/ledger.js';
import { claudeProjectDir, piSessionDir } from '../../src/spend/locate.js';
import { meter, type MeteredAgent } from '../../src/spend/meter.js';
import { commitSpend, readLedger, readSpendState, spendDir } from '../../src/spend/store.js';
import { totalOf, zeroTokens } from '../../src/spend/usage.js';
import { claudeLines, codexLines, piLine, served } from './fixtures.js';

let root: string;
let paths: FleetPaths;
const NOW = Date.parse('2026-12-07T12:30:00.000Z');
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'fleet-meter-'));
  paths = resolvePaths({ home: join(root, 'mosaic') }, { HOME: join(root, 'home') });
  mkdirSync(paths.runDir, { recursive: true });
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

const callTotal = (n: number): number => {
  const s = served(n);
  return s.input + s.output + s.cache_read + s.cache_write;
};
function spent(agent?: string): number {
  return readLedger(paths.stateDir)
    .filter((e) => agent === undefined || e.agent === agent)
    .reduce((n, e) => n + totalOf(e.tokens), 0);
}

const CLAUDE: MeteredAgent = { name: 'cc0', runtime: 'claude', kind: 'claude', workdir: '/work/cc0' };
function claudeFile(session = 's1'): string {
  const dir = join(root, 'home', '.claude', 'projects', claudeProjectDir(CLAUDE.workdir));
  mkdirSync(dir, { recursive: true });
  return join(dir, `${session}.jsonl`);
}

describe('meter: incremental, into a ledger that outlives the transcripts', () => {
  it('counts each call once; a no-op run writes nothing; a deleted transcript never lowers the total', async () => {
    const runner = createRunner();
    const f = claudeFile();
    writeFileSync(f, `${claudeLines(1, 2).join('\n')}\n`);
    const first = await meter([CLAUDE], paths, runner, NOW);
    expect(first.wrote).toBe(true);
    expect(spent('cc0')).toBe(callTotal(1));
    const noop = await meter([CLAUDE], paths, runner, NOW);
    expect(noop.wrote).toBe(false);
    appendFileSync(f, `${claudeLines(2)[0]}\n`);
    writeFileSync(claudeFile('s2'), `${claudeLines(3)[0]}\n`);
    await meter([CLAUDE], paths, runner, NOW + HOUR_MS);
    expect(spent('cc0')).toBe(callTotal(1) + callTotal(2) + callTotal(3));
    rmSync(f);
    await meter([CLAUDE], paths, runner, NOW + 2 * HOUR_MS);
    expect(spent('cc0')).toBe(callTotal(1) + callTotal(2) + callTotal(3));
    expect(Object.keys(readSpendState(paths.stateDir).agents.cc0?.files ?? {})).toEqual([claudeFile('s2')]);
    expect(runner.log).toEqual([]);
  });

  it('pi and codex agents in one HOME: each reads its own working directory’s records', async () => {
    const pi: MeteredAgent = { name: 'pi0', runtime: 'pi', kind: 'pi', workdir: '/work/pi0' };
    const cx: MeteredAgent = { name: 'cx0', runtime: 'codex', kind: 'codex', workdir: '/work/cx0' };
    const cx1: MeteredAgent = { ...cx, name: 'cx1', workdir: '/work/cx1' };
    const piDir = join(root, 'home', '.pi', 'agent', 'sessions', piSessionDir(pi.workdir));
    mkdirSync(piDir, { recursive: true });
    writeFileSync(
      join(piDir, '2026-12-07T10-00-00_abc.jsonl'),
      `${JSON.stringify({ type: 'session' })}\n${piLine(1)}\n`,
    );
    const d = new Date(NOW);
    const day = join(
      root,
      'home',
      '.codex',
      'sessions',
      String(d.getFullYear()),
      String(d.getMonth() + 1).padStart(2, '0'),
      String(d.getDate()).padStart(2, '0'),
    );
    mkdirSync(day, { recursive: true });
    const meta = (cwd: string) => JSON.stringify({ type: 'session_meta', payload: { id: 't', cwd } });
    writeFileSync(join(day, 'rollout-a-t1.jsonl'), `${meta(cx.workdir)}\n${codexLines(2).join('\n')}\n`);
    writeFileSync(join(day, 'rollout-b-t2.jsonl'), `${meta(cx1.workdir)}\n${codexLines(3).join('\n')}\n`);
    await meter([pi, cx, cx1], paths, createRunner(), NOW);
    expect(spent('pi0')).toBe(callTotal(1));
    // The Responses API has no cache-write figure: Codex records none.
    expect(spent('cx0')).toBe(callTotal(2) - served(2).cache_write);
    expect(spent('cx1')).toBe(callTotal(3) - served(3).cache_write);
    // Which rollout is whose is kept once for the fleet, not per agent (a list per agent grew with the square of
    // the Codex agents, and every no-op read it: docs/benchmarks.md).
    const state = readSpendState(paths.stateDir);
    expect(state.rollouts).toEqual({
      [join(day, 'rollout-a-t1.jsonl')]: cx.workdir,
      [join(day, 'rollout-b-t2.jsonl')]: cx1.workdir,
    });
    expect(state.agents.cx0?.foreign).toBeUndefined();
    // A later run with a new agent and the first rollout gone: the new agent takes no one's rollout, the gone one
    // is forgotten, and nothing is counted again.
    rmSync(join(day, 'rollout-a-t1.jsonl'));
    const cx2: MeteredAgent = { ...cx, name: 'cx2', workdir: '/work/cx2' };
    await meter([pi, cx, cx1, cx2], paths, createRunner(), NOW + HOUR_MS);
    expect(readSpendState(paths.stateDir).rollouts).toEqual({
      [join(day, 'rollout-b-t2.jsonl')]: cx1.workdir,
    });
    expect(spent('cx1')).toBe(callTotal(3) - served(3).cache_write);
    expect(spent('cx0')).toBe(callTotal(2) - served(2).cache_write);
    expect(spent('cx2')).toBe(0);
  });

  it('an uncommitted ledger tail (a run killed before its commit) is ignored, then cut off by the next run', async () => {
    const f = claudeFile();
    writeFileSync(f, `${claudeLines(1)[0]}\n`);
    await meter([CLAUDE], paths, createRunner(), NOW);
    const state = readSpendState(paths.stateDir);
    const ledger = join(spendDir(paths.stateDir), state.ledger.file);
    // What a killed run leaves: its appended lines, synced, but meter.json still names the old length.
    appendFileSync(ledger, `${readFileSync(ledger, 'utf8')}{"torn":`);
    expect(spent()).toBe(callTotal(1));
    appendFileSync(f, `${claudeLines(2)[0]}\n`);
    await meter([CLAUDE], paths, createRunner(), NOW);
    expect(spent()).toBe(callTotal(1) + callTotal(2));
    expect(readFileSync(ledger, 'utf8').split('\n').filter(Boolean)).toHaveLength(2);
  });

  it('compaction folds old hours into days and keeps every total', async () => {
    const tokens = { ...zeroTokens(), input: 7 };
    const entries = Array.from({ length: 24 * 40 }, (_, h) => ({
      agent: 'a',
      runtime: 'claude',
      model: 'm',
      at: NOW - h * HOUR_MS,
      span: 'h' as const,
      tokens,
    }));
    const compacted = compactEntries(entries, NOW);
    expect(compacted.reduce((n, e) => n + e.tokens.input, 0)).toBe(7 * 24 * 40);
    expect(compacted.filter((e) => e.span === 'd').every((e) => e.at % DAY_MS === 0)).toBe(true);
    expect(compacted.length).toBeLessThan(24 * 31 + 12);
    const state = await commitSpend(paths.stateDir, readSpendState(paths.stateDir), entries);
    expect(state.ledger.bytes).toBeGreaterThan(0);
    expect(spent()).toBe(7 * 24 * 40);
  });
});
