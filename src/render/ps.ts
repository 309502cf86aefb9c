/**
 * `fleet ps` output: a human table and a JSON document (format in docs/ps.md). Pure: takes the report,
 * returns text. Whether to colour is decided by the caller (a TTY without NO_COLOR).
 */
import { assertNever } from '../errors.js';
import type { WorkspaceStatus } from '../model/observed.js';
import { isDirty } from '../workspaces/work.js';
import { shortTokens } from './spend.js';
import type { AgentState } from '../model/agent-state.js';
import type { AgentStatus, HealthFlag, HeartbeatHealth, Problem, UnmanagedSession } from '../plan/health.js';
import type { BudgetSummary } from '../plan/deciders/budget-judge.js';
import type { Orphan } from '../model/plan.js';

/** The worktree cell: its branch, `*` when it holds uncommitted or untracked files; `-` without a workspace. */
function branchCell(s: WorkspaceStatus | undefined): Cell {
  if (s === undefined) return { text: '-', style: 'dim' };
  if (!s.present) return { text: 'no worktree', style: 'yellow' };
  const dirty = isDirty(s);
  const name = s.branch ?? '(detached)';
  if (dirty === null) return { text: `${name}?`, style: 'yellow' };
  return dirty ? { text: `${name} dirty`, style: 'yellow' } : { text: name };
}

export interface PsReport {
  nowMs: number;
  host: string;
  tenantId: string | null;
  sources: string[];
  agents: AgentStatus[];
  unmanaged: UnmanagedSession[];
  /** Agents of ours no manifest names: a unit, an env file or a recorded session (`reconcile --prune` removes them). */
  orphans?: Orphan[];
  problems: Problem[];
  /** Per agent with a workspace: its worktree's branch and whether it is dirty (docs/workspaces.md). */
  workspaces?: Record<string, WorkspaceStatus>;
  /** Tokens each agent spent in `window`, from the spend ledger as last metered (docs/spend.md); absent: not read. */
  spend?: { window: string; tokens: Record<string, number> };
  /** Agents busy without progress in their own record (src/alerts/judge.ts wedgedAgents): seconds, by name. */
  wedged?: Record<string, number>;
  /** Each budgeted agent's budget (docs/spend.md, "Budgets"); absent when no agent has one. */
  budgets?: Record<string, BudgetSummary>;
}

type Paint = (text: string, style: Style) => string;
type Style = 'red' | 'yellow' | 'green' | 'dim' | 'bold';

const CODES: Record<Style, [number, number]> = {
  red: [31, 39],
  yellow: [33, 39],
  green: [32, 39],
  dim: [2, 22],
  bold: [1, 22],
};

const MAX_COMMAND = 48;

function painter(color: boolean): Paint {
  return color
    ? (text, style) => `\u001b[${CODES[style][0]}m${text}\u001b[${CODES[style][1]}m`
    : (text) => text;
}

/** 42 -> "42s", 130 -> "2m10s", 7300 -> "2h1m", 200000 -> "2d7h". */
export function duration(seconds: number | null): string {
  if (seconds === null) return '-';
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${s % 60 > 0 ? `${s % 60}s` : ''}`;
  if (s < 86400)
    return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60) > 0 ? `${Math.floor((s % 3600) / 60)}m` : ''}`;
  return `${Math.floor(s / 86400)}d${Math.floor((s % 86400) / 3600) > 0 ? `${Math.floor((s % 86400) / 3600)}h` : ''}`;
}

function flagStyle(flag: HealthFlag): Style {
  switch (flag) {
    case 'MISSING':
    case 'DEAD':
    case 'DRIFT':
      return 'red';
    case 'STALE':
    case 'BOOT-ENABLE':
    case 'BACKOFF':
      return 'yellow';
    default:
      return assertNever(flag, 'flag');
  }
}

function healthStyle(h: HeartbeatHealth): Style {
  switch (h) {
    case 'healthy':
      return 'green';
    case 'stale':
    case 'malformed':
      return 'red';
    case 'missing':
    case 'grace':
      return 'yellow';
    case 'none':
      return 'dim';
    default:
      return assertNever(h, 'heartbeat health');
  }
}

function stateStyle(state: AgentState): Style | undefined {
  switch (state) {
    case 'busy':
      return 'bold';
    case 'idle':
      return 'green';
    case 'waiting':
      return 'yellow';
    case 'starting':
    case 'exited':
      return 'dim';
    case 'unknown':
      return 'red';
    default:
      return assertNever(state, 'agent state');
  }
}

/** `busy 12s`, `waiting 1m3s` (for input), `unknown`; `-` for a runtime that reports no state. */
function stateCell(s: AgentStatus): Cell {
  if (s.state === null) return { text: '-', style: 'dim' };
  const word = s.state.state;
  const text = s.state.forSeconds === null ? word : `${word} ${duration(s.state.forSeconds)}`;
  const style = stateStyle(s.state.state);
  return style === undefined ? { text } : { text, style };
}

function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/** `dead(1)` for an exit status, `dead(SIG9)` for a signal, `dead` when tmux did not say. */
function deadText(s: AgentStatus): string {
  if (s.paneDeadSignal !== null) return `dead(SIG${s.paneDeadSignal})`;
  if (s.paneDeadStatus !== null) return `dead(${s.paneDeadStatus})`;
  return 'dead';
}

/**
 * A command line for a table cell: when it is too long, absolute paths give way to their last component first
 * (the program and script names are what an operator scans for; --json has the full line), then the end is cut.
 */
export function shortCommand(command: string, max = MAX_COMMAND): string {
  if (command.length <= max) return command;
  const short = command
    .split(' ')
    .map((w) => (/^\/[^/]+\/.+[^/]$/.test(w) ? `…/${w.slice(w.lastIndexOf('/') + 1)}` : w))
    .join(' ');
  return truncate(short, max);
}

interface Cell {
  text: string;
  style?: Style;
}

function row(s: AgentStatus, spend?: PsReport['spend'], budget?: BudgetSummary): Cell[] {
  const unitState =
    s.unitActiveState === '' && s.unitFileState === null
      ? '-'
      : `${s.unitActiveState || '?'}/${s.unitFileState ?? 'no-file'}`;
  let session: Cell;
  if (!s.local) session = { text: 'remote', style: 'dim' };
  else if (s.sessionExists === null) session = { text: '?' };
  else if (!s.sessionExists) session = { text: '-' };
  else if (s.paneDead) session = { text: deadText(s), style: 'red' };
  else session = { text: 'yes' };
  const hb =
    s.heartbeat.health === 'none'
      ? { text: '-', style: 'dim' as const }
      : {
          text: `${s.heartbeat.ageSeconds === null ? '-' : duration(s.heartbeat.ageSeconds)} ${s.heartbeat.health}`,
          style: healthStyle(s.heartbeat.health),
        };
  return [
    { text: s.agent, style: 'bold' },
    { text: unitState },
    session,
    stateCell(s),
    { text: s.panePid === null || s.paneDead ? '-' : String(s.panePid) },
    { text: s.paneCommand === null ? '-' : shortCommand(s.paneCommand) },
    { text: duration(s.idleSeconds) },
    hb,
    { text: s.tenantId ?? '-' },
    { text: s.host ?? '-' },
    { text: spendCell(s.agent, spend) + (budget === undefined ? '' : ` ${budget.used_pct}%`) },
    { text: '' }, // flags: painted per flag below
  ];
}

/** Flags, or what stands in for none: `ok`; `-` for another host's agent; `disabled` when the manifest says so. */
function flagCell(a: AgentStatus, paint: Paint, report: PsReport): string {
  // A paused agent is meant to be down: its missing session is the pause, said once as PAUSED.
  const paused = report.budgets?.[a.agent]?.state === 'paused';
  const flags = a.flags
    .filter((f) => !(paused && (f === 'MISSING' || f === 'DEAD')))
    .map((f) => paint(f, flagStyle(f)));
  // WEDGED is the alerts' judgment (busy, no progress in its record), shown with the health flags.
  if (report.wedged?.[a.agent] !== undefined) flags.push(paint('WEDGED', 'red'));
  // A budget's verdict (docs/spend.md): over it, or paused by it.
  const b = report.budgets?.[a.agent]?.state;
  if (b === 'over' || b === 'paused') flags.push(paint(b === 'over' ? 'OVER-BUDGET' : 'PAUSED', 'yellow'));
  if (flags.length > 0) return flags.join(',');
  if (!a.local) return '-';
  if (!a.wanted) return paint('disabled', 'dim');
  return paint('ok', 'green');
}

const BASE_HEADERS = [
  'AGENT',
  'UNIT',
  'SESSION',
  'STATE',
  'PID',
  'COMMAND',
  'IDLE',
  'HB',
  'TENANT',
  'HOST',
  'SPEND',
  'FLAGS',
];

/** The agent's tokens in the report's spend window, short (`12.3k`); `-` when none were metered. */
function spendCell(agent: string, spend: PsReport['spend']): string {
  const n = spend?.tokens[agent];
  return n === undefined || n === 0 ? '-' : shortTokens(n);
}

export function renderPsTable(report: PsReport, opts: { color: boolean }): string {
  const paint = painter(opts.color);
  const lines: string[] = [];
  if (report.agents.length === 0) {
    lines.push(`No agents in the manifests (${report.sources.join(', ') || 'none found'}).`);
  } else {
    // The BRANCH column only in a fleet with workspaces, before FLAGS.
    const ws = report.workspaces;
    const HEADERS = ws === undefined ? BASE_HEADERS : [...BASE_HEADERS.slice(0, -1), 'BRANCH', 'FLAGS'];
    const rows = report.agents.map((a) => {
      const r = row(a, report.spend, report.budgets?.[a.agent]);
      if (ws !== undefined) r.splice(r.length - 1, 0, branchCell(ws[a.agent]));
      return r;
    });
    const flagTexts = report.agents.map((a) => flagCell(a, (t) => t, report));
    rows.forEach((r, i) => {
      const last = r[r.length - 1];
      if (last !== undefined) last.text = flagTexts[i] ?? '';
    });
    const widths = HEADERS.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]?.text.length ?? 0)));
    const pad = (text: string, c: number, isLast: boolean): string =>
      isLast ? text : text.padEnd(widths[c] ?? 0);
    lines.push(HEADERS.map((h, c) => pad(h, c, c === HEADERS.length - 1)).join('  '));
    rows.forEach((r, i) => {
      const agent = report.agents[i];
      const cells = r.map((cell, c) => {
        const isLast = c === r.length - 1;
        if (isLast && agent !== undefined) return flagCell(agent, paint, report);
        const padded = pad(cell.text, c, isLast);
        // Paint the text, then pad with plain spaces, so escape codes never count towards column widths.
        return cell.style === undefined
          ? padded
          : paint(cell.text, cell.style) + padded.slice(cell.text.length);
      });
      lines.push(cells.join('  ').trimEnd());
    });
    const drifts = report.agents.filter((a) => a.driftReason !== null);
    if (drifts.length > 0) {
      lines.push('');
      for (const a of drifts) lines.push(`${paint('DRIFT', 'red')} ${a.agent}: ${a.driftReason}`);
    }
    const wedged = Object.entries(report.wedged ?? {});
    if (wedged.length > 0) lines.push('');
    for (const [name, secs] of wedged)
      lines.push(
        `${paint('WEDGED', 'red')} ${name}: busy, and its own record has not changed for ${duration(secs)}`,
      );
    const overs = Object.entries(report.budgets ?? {}).filter(([, b]) => b.state !== 'ok');
    if (overs.length > 0) lines.push('');
    for (const [name, b] of overs)
      lines.push(`${paint(b.state === 'paused' ? 'PAUSED' : 'OVER-BUDGET', 'yellow')} ${name}: ${b.detail}`);
    // When the next respawn is due, so nobody wonders why a dead pane is left alone.
    const waiting = report.agents.filter((a) => a.flags.includes('BACKOFF') && a.backoff !== null);
    if (waiting.length > 0) {
      lines.push('');
      for (const a of waiting) {
        const b = a.backoff;
        if (b === null) continue;
        const inS = Math.max(0, Math.ceil((b.nextAttemptMs - report.nowMs) / 1000));
        lines.push(
          `${paint('BACKOFF', 'yellow')} ${a.agent}: ${b.attempts} respawn attempt(s) so far; next in ${duration(inS)} (${new Date(b.nextAttemptMs).toISOString()})`,
        );
      }
    }
  }
  const orphans = report.orphans ?? [];
  if (orphans.length > 0) {
    lines.push('');
    lines.push(
      'Orphans (agents of this fleet no manifest names; `fleet reconcile --prune` stops and archives them):',
    );
    for (const o of orphans) {
      const parts = [
        o.unit ? `unit ${o.unit}` : null,
        o.session !== null
          ? `session ${o.session} on ${o.socketName === '' ? 'the default socket' : `socket '${o.socketName ?? ''}'`}`
          : null,
        o.envFile ? `env ${o.envFile}` : null,
      ].filter((x) => x !== null);
      lines.push(`  ${o.agent}: ${parts.join(', ')}`);
    }
  }
  if (report.unmanaged.length > 0) {
    lines.push('');
    lines.push('Unmanaged sessions (no manifest names them):');
    for (const u of report.unmanaged) {
      lines.push(
        `  ${u.session}  on ${u.socketName === '' ? 'the default tmux socket' : `tmux socket '${u.socketName}'`}`,
      );
    }
  }
  if (report.problems.length > 0) {
    lines.push('');
    for (const p of report.problems) lines.push(`${paint('problem:', 'red')} ${p.message}`);
  }
  return `${lines.join('\n')}\n`;
}
