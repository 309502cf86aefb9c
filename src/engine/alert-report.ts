/**
 * What `fleet alerts` reports: the alert episodes the state file remembers, as the last reconcile, timer run or
 * watch cycle judged them. Read-only: the state file and nothing else, no lock.
 */
import type { AlertEpisode } from '../model/observed.js';
import { readState } from '../observe/files.js';
import type { FleetPaths } from '../paths.js';

export async function rememberedAlerts(paths: FleetPaths): Promise<AlertEpisode[]> {
  const state = await readState(paths.stateDir);
  return state.alerts ?? [];
}
