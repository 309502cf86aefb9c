/**
 * The start of a run that acts (`fleet reconcile`, `fleet apply`, `fleet restart`): the cheap tool checks first,
 * so a machine without tmux or a user manager gets one clear error and nothing on disk changes (not even the
 * lock file), then the reconciler's lock.
 */
import { acquireLock, type Lock } from '../apply/lock.js';
import { preflight } from '../observe/preflight.js';
import type { FleetPaths } from '../paths.js';

export function lockForRun(paths: FleetPaths, command: string): Promise<Lock> {
  preflight();
  return acquireLock(paths.stateDir, command);
}
