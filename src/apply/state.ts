/**
 * The reconciler's state file: hashes of what it last wrote (to tell operator edits apart) and back-off timers.
 * Data, observed like everything else; never trusted as a picture of the machine.
 */
import { join } from 'node:path';
import type { ReconcilerState } from '../model/observed.js';
import { writeFileAtomic } from '../base/atomic.js';
import { homeOfStateDir } from '../base/safe-path.js';

export function statePath(stateDir: string): string {
  return join(stateDir, 'state.json');
}

export async function writeState(stateDir: string, state: ReconcilerState): Promise<void> {
  // Never through a link: not state.json, not fleet/reconciler/, not fleet/ (src/base/safe-path.ts).
  await writeFileAtomic(
    statePath(stateDir),
    `${JSON.stringify(state, null, 2)}\n`,
    0o644,
    homeOfStateDir(stateDir),
  );
}
