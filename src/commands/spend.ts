/**
 * `fleet spend [AGENT...] [--window 5h|1d|7d|30d|all] [--by agent|model|runtime|tenant] [--json]`: meter first
 * (under the fleet lock, like reconcile; read-only towards the agents), then sum the ledger over the window.
 */
import type { GlobalOptions } from '../options.js';
import { acquireLock } from '../apply/lock.js';
import { UserError } from '../errors.js';
import { createRunner, type Runner } from '../exec.js';
import { meterFleet } from '../engine/meter.js';
import { loadFleet } from '../engine/session.js';
import { resolvePaths } from '../paths.js';
import { renderSpendJson, renderSpendTable } from '../render/spend.js';
import { readLedger } from '../spend/store.js';
import { withBudgets } from '../engine/budgets.js';
import {
  GROUPINGS,
  spendReport,
  WINDOWS,
  type SpendGrouping,
  type SpendReport,
  type SpendWindow,
} from '../spend/report.js';

export interface SpendOptions extends GlobalOptions {
  json: boolean;
  window: string;
  by: string;
  agents?: string[];
}

function oneOf<T extends string>(value: string, allowed: readonly T[], flag: string): T {
  const found = allowed.find((a) => a === value);
  if (found === undefined)
    throw new UserError(`${flag} must be one of ${allowed.join(', ')} (got ${JSON.stringify(value)})`);
  return found;
}

/** Meter, then report (for tests and other commands). */
export async function spendData(
  o: SpendOptions,
  runner: Runner = createRunner(),
  onWarning: (line: string) => void = () => {},
): Promise<SpendReport> {
  const window: SpendWindow = oneOf(o.window, WINDOWS, '--window');
  const by: SpendGrouping = oneOf(o.by, GROUPINGS, '--by');
  const paths = resolvePaths(o);
  const { desired } = await loadFleet(paths);
  const only = o.agents ?? [];
  const unknown = only.filter((n) => !desired.agents.some((a) => a.name === n));
  if (unknown.length > 0) {
    throw new UserError(
      `no agent named ${unknown.map((n) => JSON.stringify(n)).join(', ')} in the manifests (${desired.sources.join(', ') || 'none found'})`,
    );
  }
  const lock = await acquireLock(paths.stateDir, 'fleet spend');
  const nowMs = Date.now();
  try {
    const metered = await meterFleet(desired, paths, runner, nowMs);
    metered.warnings.forEach(onWarning);
  } finally {
    await lock.release();
  }
  const entries = readLedger(paths.stateDir);
  const report = spendReport({
    entries,
    agents: desired.agents.map((a) => ({ name: a.name, runtime: a.runtime, tenant: a.tenantId })),
    pricing: desired.pricing ?? {},
    nowMs,
    window,
    by,
    only,
  });
  return { ...report, agents: withBudgets(report.agents, desired, entries, nowMs) };
}

export async function spendCommand(o: SpendOptions, runner: Runner = createRunner()): Promise<number> {
  const report = await spendData(o, runner, (line) => void process.stderr.write(`fleet: ${line}\n`));
  process.stdout.write(o.json ? renderSpendJson(report) : renderSpendTable(report));
  return 0;
}
