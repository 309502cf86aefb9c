/**
 * Cheap checks, without spawning anything, that the tools a reconcile needs are there: run before the lock is
 * taken, so a machine without tmux or without a reachable user manager gets one clear error and nothing on disk
 * changes (not even the reconciler's own state directory). Observation re-checks for real.
 */
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { UserError } from '../errors.js';

/** Whether an executable `program` is in one of PATH's directories (no spawn). */
export function onPath(program: string, pathValue: string | undefined): boolean {
  for (const dir of (pathValue ?? '').split(delimiter)) {
    if (dir === '') continue;
    try {
      accessSync(join(dir, program), constants.X_OK);
      return true;
    } catch {
      // not here
    }
  }
  return false;
}

export function preflight(env: NodeJS.ProcessEnv = process.env): void {
  if (!onPath('tmux', env.PATH))
    throw new UserError('tmux not found on PATH: install tmux (apt-get install tmux)');
  if (!onPath('systemctl', env.PATH))
    throw new UserError('systemctl not found on PATH: a systemd user manager is required');
  const runtimeDir = env.XDG_RUNTIME_DIR;
  if (runtimeDir === undefined || runtimeDir === '') {
    throw new UserError(
      'cannot reach the systemd user manager: XDG_RUNTIME_DIR is not set (log in through a session, or enable linger)',
    );
  }
  const socket = join(runtimeDir, 'systemd', 'private');
  let isSocket = false;
  try {
    isSocket = statSync(socket).isSocket();
  } catch {
    isSocket = false;
  }
  if (!isSocket) {
    throw new UserError(`cannot reach the systemd user manager: no manager socket at ${socket}`);
  }
}
