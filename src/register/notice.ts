/**
 * What this host last said about the register (`fleet/reconciler/register.json`): the problem it reported (so an
 * outage is said once) and its last successful publication (so ownership can be planned while the register is
 * unreachable). Read by the planning step and written by the publishing step.
 */
import { join } from 'node:path';
import { readFileNoFollow } from '../base/safe-path.js';
import type { LastContact } from '../plan/deciders/ownership.js';
import type { FleetPaths } from '../paths.js';

export interface NoticeState {
  /** The problem last said (its key: `unreachable` for any outage), null when all was well. */
  problem: string | null;
  /** The last successful publication: what this host held, and until when nobody else can take it. */
  contact?: LastContact;
}

export function noticePath(paths: FleetPaths): string {
  return join(paths.stateDir, 'register.json');
}

/** What this host knew at its last successful publication (for planning while the register is unreachable). */
export async function lastContact(paths: FleetPaths): Promise<LastContact | null> {
  return (await readNotice(paths)).contact ?? null;
}

export async function readNotice(paths: FleetPaths): Promise<NoticeState> {
  try {
    const text = await readFileNoFollow(noticePath(paths));
    return text === null ? { problem: null } : (JSON.parse(text) as NoticeState);
  } catch {
    return { problem: null };
  }
}
