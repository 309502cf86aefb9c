/**
 * What `fleet ps` reports, built from the manifests and one observation, printing nothing: each agent judged
 * (health, state, workspace, spend as last metered, wedged), orphans, unmanaged sessions, the machine's
 * problems. Read-only: only `read` commands, no file written, no lock.
 */
import type { GlobalOptions } from '../options.js';
import { createRunner, type Runner } from '../exec.js';
import { loadFleet } from './session.js';
import { currentUser, observe } from '../observe/index.js';
import { observeSpend } from './spend-observe.js';
import { budgetSummary, judgeBudgets, type BudgetSummary } from '../plan/deciders/budget-judge.js';
import { fleetHostName, resolvePaths, type FleetPaths } from '../paths.js';
import { fleetStatus, machineProblems, unmanagedSessions, type AgentStatus } from '../plan/health.js';
import type { Observed } from '../model/observed.js';
import type { PsReport } from '../render/ps.js';
import type { DesiredFleet } from '../model/desired.js';
import { DEFAULT_RECONCILE } from '../manifest/normalize.js';
import { findOrphans, runtimePrograms } from '../plan/planner.js';
import { UserError } from '../errors.js';
import { workspaceStatuses } from '../workspaces/status.js';
import { readLedger } from '../spend/store.js';
import { windowTotals } from '../spend/report.js';
import { wedgedAgents } from '../alerts/judge.js';

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
        programs: runtimePrograms(desired, ctx, fleetHostName()),
      },
      runner,
    ),
    // Only agents with a workspace cost anything here (docs/workspaces.md).
    workspaceStatuses(desired, fleetHostName(), runner),
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

/** The window of the SPEND column. */
const PS_SPEND_WINDOW = '1d';

/** One agent of this fleet found on the machine, not judged against manifests (they could not be read). */
export interface UnjudgedAgent {
  name: string;
  unit: string | null;
  socket: string | null;
  session: boolean;
  pane_pid: number | null;
  command: string | null;
}

/**
 * What of this fleet runs when the manifests are invalid: every agent with a unit, an env file or a recorded
 * session, without judging it against manifests that cannot be read.
 */
export async function unjudgedAgents(paths: FleetPaths, runner: Runner): Promise<UnjudgedAgent[]> {
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
  return found.map((f) => {
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
