/**
 * `fleet ps [--json]`: load the manifests, observe, judge each agent, print. A report, read-only: it issues only
 * `read` commands and writes no file. Exit 0 whatever the agents' health (unhealthy agents are the news it
 * carries); exit 1 only when it cannot report: bad manifests (thrown, turned into one message by main), or
 * systemd/tmux unreachable (the report is still printed, with the problem, and the problem goes to stderr).
 */
import type { GlobalOptions } from '../options.js';
import { createRunner, type Runner } from '../exec.js';
import { loadFleet } from '../engine/session.js';
import { currentUser, observe } from '../observe/index.js';
import { resolvePaths } from '../paths.js';
import { fleetStatus, machineProblems, unmanagedSessions } from '../plan/health.js';
import { PS_FORMAT_VERSION, renderPsJson, renderPsTable, shortCommand, type PsReport } from '../render/ps.js';
import type { DesiredFleet } from '../model/desired.js';
import { DEFAULT_RECONCILE } from '../manifest/normalize.js';
import { findOrphans, runtimePrograms } from '../plan/planner.js';
import { ManifestError, UserError } from '../errors.js';
import { hostname } from 'node:os';
import { workspaceStatuses } from '../workspaces/status.js';
import { readLedger } from '../spend/store.js';
import { windowTotals } from '../spend/report.js';
import { wedgedAgents } from '../alerts/judge.js';
import type { Observed } from '../model/observed.js';
import type { AgentStatus } from '../plan/health.js';
import { observeSpend } from '../engine/spend-observe.js';
import { budgetSummary, judgeBudgets, type BudgetSummary } from '../plan/deciders/budget-judge.js';

export interface PsOptions extends GlobalOptions {
  json: boolean;
  /** Only these agents (all when empty or absent); an unknown name is an error. */
  agents?: string[];
}

/** Build the report without printing (for tests and other commands). */
export async function psReport(
  o: GlobalOptions & { agents?: string[] },
  runner: Runner = createRunner(),
): Promise<PsReport> {
  const paths = resolvePaths(o);
  const { desired } = await loadFleet(paths);
  const only = new Set(o.agents ?? []);
  const unknown = [...only].filter((n) => !desired.agents.some((a) => a.name === n));
  if (unknown.length > 0) {
    throw new UserError(
      `no agent named ${unknown.map((n) => JSON.stringify(n)).join(', ')} in the manifests (${desired.sources.join(', ') || 'none found'})`,
    );
  }
  const ctx = { mosaicHome: paths.mosaicHome, unitDir: paths.unitDir, toolsDir: paths.toolsDir };
  const [observed, workspaces] = await Promise.all([
    observe(
      {
        paths,
        sockets: desired.sockets.map((s) => s.socketName),
        programs: runtimePrograms(desired, ctx, hostname()),
      },
      runner,
    ),
    // Only agents with a workspace cost anything here (docs/workspaces.md).
    workspaceStatuses(desired, hostname(), runner),
  ]);
  const agents = fleetStatus(desired, observed).filter((a) => only.size === 0 || only.has(a.agent));
  const orphans = findOrphans(desired, observed, ctx);
  return {
    nowMs: observed.nowMs,
    host: observed.hostname,
    tenantId: desired.tenantId,
    sources: desired.sources,
    agents,
    // An agent of ours that no manifest names any more (its unit, env file or recorded session) is an orphan,
    // said as such; only what is nobody's known agent is "unmanaged".
    orphans,
    unmanaged: unmanagedSessions(desired, observed).filter(
      (u) => !orphans.some((o) => o.session === u.session && o.socketName === u.socketName),
    ),
    problems: machineProblems(desired, observed, currentUser()),
    ...(Object.keys(workspaces).length > 0 ? { workspaces } : {}),
    // As last metered (by reconcile or `fleet spend`): ps stays read-only and takes no lock.
    spend: {
      window: PS_SPEND_WINDOW,
      tokens: windowTotals(readLedger(paths.stateDir), observed.nowMs, PS_SPEND_WINDOW),
    },
    wedged: wedgedAgents(desired, observed, agents),
    ...budgetsFor(desired, observed, agents, paths.stateDir),
  };
}

/** Each budgeted agent's budget, judged on the ledger as last metered; nothing when no budget exists. */
function budgetsFor(
  desired: DesiredFleet,
  observed: Observed,
  agents: readonly AgentStatus[],
  stateDir: string,
): { budgets?: Record<string, BudgetSummary> } {
  const spend = observeSpend(desired, stateDir, observed.nowMs);
  if (spend === undefined) return {};
  const judged = judgeBudgets(desired, { nowMs: observed.nowMs, spend });
  const budgets: Record<string, BudgetSummary> = {};
  for (const a of agents) {
    const running = a.unitActiveState === 'active' || a.unitActiveState === 'activating';
    const b = budgetSummary(judged[a.agent], running, observed.nowMs);
    if (b !== null) budgets[a.agent] = b;
  }
  return { budgets };
}

/** The window of the SPEND column. */
const PS_SPEND_WINDOW = '1d';

/**
 * The manifests are invalid: say so, and still show what of this fleet runs (every agent with a unit, an env file
 * or a recorded session), without judging it against manifests that cannot be read. Exit 1.
 */
async function psWithoutManifests(o: PsOptions, runner: Runner, error: ManifestError): Promise<number> {
  const paths = resolvePaths(o);
  const empty: DesiredFleet = {
    sources: [],
    tenantId: null,
    runtimes: {},
    agents: [],
    sockets: [],
    reconcile: DEFAULT_RECONCILE,
  };
  const ctx = { mosaicHome: paths.mosaicHome, unitDir: paths.unitDir, toolsDir: paths.toolsDir };
  // No socket from the manifests: observation looks where the env files and the state file say sessions are.
  const observed = await observe({ paths, sockets: [] }, runner);
  const found = findOrphans(empty, observed, ctx);
  const rows = found.map((f) => {
    const unit = f.unit === null ? undefined : observed.systemd.units[f.unit];
    const pane =
      f.socketName === null
        ? undefined
        : observed.tmux.sockets[f.socketName]?.panes.find((p) => p.session === f.agent);
    return {
      name: f.agent,
      unit: unit === undefined ? null : `${unit.activeState || '?'}/${unit.unitFileState ?? 'no-file'}`,
      socket: f.socketName,
      session: f.session !== null,
      pane_pid: pane === undefined || pane.dead ? null : pane.panePid,
      command: pane?.processes[0]?.argv.join(' ') ?? null,
    };
  });
  process.stderr.write(`${error.message}\n`);
  if (o.json) {
    const doc = {
      format_version: PS_FORMAT_VERSION,
      manifest_errors: error.message.split('\n'),
      running: rows,
    };
    process.stdout.write(`${JSON.stringify(doc, null, 2)}\n`);
  } else {
    const lines = [
      'The manifests are invalid (above); what of this fleet is here, not judged against them:',
      ...(rows.length === 0 ? ['  (no unit, env file or session of this fleet)'] : []),
      ...rows.map(
        (r) =>
          `  ${r.name}  unit ${r.unit ?? '-'}  session ${r.session ? `yes on ${r.socket === '' ? 'the default socket' : (r.socket ?? '?')}` : '-'}` +
          `${r.pane_pid === null ? '' : `  pid ${r.pane_pid}`}${r.command === null ? '' : `  ${shortCommand(r.command)}`}`,
      ),
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  }
  return 1;
}

export async function psCommand(o: PsOptions, runner: Runner = createRunner()): Promise<number> {
  let report: PsReport;
  try {
    report = await psReport(o, runner);
  } catch (error) {
    if (error instanceof ManifestError && (o.agents ?? []).length === 0)
      return psWithoutManifests(o, runner, error);
    throw error;
  }
  if (o.json) {
    process.stdout.write(renderPsJson(report));
  } else {
    const color = process.stdout.isTTY === true && (process.env.NO_COLOR ?? '') === '';
    process.stdout.write(renderPsTable(report, { color }));
  }
  // Unhealthy agents are what the report is for: exit 0. But a report that could not see systemd or tmux is
  // not an answer to "what runs?" (DOMAIN.md section 6): say so on stderr too, and exit 1.
  const blind = report.problems.filter(
    (p) => p.kind === 'tmux-unavailable' || p.kind === 'systemd-unreachable',
  );
  for (const p of blind) process.stderr.write(`fleet: ${p.message}\n`);
  return blind.length > 0 ? 1 : 0;
}
