/**
 * The register as a cycle observes it (docs/hosts.md): the ownership rows and leases, read at the start of the
 * cycle (bounded by the connection and statement timeouts), or, when it cannot be read, what this host's last
 * publication said. Read-only: the ownership decider (src/plan/deciders/ownership.ts) decides from it inside
 * plan(); claims and releases are written after apply, with the publication.
 */
import type { DesiredFleet } from '../model/desired.js';
import { isLocalAgent } from '../model/desired.js';
import type { Observed } from '../model/observed.js';
import type { ObservedRegister } from '../model/register.js';
import { runsHere } from '../plan/deciders/ownership.js';
import type { FleetPaths } from '../paths.js';
import { registerDsn, registerProblem, withRegister } from './connect.js';
import { lastContact } from './notice.js';
import { readSnapshot } from './ownership.js';
import { requireSchema } from './schema.js';

/**
 * The register for this cycle's plan; undefined for a fleet without one. When the rows cannot be read, why:
 * `register unreachable` for an outage, else the one line of the refusal (the publish step says it, once).
 */
export async function observeRegister(
  desired: DesiredFleet,
  paths: FleetPaths,
): Promise<ObservedRegister | undefined> {
  if (desired.register === undefined) return undefined;
  try {
    const snapshot = await withRegister(await registerDsn(desired.register), async (c) => {
      await requireSchema(c);
      return readSnapshot(c);
    });
    return { snapshot, unreadable: null, lastContact: null };
  } catch (error) {
    const problem = registerProblem(error);
    return {
      snapshot: null,
      unreadable: problem.kind === 'unreachable' ? 'register unreachable' : problem.message,
      lastContact: await lastContact(paths),
    };
  }
}

/** Agents moved to another host that no longer run here: their stop is recorded with the publication. */
export function releasesDue(desired: DesiredFleet, observed: Observed): string[] {
  return desired.agents
    .filter(
      (a) =>
        a.host !== null && !isLocalAgent(a, observed.hostname) && !runsHere(observed, a.name, a.socketName),
    )
    .map((a) => a.name);
}
