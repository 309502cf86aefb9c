/**
 * Fuzzed manifests: a seeded generator (no dependency, same cases every run) mixes valid rosters with
 * mutations — random bytes, deep nesting, aliases (cycles, billion laughs), huge flow lines, wrong types,
 * unicode, control characters, truncation — and every case must get the CLI contract: exit 0 or 1, no stack
 * trace, every line naming the file, within 2 s.
 *
 * "Within 2 s" is measured as CPU time (user + system) of the work: on a shared 2-core CI runner the wall
 * clock measures the neighbours (other test files, their systemd sandboxes) as much as this code. Wall time is
 * reported and held to a looser bound that only a hang would break.
 *
 * Most cases run in-process through the real `validateCommand` (the code `fleet validate` runs) and, when
 * valid, through the load and plan of `fleet reconcile --dry-run` (loadDesired → plan, against a quiet
 * in-memory machine); a sample runs through the built CLI, `node bin/fleet.js validate FILE`.
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadDesired } from '../../src/manifest/load.js';
import { MANIFEST_LIMITS } from '../../src/manifest/parse.js';
import { observedBuilder } from '../helpers/builders.js';
import { planFor } from '../helpers/planning.js';
import {
  CTX,
  FLEET_BIN,
  STACK_TRACE,
  assertFreshBuild,
  validateInProcess,
  writeManifests,
  type Outcome,
} from './helpers.js';

const CASES = 520;
const CLI_SAMPLE = 30;
const LIMIT_MS = 2000;
/** Wall-clock bound: catches a hang (or sleeping on I/O) without failing on a busy runner. */
const WALL_LIMIT_MS = 10_000;

/** mulberry32: small, fast, and the same sequence for the same seed on every machine. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class Gen {
  constructor(readonly next: () => number) {}
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(0, items.length - 1)];
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
}

const RUNTIMES = ['claude', 'codex', 'opencode', 'pi', 'stub'];
const ODD_STRINGS = [
  'héllo wörld',
  '日本語のエージェント',
  '🤖🔥',
  'ﷺ‮rtl‬',
  '\u0000nul',
  'tab\there',
  'line\nbreak',
  'cr\rhere',
  '\u001b[31mred',
  '$(rm -rf ~)',
  '`id`',
  'a;b|c&d',
  '../../etc/passwd',
  '~/x',
  '\ufeffbom',
  '\ud800lone',
  'x'.repeat(5000),
  '',
  ' ',
  '-',
  '*',
  '&',
  'null',
  'true',
  '0x1F',
  '1e309',
  '.inf',
];
const WRONG_VALUES = [
  '[]',
  '{}',
  '[1, 2]',
  '{a: 1}',
  '~',
  'true',
  '-1',
  '1.5',
  '9999999999999999999999',
  '"1"',
  '!!binary aGVsbG8=',
  '!custom x',
  '2001-12-14',
];

function quoted(s: string): string {
  return JSON.stringify(s);
}

/** A valid roster (block or flow style), sometimes with comments, defaults and runtimes. */
function validRoster(g: Gen): string {
  const n = g.int(0, 8);
  const lines = ['version: 1'];
  if (g.chance(0.5)) lines.push(`tmux:\n  socket_name: fz${g.int(0, 9)}\n  holder_session: _holder`);
  if (g.chance(0.3))
    lines.push('defaults:\n  working_directory: /tmp\n  heartbeat:\n    stale_after_seconds: 90');
  if (g.chance(0.2)) lines.push('reconcile:\n  restart:\n    policy: immediate');
  if (g.chance(0.3)) lines.push('# a comment');
  if (n === 0) return `${lines.join('\n')}\n`;
  if (g.chance(0.3)) {
    const agents = Array.from(
      { length: n },
      (_, i) => `{name: a${i}, runtime: ${g.pick(RUNTIMES)}, model_hint: m${i}}`,
    );
    lines.push(`agents: [${agents.join(', ')}]`);
  } else {
    lines.push('agents:');
    for (let i = 0; i < n; i++) {
      lines.push(`  - name: a${i}`, `    runtime: ${g.pick(RUNTIMES)}`);
      if (g.chance(0.4)) lines.push(`    class: c${g.int(0, 3)}`);
      if (g.chance(0.4)) lines.push(`    model_hint: m${g.int(0, 3)}`);
      if (g.chance(0.2)) lines.push(`    enabled: ${g.pick(['true', 'false'])}`);
      if (g.chance(0.2)) lines.push(`    description: ${quoted(g.pick(ODD_STRINGS.slice(0, 4)))}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

type Mutation = (g: Gen, text: string) => string;

const MUTATIONS: Record<string, Mutation> = {
  none: (_g, t) => t,
  randomBytes: (g, t) => {
    let out = t;
    for (let k = g.int(1, 20); k > 0; k--) {
      const at = g.int(0, out.length);
      out = out.slice(0, at) + String.fromCharCode(g.int(0, 255)) + out.slice(at);
    }
    return out;
  },
  garbage: (g) =>
    Array.from({ length: g.int(1, 2000) }, () => String.fromCharCode(g.int(0, 0xffff))).join(''),
  truncate: (g, t) => t.slice(0, g.int(0, t.length)),
  deleteLines: (g, t) =>
    t
      .split('\n')
      .filter(() => !g.chance(0.3))
      .join('\n'),
  shuffleIndent: (g, t) =>
    t
      .split('\n')
      .map((l) => (g.chance(0.3) ? `${' '.repeat(g.int(0, 6))}${l.trimStart()}` : l))
      .join('\n'),
  deepFlow: (g, t) => {
    const d = g.pick([10, 31, 33, 200, 5000, 100_000]);
    return `${t}deep: ${'['.repeat(d)}${g.chance(0.5) ? ']'.repeat(d) : ''}\n`;
  },
  deepBlock: (g, t) => {
    const d = g.pick([10, 30, 40, 300]);
    return `${t}deep:\n${Array.from({ length: d }, (_, i) => `${' '.repeat(i + 1)}k:`).join('\n')}\n`;
  },
  aliasCycle: (g, t) =>
    g.pick([
      `${t}loop: &l [*l]\n`,
      `${t}loop: &l {x: *l}\n`,
      t.replace('agents:', 'agents: &ag').replace(/\n$/, '\n  - *ag\n'),
      `x: &x\n  y: *x\n${t}`,
    ]),
  aliasValid: (g, t) => `${t}x-anchor: &v ${g.pick(['1', 'abc', '[1, 2]', '{a: b}'])}\nx-use: [*v, *v]\n`,
  aliasUnknown: (_g, t) => `${t}x: *nowhere\n`,
  billionLaughs: (g, t) => {
    const levels = g.int(3, 9);
    const out = [`l0: &l0 [${Array(10).fill('lol').join(', ')}]`];
    for (let i = 1; i < levels; i++)
      out.push(
        `l${i}: &l${i} [${Array(10)
          .fill(`*l${i - 1}`)
          .join(', ')}]`,
      );
    return `${t}${out.join('\n')}\n`;
  },
  manyAliases: (g, t) => `${t}a: &a 1\nb: [${Array(g.int(90, 400)).fill('*a').join(', ')}]\n`,
  hugeFlowLine: (g, t) => {
    const n = g.pick([1_000, 30_000, 60_000, 120_000]);
    return `${t}big: [${Array(n)
      .fill(g.pick(['1', 'ab', '{a: 1}']))
      .join(',')}]\n`;
  },
  hugeString: (g, t) => `${t}description: "${'z'.repeat(g.pick([1_000, 200_000, 300_000]))}"\n`,
  manyAgents: (g) =>
    `version: 1\nagents: [${Array.from({ length: g.int(500, 4000) }, (_, i) => `{name: a${g.chance(0.01) ? 0 : i}, runtime: ${g.pick([...RUNTIMES, 'nope'])}}`).join(', ')}]\n`,
  wrongType: (g, t) => {
    const keys = ['version', 'name', 'runtime', 'model_hint', 'enabled', 'socket_name', 'agents', 'tmux'];
    const key = g.pick(keys);
    const re = new RegExp(`(${key}:) [^\\n]*`);
    return re.test(t) ? t.replace(re, `$1 ${g.pick(WRONG_VALUES)}`) : `${t}${key}: ${g.pick(WRONG_VALUES)}\n`;
  },
  oddValue: (g, t) =>
    t.replace(/(name|model_hint|class|runtime): [^\n,}]*/, `$1: ${quoted(g.pick(ODD_STRINGS))}`),
  rawControl: (g, t) => {
    const at = g.int(0, t.length);
    return (
      t.slice(0, at) +
      g.pick(['\u0000', '\u0007', '\u001b', '\r', '\t', '\u2028', '\ufeff', '\u0085']) +
      t.slice(at)
    );
  },
  duplicateKey: (_g, t) => `${t}version: 1\n`,
  multiDoc: (_g, t) => `${t}---\n${t}`,
  complexKey: (_g, t) => `${t}? [a, b]\n: 1\n`,
  tags: (g, t) =>
    `${t}x: ${g.pick(['!!set {a}', '!!omap [a: 1]', '!!js/function "f"', '!!str 1', '!<tag:x> y'])}\n`,
  directives: (_g, t) => `%YAML 1.1\n%TAG ! tag:x,2000:\n---\n${t}`,
};
const MUTATION_NAMES = Object.keys(MUTATIONS);

interface Case {
  id: number;
  mutations: string[];
  text: string;
}

function makeCases(seed: number, count: number): Case[] {
  const g = new Gen(prng(seed));
  const cases: Case[] = [];
  for (let id = 0; id < count; id++) {
    // Every mutation at least four times (round robin first); then one in five cases stays valid (the plan
    // must be made), the rest stack one to three random mutations.
    const roundRobin = id < MUTATION_NAMES.length * 4;
    const first = roundRobin
      ? MUTATION_NAMES[id % MUTATION_NAMES.length]
      : g.chance(0.2)
        ? 'none'
        : g.pick(MUTATION_NAMES);
    const mutations = [first];
    if (first !== 'none') for (let k = g.int(0, 2); k > 0; k--) mutations.push(g.pick(MUTATION_NAMES));
    let text = validRoster(g);
    for (const m of mutations) text = MUTATIONS[m](g, text);
    cases.push({ id, mutations, text });
  }
  return cases;
}

/** The CLI contract for one file: exit 0 or 1, no stack trace, every output line names the file. */
function checkContract(file: string, r: Outcome, label: string): void {
  expect([0, 1], `${label}: exit ${r.code}\n${r.stderr.slice(0, 500)}`).toContain(r.code);
  expect(r.stderr, label).not.toMatch(STACK_TRACE);
  expect(r.stdout, label).not.toMatch(STACK_TRACE);
  const lines = (r.code === 0 ? r.stdout : r.stderr).split('\n').filter((l) => l !== '');
  expect(lines.length, label).toBeGreaterThan(0);
  for (const line of lines) {
    if (line.startsWith('fleet validate: ')) continue; // the summary: "N problems in 1 file"
    expect(line.startsWith(`${file}:`), `${label}: ${line.slice(0, 200)}`).toBe(true);
  }
}

/**
 * `node bin/fleet.js validate FILE` with a private home, and the CPU time it used: bash's `times` prints its
 * children's user and system time (to fd 3, so the CLI's own output stays as it was).
 */
function timedCli(file: string, cwd: string): Outcome & { cpuMs: number } {
  const r = spawnSync(
    'bash',
    ['-c', '"$0" "$1" validate "$2"; rc=$?; times >&3; exit $rc', process.execPath, FLEET_BIN, file],
    {
      cwd,
      encoding: 'utf8',
      timeout: 60_000,
      stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
      env: { PATH: process.env.PATH, HOME: cwd, MOSAIC_HOME: join(cwd, 'no-such-home'), NO_COLOR: '1' },
    },
  );
  // `times`: the shell's own user/sys, then its children's: "0m1.234s 0m0.056s".
  const children =
    String(r.output[3] ?? '')
      .trim()
      .split('\n')[1] ?? '';
  const seconds = [...children.matchAll(/(\d+)m([\d.]+)s/g)].map((m) => Number(m[1]) * 60 + Number(m[2]));
  expect(seconds, `times: ${children}`).toHaveLength(2);
  return {
    code: r.status ?? -1,
    stdout: r.stdout,
    stderr: r.stderr,
    cpuMs: ((seconds[0] ?? 0) + (seconds[1] ?? 0)) * 1000,
  };
}

const SEED = 0x5eed_f1ee;
const cases = makeCases(SEED, CASES);

describe(`fuzzed manifests (${CASES} cases, seed ${SEED.toString(16)})`, () => {
  let dir = '';
  let cleanup: (() => void) | undefined;
  beforeAll(() => {
    const m = writeManifests({});
    dir = m.dir;
    cleanup = m.cleanup;
    for (const c of cases) writeFileSync(join(dir, `case-${c.id}.yaml`), c.text);
  });
  afterAll(() => cleanup?.());

  it('the generator covers every mutation and the limits', () => {
    const used = new Set(cases.flatMap((c) => c.mutations));
    expect([...used].sort()).toEqual([...MUTATION_NAMES].sort());
    expect(cases.some((c) => Buffer.byteLength(c.text) > MANIFEST_LIMITS.maxBytes)).toBe(true);
  });

  it('in-process: validate and the dry-run plan answer every case with exit 0 or 1, naming the file, within 2 s', async () => {
    const outcomes = { valid: 0, invalid: 0, planned: 0 };
    let slowest = { ms: 0, id: -1 };
    let slowestWall = 0;
    for (const c of cases) {
      const file = join(dir, `case-${c.id}.yaml`);
      const label = `case ${c.id} (${c.mutations.join('+')})`;
      const t0 = performance.now();
      const cpu0 = process.cpuUsage();
      const r = await validateInProcess([file]);
      checkContract(file, r, label);
      if (r.code === 0) {
        outcomes.valid++;
        // What `reconcile --dry-run` does next with a valid fleet: load it and plan against the machine.
        const desired = await loadDesired([file], CTX);
        const plan = planFor(desired, observedBuilder().build());
        expect(plan.actions.length, label).toBeGreaterThan(0);
        outcomes.planned++;
      } else {
        outcomes.invalid++;
      }
      const cpu = process.cpuUsage(cpu0);
      const ms = (cpu.user + cpu.system) / 1000;
      const wall = performance.now() - t0;
      if (ms > slowest.ms) slowest = { ms, id: c.id };
      slowestWall = Math.max(slowestWall, wall);
      expect(ms, `${label} took ${Math.round(ms)} ms of CPU`).toBeLessThan(LIMIT_MS);
      expect(wall, `${label} took ${Math.round(wall)} ms`).toBeLessThan(WALL_LIMIT_MS);
    }
    // Both outcomes are exercised: a fuzzer that only ever produces garbage tests nothing but the parser.
    expect(outcomes.valid).toBeGreaterThan(CASES / 20);
    expect(outcomes.invalid).toBeGreaterThan(CASES / 2);
    console.info(
      `fuzz: ${CASES} cases, ${outcomes.valid} valid (planned), ${outcomes.invalid} refused; slowest case ${slowest.id}: ${Math.round(slowest.ms)} ms CPU; slowest wall ${Math.round(slowestWall)} ms`,
    );
  }, 240_000);

  describe('through the built CLI (node bin/fleet.js validate)', () => {
    beforeAll(() => assertFreshBuild());

    it(`a sample of ${CLI_SAMPLE}, including the heaviest, keeps the contract within 2 s each`, () => {
      // The heaviest inputs by size, then an even spread over the rest.
      const bySize = [...cases].sort((a, b) => b.text.length - a.text.length);
      const sample = new Set(bySize.slice(0, 10).map((c) => c.id));
      for (let i = 0; sample.size < CLI_SAMPLE; i += Math.floor(CASES / CLI_SAMPLE)) sample.add(i % CASES);
      let slowest = 0;
      let slowestWall = 0;
      for (const id of sample) {
        const c = cases[id];
        const file = `case-${id}.yaml`;
        const t0 = performance.now();
        const r = timedCli(file, dir);
        const wall = performance.now() - t0;
        slowest = Math.max(slowest, r.cpuMs);
        slowestWall = Math.max(slowestWall, wall);
        const label = `cli case ${id} (${c.mutations.join('+')})`;
        checkContract(file, r, label);
        expect(r.cpuMs, `${label} took ${Math.round(r.cpuMs)} ms of CPU`).toBeLessThan(LIMIT_MS);
        expect(wall, `${label} took ${Math.round(wall)} ms`).toBeLessThan(WALL_LIMIT_MS);
      }
      console.info(
        `fuzz via CLI: ${sample.size} cases, slowest ${Math.round(slowest)} ms CPU (node start-up included), ${Math.round(slowestWall)} ms wall`,
      );
    }, 120_000);
  });
});
