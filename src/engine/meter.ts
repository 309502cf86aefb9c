/**
 * Metering as a step of convergence: every `fleet reconcile`, watch cycle, timer run and `fleet spend` reads what
 * the agents' runtimes recorded since the last run into the spend ledger (src/spend/). Under the caller's lock;
 * read-only towards the agents. A failure to meter never stops convergence: it is one warning line.
 */
import type { Runner } from '../exec.js';
import type { DesiredFleet } from '../model/desired.js';
import type { FleetPaths } from '../paths.js';
import { meter, meteredAgents, type MeterResult } from '../spend/meter.js';

/** Meter the fleet; the warnings (skipped records, an unreadable database) as lines. */
export async function meterFleet(
  desired: DesiredFleet,
  paths: FleetPaths,
  runner: Runner,
  nowMs: number,
): Promise<{ result: MeterResult | null; warnings: string[] }> {
  try {
    const result = await meter(meteredAgents(desired), paths, runner, nowMs);
    return { result, warnings: result.warnings.map((w) => `spend: ${w}`) };
  } catch (error) {
    const first = error instanceof Error ? (error.message.split('\n')[0] ?? '') : String(error);
    return { result: null, warnings: [`spend: metering failed (the ledger is unchanged): ${first}`] };
  }
}
