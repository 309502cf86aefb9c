/** What the benchmark's parts share: the fleet's names, statistics, and waiting for agents to run. */
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Sandbox } from '../src/dev/sandbox.js';

export const REPO = resolve(import.meta.dirname, '..');
export const FLEET_BIN = join(REPO, 'bin', 'fleet.js');
export const SOCKET = 'bench-fleet';

// ---------------------------------------------------------------------------------------------------------------
// statistics

export interface Stat {
  samples: number[];
  median: number;
  p90: number;
  min: number;
}

export function median(samples: readonly number[]): number {
  const sorted = [...samples].sort((a, b) => a - b);
  const mid = sorted.length / 2;
  return sorted.length % 2 === 1
    ? (sorted[Math.floor(mid)] ?? NaN)
    : ((sorted[mid - 1] ?? NaN) + (sorted[mid] ?? NaN)) / 2;
}

export function stat(samples: number[]): Stat {
  const sorted = [...samples].sort((a, b) => a - b);
  // Nearest rank: with 10 samples, p90 is the 9th, so one outlier does not become "p90".
  const rank = (p: number): number => sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)] ?? NaN;
  return {
    samples: samples.map(round1),
    median: round1(median(samples)),
    p90: round1(rank(0.9)),
    min: round1(sorted[0] ?? NaN),
  };
}

export function round1(x: number): number {
  return Math.round(x * 10) / 10;
}

export function round2(x: number): number {
  return Math.round(x * 100) / 100;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A positive number from the environment, or the default. */
export function envNumber(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, got "${raw}"`);
  return n;
}

/** A comma-separated list of positive integers from the environment, or the default. */
export function envSizes(name: string, fallback: string): number[] {
  return (process.env[name] ?? fallback)
    .split(',')
    .map((s) => Number(s.trim()))
    .filter((n) => Number.isInteger(n) && n > 0);
}

// ---------------------------------------------------------------------------------------------------------------
// the fleet

export function agentName(i: number): string {
  return `agent${String(i).padStart(4, '0')}`;
}

/** What a roster holds besides N agents of the stub runtime on the bench socket. */
export interface RosterSpec {
  /** Top-level lines after `tmux:` (a `runtimes:`, `alerts:`, `defaults:` or `register:` block). */
  top?: readonly string[];
  /** Agent i's runtime (default `stub`). */
  runtime?: (i: number) => string;
  /** More fields of agent i, one YAML line each without indentation (`working_directory: ~/w/x`). */
  fields?: (i: number) => readonly string[];
}

export function roster(n: number, spec: RosterSpec = {}): string {
  const agents = Array.from({ length: n }, (_, i) =>
    [
      `  - name: ${agentName(i)}`,
      `    runtime: ${spec.runtime?.(i) ?? 'stub'}`,
      '    class: coder',
      '    model_hint: m1',
      ...(spec.fields?.(i) ?? []).map((f) => `    ${f}`),
      '',
    ].join('\n'),
  );
  return [
    '# Written by bench/run.ts',
    'version: 1',
    'transport: tmux',
    'tmux:',
    `  socket_name: ${SOCKET}`,
    ...(spec.top ?? []),
    n === 0 ? 'agents: []' : 'agents:',
    ...agents,
  ].join('\n');
}

export function rosterPath(sb: Sandbox): string {
  return join(sb.paths.mosaicHome, 'fleet', 'roster.yaml');
}

export async function writeRoster(sb: Sandbox, n: number, spec: RosterSpec = {}): Promise<void> {
  await mkdir(join(sb.paths.mosaicHome, 'fleet'), { recursive: true });
  await writeFile(rosterPath(sb), `${roster(n, spec)}\n`);
}

/** Live (not dead) panes on the bench socket, by session name. */
export async function liveSessions(sb: Sandbox): Promise<Set<string>> {
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

export async function waitForSessions(sb: Sandbox, n: number, timeoutMs = 60_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const live = await liveSessions(sb);
    const missing = Array.from({ length: n }, (_, i) => agentName(i)).filter((a) => !live.has(a));
    if (missing.length === 0) return;
    if (performance.now() > deadline) {
      throw new Error(
        `${missing.length} agent sessions not running: ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? '…' : ''}`,
      );
    }
    await sleep(200);
  }
}
