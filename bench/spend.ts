/**
 * Spend metering's cost at rest (issue 21, "cost stays flat"): a no-op `fleet reconcile` of a fleet whose agents
 * have a long history in their runtimes' own records costs what the same fleet with no history costs.
 *
 * The fleet: BENCH_SPEND_N agents (100) of the stub program, declared as the runtimes `claude`, `codex` and `pi`
 * in turn (each built-in overridden to run the stub, with no state signal), so metering reads each agent's
 * records where that runtime keeps them, in the sandbox's HOME, through the real readers
 * (src/runtimes/<name>/usage.ts): Claude Code transcripts in `~/.claude/projects/<cwd>/` (4 sessions each, one
 * reply in four written as two lines, one per content block, as Claude Code does), Codex rollouts in today's
 * `~/.codex/sessions/YYYY/MM/DD/` (2 each, all agents' in the one folder, told apart by their session_meta
 * `cwd`), pi session files in `~/.pi/agent/sessions/--<cwd>--/` (2 each). Every agent has its own working
 * directory. BENCH_SPEND_TURNS (1000) turns per agent, a user line and the reply each, spread over the last
 * BENCH_SPEND_HOURS (48) hours. The records are written, one reconcile meters them all (timed; the ledger's
 * totals are checked against what was written), and from then on every reconcile is a no-op with the cursors
 * at the end of every file.
 *
 * The two fleets in one run: the sandbox is switched between them by renaming the record folders and the
 * metering state (`<state dir>/spend`) aside, so "no history" is the same 100 running agents with no record files
 * and a metering state that knows their roots but no file. Then rounds (the order rotated each round, one
 * unmeasured warm-up round), each running one no-op reconcile of each fleet: CPU (user + sys of the fleet process
 * and its children), wall time and bytes read (rchar, bench/proc.ts). Then the same with a budget on every agent
 * (`defaults.budget`): budgets make each run read the ledger (src/engine/spend-observe.ts).
 */
import { randomUUID } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Sandbox } from '../src/dev/sandbox.js';
import { claudeProjectDir, codexDayDirs, piSessionDir } from '../src/spend/locate.js';
import { applyRoster, expectCode, fleet, noop, pruneAll, rounds, type Sample } from './cli.js';
import {
  agentName,
  envNumber,
  median,
  round1,
  round2,
  stat,
  writeRoster,
  type RosterSpec,
  type Stat,
} from './common.js';

export const SPEND = {
  n: Math.round(envNumber('BENCH_SPEND_N', 100)),
  turns: Math.round(envNumber('BENCH_SPEND_TURNS', 1000)),
  hours: envNumber('BENCH_SPEND_HOURS', 48),
  reps: Math.round(envNumber('BENCH_SPEND_REPS', 15)),
  /** 0: skip the second pair of fleets, the one with a budget on every agent. */
  budgets: process.env.BENCH_SPEND_BUDGETS !== '0',
};

const KINDS = ['claude', 'codex', 'pi'] as const;
type Kind = (typeof KINDS)[number];
const kindOf = (i: number): Kind => KINDS[i % KINDS.length] ?? 'claude';
const MODELS: Record<Kind, string> = { claude: 'claude-sonnet-4-5', codex: 'gpt-5-codex', pi: 'qwen3-coder' };
const FILES_PER_AGENT: Record<Kind, number> = { claude: 4, codex: 2, pi: 2 };

interface Variant {
  wall: Stat;
  cpu: Stat;
  readBytes: Stat;
}

interface Block {
  history: Variant;
  none: Variant;
  /** Median CPU with history / median CPU without. */
  cpuRatio: number;
  /**
   * The median over rounds of (CPU with history / CPU without, in the same round): the two runs of a round are
   * next to each other, so load that comes and goes falls on both. The target's figure: ≤ 1.10.
   */
  pairedRatio: number;
  /** Median bytes read with history minus without: what the history costs a no-op to read. */
  extraReadBytes: number;
}

export interface SpendResult {
  n: number;
  turns: number;
  hours: number;
  records: { files: number; bytes: number; lines: number; tokens: number };
  /** The one reconcile that metered every record from the start. */
  firstMeter: { wallMs: number; cpuMs: number; readBytes: number | null };
  /** `fleet spend --window all --json`'s total against the tokens written. */
  meteredTokens: number;
  ledger: { file: string; bytes: number; entries: number };
  meterStateBytes: number;
  /** Whether the no-ops wrote anything to the metering state or the ledger (they must not). */
  noopsWrote: boolean;
  plain: Block;
  budgets?: Block;
}

function spendRoster(sb: Sandbox, budgets: boolean): RosterSpec {
  const stub = join(sb.paths.mosaicHome, 'tools', 'fleet', 'stub-agent.sh');
  return {
    top: [
      'runtimes:',
      ...KINDS.flatMap((k) => [
        `  ${k}:`,
        `    command: ${stub}`,
        '    programs: []',
        '    state: none',
        '    exit_keys: []',
        '    resume: false',
        '    heartbeat: true',
      ]),
      ...(budgets ? ['defaults:', '  budget: {window: 7d, tokens: 1000000000000, on_exceed: warn}'] : []),
    ],
    runtime: kindOf,
    fields: (i) => [`working_directory: ~/w/${agentName(i)}`],
  };
}

const workdirOf = (sb: Pick<Sandbox, 'paths'>, i: number): string =>
  join(sb.paths.userHome, 'w', agentName(i));

/** Turn k of an agent: its time and figures (what a model server might report; varied, never zero). */
function turn(k: number, fromMs: number, stepMs: number) {
  return {
    at: new Date(fromMs + k * stepMs + ((k * 7919) % 1000)).toISOString(),
    input: 20 + ((k * 37) % 3000),
    cacheRead: 15_000 + ((k * 131) % 20_000),
    cacheWrite: (k * 17) % 2_000,
    output: 40 + ((k * 53) % 1_500),
  };
}
type Turn = ReturnType<typeof turn>;
const tokensOf = (t: Turn): number => t.input + t.cacheRead + t.cacheWrite + t.output;

/** A user prompt of a few hundred bytes, as the records hold them (the reply's text is shorter). */
const PROMPT =
  'Please run the test suite for the parser module, look at the failures, and fix the one about nested ' +
  'quotes in the lexer; keep the change small and explain what was wrong before you touch anything else.';

function claudeLines(cwd: string, session: string, k: number, t: Turn): string[] {
  const base = { parentUuid: null, isSidechain: false, userType: 'external', cwd, sessionId: session };
  const user = JSON.stringify({
    ...base,
    version: '2.0.14',
    gitBranch: 'main',
    type: 'user',
    message: { role: 'user', content: PROMPT },
    uuid: randomUUID(),
    timestamp: t.at,
  });
  // One reply in four used a tool: Claude Code writes one line per content block, each with the same usage.
  const blocks = k % 4 === 3 ? 2 : 1;
  const usage = {
    input_tokens: t.input,
    cache_creation_input_tokens: t.cacheWrite,
    cache_read_input_tokens: t.cacheRead,
    output_tokens: t.output,
    service_tier: 'standard',
  };
  const replies = Array.from({ length: blocks }, (_, b) =>
    JSON.stringify({
      ...base,
      version: '2.0.14',
      gitBranch: 'main',
      requestId: `req_${session.slice(0, 8)}_${k}`,
      type: 'assistant',
      uuid: randomUUID(),
      timestamp: t.at,
      message: {
        id: `msg_${session.slice(0, 8)}_${k}`,
        type: 'message',
        role: 'assistant',
        model: MODELS.claude,
        content: [
          b === 0
            ? { type: 'text', text: 'Running the parser tests now; two failures look related to escaping.' }
            : { type: 'tool_use', id: `toolu_${k}`, name: 'Bash', input: { command: 'npm test -- parser' } },
        ],
        stop_reason: b === blocks - 1 ? 'end_turn' : null,
        usage,
      },
    }),
  );
  return [user, ...replies];
}

function codexLines(cwd: string, t: Turn): string[] {
  return [
    JSON.stringify({
      timestamp: t.at,
      type: 'turn_context',
      payload: { cwd, approval_policy: 'never', model: MODELS.codex, effort: 'medium', summary: 'auto' },
    }),
    JSON.stringify({
      timestamp: t.at,
      type: 'response_item',
      payload: { type: 'message', role: 'user', content: [{ type: 'input_text', text: PROMPT }] },
    }),
    JSON.stringify({
      timestamp: t.at,
      type: 'token_usage_record',
      payload: {
        response_id: `resp_${randomUUID()}`,
        model: MODELS.codex,
        usage: {
          input_tokens: t.input + t.cacheRead,
          cached_input_tokens: t.cacheRead,
          cache_write_input_tokens: t.cacheWrite,
          output_tokens: t.output,
          reasoning_output_tokens: Math.floor(t.output / 3),
          total_tokens: t.input + t.cacheRead + t.cacheWrite + t.output,
        },
      },
    }),
    JSON.stringify({
      timestamp: t.at,
      type: 'event_msg',
      payload: {
        type: 'token_count',
        info: { last_token_usage: { input_tokens: t.input + t.cacheRead, output_tokens: t.output } },
      },
    }),
  ];
}

function piLines(t: Turn): string[] {
  return [
    JSON.stringify({
      type: 'message',
      id: randomUUID().slice(0, 8),
      parentId: null,
      timestamp: t.at,
      message: { role: 'user', content: [{ type: 'text', text: PROMPT }], timestamp: Date.parse(t.at) },
    }),
    JSON.stringify({
      type: 'message',
      id: randomUUID().slice(0, 8),
      parentId: null,
      timestamp: t.at,
      message: {
        role: 'assistant',
        content: [{ type: 'text', text: 'Running the parser tests now.' }],
        provider: 'local',
        model: MODELS.pi,
        responseId: `chatcmpl-${randomUUID()}`,
        usage: {
          input: t.input,
          output: t.output,
          cacheRead: t.cacheRead,
          cacheWrite: t.cacheWrite,
          totalTokens: tokensOf(t),
          cost: { input: 0, output: 0, cacheRead: 0, cacheWrite: 0, total: 0 },
        },
        stopReason: 'stop',
      },
    }),
  ];
}

/** Write agent i's record files; what they hold. */
export function writeRecords(
  sb: Pick<Sandbox, 'paths'>,
  i: number,
  nowMs: number,
): { files: number; bytes: number; lines: number; tokens: number } {
  const home = sb.paths.userHome;
  const cwd = workdirOf(sb, i);
  const kind = kindOf(i);
  const fromMs = nowMs - SPEND.hours * 3_600_000;
  const stepMs = (SPEND.hours * 3_600_000 - 600_000) / SPEND.turns;
  const per = FILES_PER_AGENT[kind];
  const out = { files: 0, bytes: 0, lines: 0, tokens: 0 };
  for (let f = 0; f < per; f++) {
    const session = randomUUID();
    const lines: string[] = [];
    const first = Math.floor((f * SPEND.turns) / per);
    const last = Math.floor(((f + 1) * SPEND.turns) / per);
    const startAt = turn(first, fromMs, stepMs).at;
    let path: string;
    switch (kind) {
      case 'claude':
        path = join(home, '.claude', 'projects', claudeProjectDir(cwd), `${session}.jsonl`);
        break;
      case 'codex':
        path = join(
          codexDayDirs(join(home, '.codex'), nowMs)[0] ?? '',
          `rollout-${startAt.slice(0, 19).replace(/:/g, '-')}-${session}.jsonl`,
        );
        lines.push(
          JSON.stringify({
            timestamp: startAt,
            type: 'session_meta',
            payload: {
              id: session,
              timestamp: startAt,
              cwd,
              originator: 'codex_cli_rs',
              cli_version: '0.46.0',
            },
          }),
        );
        break;
      case 'pi':
        path = join(
          home,
          '.pi',
          'agent',
          'sessions',
          piSessionDir(cwd),
          `${startAt.replace(/[:.]/g, '-')}_${session}.jsonl`,
        );
        lines.push(JSON.stringify({ type: 'session', version: 3, id: session, timestamp: startAt, cwd }));
        break;
      default: {
        const never: never = kind;
        throw new Error(`unknown kind ${String(never)}`);
      }
    }
    for (let k = first; k < last; k++) {
      const t = turn(k, fromMs, stepMs);
      out.tokens += tokensOf(t);
      lines.push(
        ...(kind === 'claude'
          ? claudeLines(cwd, session, k, t)
          : kind === 'codex'
            ? codexLines(cwd, t)
            : piLines(t)),
      );
    }
    const text = `${lines.join('\n')}\n`;
    mkdirSync(join(path, '..'), { recursive: true });
    writeFileSync(path, text);
    out.files++;
    out.bytes += Buffer.byteLength(text);
    out.lines += lines.length;
  }
  return out;
}

/** The two fleets share the sandbox: what one of them has, the other has renamed aside. */
class Fleets {
  current: 'history' | 'none' = 'history';
  constructor(private readonly places: readonly string[]) {}

  use(v: 'history' | 'none'): void {
    if (v === this.current) return;
    for (const p of this.places) {
      if (existsSync(p)) renameSync(p, `${p}.${this.current}`);
      if (existsSync(`${p}.${v}`)) renameSync(`${p}.${v}`, p);
    }
    this.current = v;
  }

  remove(): void {
    for (const p of this.places)
      for (const q of [p, `${p}.history`, `${p}.none`]) rmSync(q, { recursive: true, force: true });
  }
}

function variant(samples: Sample[], bytes: number[]): Variant {
  return {
    wall: stat(samples.map((s) => s.wall)),
    cpu: stat(samples.map((s) => s.cpu)),
    readBytes: stat(bytes),
  };
}

async function block(sb: Sandbox, fleets: Fleets, what: string): Promise<Block> {
  const bytes: Record<string, number[]> = { history: [], none: [] };
  const item = (v: 'history' | 'none') => ({
    key: v,
    run: async (keep: boolean): Promise<Sample> => {
      fleets.use(v);
      const r = await noop(sb, `no-op reconcile, ${what}, ${v === 'history' ? 'with' : 'without'} history`);
      if (keep) bytes[v]?.push(r.readBytes ?? NaN);
      return { wall: r.ms, cpu: r.cpuMs };
    },
  });
  const s = await rounds(SPEND.reps, [item('history'), item('none')]);
  const h = s.get('history') ?? [];
  const z = s.get('none') ?? [];
  const history = variant(h, bytes.history ?? []);
  const none = variant(z, bytes.none ?? []);
  return {
    history,
    none,
    cpuRatio: round2(median(h.map((x) => x.cpu)) / median(z.map((x) => x.cpu))),
    pairedRatio: round2(median(h.map((x, i) => x.cpu / (z[i]?.cpu ?? NaN)))),
    extraReadBytes: Math.round(median(bytes.history ?? []) - median(bytes.none ?? [])),
  };
}

function fileStamp(path: string): string {
  const st = lstatSync(path, { throwIfNoEntry: false });
  return st === undefined ? 'none' : `${st.ino} ${st.size} ${st.mtimeMs}`;
}

export async function measureSpend(sb: Sandbox, log: (s: string) => void): Promise<SpendResult> {
  const n = SPEND.n;
  const home = sb.paths.userHome;
  const spendDir = join(sb.paths.stateDir, 'spend');
  const fleets = new Fleets([join(home, '.claude'), join(home, '.codex'), join(home, '.pi'), spendDir]);
  for (let i = 0; i < n; i++) mkdirSync(workdirOf(sb, i), { recursive: true });
  try {
    log(`  spend: ${n} agents (claude, codex, pi records), cold reconcile`);
    await writeRoster(sb, n, spendRoster(sb, false));
    await applyRoster(sb, n, `cold reconcile of ${n} metered agents`);
    await noop(sb, 'warm reconcile, no history yet');
    // The fleet without history keeps this metering state (roots known, no file); the records come now.
    renameSync(spendDir, `${spendDir}.none`);
    log(`  spend: writing ${SPEND.turns} turns per agent over ${SPEND.hours} h`);
    const nowMs = Date.now();
    const records = { files: 0, bytes: 0, lines: 0, tokens: 0 };
    for (let i = 0; i < n; i++) {
      const r = writeRecords(sb, i, nowMs);
      for (const k of Object.keys(records) as (keyof typeof records)[]) records[k] += r[k];
    }
    log(
      `  spend: ${records.files} files, ${(records.bytes / 2 ** 20).toFixed(1)} MiB; metering them all once`,
    );
    const first = await fleet(sb, ['reconcile', '--json']);
    expectCode(first, 0, 'the reconcile that meters the history');
    const spendDoc = await fleet(sb, ['spend', '--window', 'all', '--json']);
    expectCode(spendDoc, 0, 'fleet spend');
    const agents = (JSON.parse(spendDoc.stdout) as { agents: { tokens: { total: number } }[] }).agents;
    const meteredTokens = agents.reduce((sum, a) => sum + a.tokens.total, 0);
    if (meteredTokens !== records.tokens) {
      throw new Error(
        `metered ${meteredTokens} tokens, wrote ${records.tokens}: the synthetic records are misread`,
      );
    }
    await noop(sb, 'the first no-op with history');
    const meterState = JSON.parse(readFileSync(join(spendDir, 'meter.json'), 'utf8')) as {
      ledger: { file: string; bytes: number };
    };
    const ledgerPath = join(spendDir, meterState.ledger.file);
    const ledgerText = readFileSync(ledgerPath, 'utf8');
    const stamps = [fileStamp(join(spendDir, 'meter.json')), fileStamp(ledgerPath)];

    log(`  spend: no-op reconciles with and without history, ${SPEND.reps} rounds`);
    const plain = await block(sb, fleets, 'no budgets');
    let budgets: Block | undefined;
    if (SPEND.budgets) {
      log(`  spend: the same with a budget on every agent, ${SPEND.reps} rounds`);
      await writeRoster(sb, n, spendRoster(sb, true));
      fleets.use('none');
      await noop(sb, 'the first run with budgets, no history');
      fleets.use('history');
      await noop(sb, 'the first run with budgets, with history');
      budgets = await block(sb, fleets, 'budgets');
    }
    fleets.use('history');
    const noopsWrote =
      fileStamp(join(spendDir, 'meter.json')) !== stamps[0] || fileStamp(ledgerPath) !== stamps[1];
    return {
      n,
      turns: SPEND.turns,
      hours: SPEND.hours,
      records,
      firstMeter: { wallMs: round1(first.ms), cpuMs: round1(first.cpuMs), readBytes: first.readBytes },
      meteredTokens,
      ledger: {
        file: meterState.ledger.file,
        bytes: Buffer.byteLength(ledgerText),
        entries: ledgerText.split('\n').filter((l) => l !== '').length,
      },
      meterStateBytes: lstatSync(join(spendDir, 'meter.json')).size,
      noopsWrote,
      plain,
      ...(budgets ? { budgets } : {}),
    };
  } finally {
    fleets.use('history');
    log('  spend: prune the agents away, remove the records');
    await pruneAll(sb);
    fleets.remove();
    rmSync(join(home, 'w'), { recursive: true, force: true });
  }
}

const mib = (b: number): string => `${(b / 2 ** 20).toFixed(1)} MiB`;
const kib = (b: number): string => `${(b / 1024).toFixed(1)} KiB`;

/** The spend part's lines of the report, its target last. */
export function spendReport(r: SpendResult): string[] {
  const row = (label: string, b: Block): string[] => [
    `  ${label}: no-op CPU ${b.history.cpu.median.toFixed(0)} ms with history, ${b.none.cpu.median.toFixed(0)} ms without (${b.cpuRatio.toFixed(2)}×); ` +
      `wall ${b.history.wall.median.toFixed(0)} / ${b.none.wall.median.toFixed(0)} ms; ` +
      `read ${kib(b.history.readBytes.median)} / ${kib(b.none.readBytes.median)} (history adds ${kib(b.extraReadBytes)})`,
  ];
  return [
    '',
    `spend (issue 21): ${r.n} agents × ${r.turns} turns over ${r.hours} h: ${r.records.files} record files, ${mib(r.records.bytes)}, ${r.records.lines} lines, ${r.records.tokens} tokens`,
    `  metering it all once: ${r.firstMeter.wallMs.toFixed(0)} ms wall, ${r.firstMeter.cpuMs.toFixed(0)} ms CPU, read ${mib(r.firstMeter.readBytes ?? NaN)}; fleet spend's total ${r.meteredTokens} (= written)`,
    `  ledger ${r.ledger.file}: ${kib(r.ledger.bytes)}, ${r.ledger.entries} entries; metering state (meter.json) ${kib(r.meterStateBytes)}; the no-ops wrote ${r.noopsWrote ? 'SOMETHING' : 'nothing'}`,
    ...row('no budgets', r.plain),
    ...(r.budgets ? row('a budget on every agent', r.budgets) : []),
  ];
}

export function spendTargets(r: SpendResult): [string, string, boolean][] {
  return [
    [
      'spend: no-op CPU with history ≤ 1.10× without (median of per-round ratios)',
      `${r.plain.pairedRatio.toFixed(2)}× (medians: ${r.plain.cpuRatio.toFixed(2)}×)`,
      r.plain.pairedRatio <= 1.1,
    ],
    ...(r.budgets
      ? ([
          [
            'spend, budgets on every agent: no-op CPU with history ≤ 1.10× without (per round)',
            `${r.budgets.pairedRatio.toFixed(2)}× (medians: ${r.budgets.cpuRatio.toFixed(2)}×)`,
            r.budgets.pairedRatio <= 1.1,
          ],
        ] as [string, string, boolean][])
      : []),
    ['spend: no-op writes nothing', r.noopsWrote ? 'wrote' : 'nothing', !r.noopsWrote],
  ];
}
