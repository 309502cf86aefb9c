/**
 * `fleet ps [--json]`: load the manifests, observe, judge each agent, print. A report, read-only: it issues only
 * `read` commands and writes no file. Exit 0 whatever the agents' health (unhealthy agents are the news it
 * carries); exit 1 only when it cannot report: bad manifests (thrown, turned into one message by main), or
 * systemd/tmux unreachable (the report is still printed, with the problem, and the problem goes to stderr).
 */
import type { GlobalOptions } from '../cli.js';
import { createRunner, type Runner } from '../exec.js';
import { loadDesired } from '../manifest/load.js';
import { currentUser, observe } from '../observe/index.js';
import { hostContext, resolvePaths } from '../paths.js';
import { fleetStatus, machineProblems, unmanagedSessions } from '../plan/health.js';
import { renderPsJson, renderPsTable, type PsReport } from '../render/ps.js';
import { findOrphans, runtimePrograms } from '../plan/planner.js';
import { UserError } from '../errors.js';
import { hostname } from 'node:os';

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
  const desired = await loadDesired([paths.manifests], hostContext(paths));
  const only = new Set(o.agents ?? []);
  const unknown = [...only].filter((n) => !desired.agents.some((a) => a.name === n));
  if (unknown.length > 0) {
    throw new UserError(
      `no agent named ${unknown.map((n) => JSON.stringify(n)).join(', ')} in the manifests (${desired.sources.join(', ') || 'none found'})`,
    );
  }
  const ctx = { mosaicHome: paths.mosaicHome, unitDir: paths.unitDir, toolsDir: paths.toolsDir };
  const observed = await observe(
    {
      paths,
      sockets: desired.sockets.map((s) => s.socketName),
      programs: runtimePrograms(desired, ctx, hostname()),
    },
    runner,
  );
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
  };
}

export async function psCommand(o: PsOptions, runner: Runner = createRunner()): Promise<number> {
  const report = await psReport(o, runner);
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
