/**
 * What the reconciler remembers of its git source (`fleet/reconciler/source.json`): which repository and branch
 * its checkout follows (a different one is a new start, not a rewritten history), the commit it last converged
 * to, and the problem it last said, so a lasting one (an unreachable remote, a refused force-push) is said once,
 * not every timer run, like the register's notice (src/register/notice.ts).
 */
import { join } from 'node:path';
import { writeFileAtomic } from '../base/atomic.js';
import { homeOfStateDir, readFileNoFollow } from '../base/safe-path.js';

export interface SourceState {
  format_version: 1;
  url: string;
  ref: string;
  /** The commit of the checkout: the last good desired state. */
  commit: string;
  /** The key of the problem last said; null when all was well. */
  problem: string | null;
}

export function sourceStatePath(stateDir: string): string {
  return join(stateDir, 'source.json');
}

/** The checkout the reconciler owns: `fleet/reconciler/source/` (never the operator's own clone). */
export function checkoutDir(stateDir: string): string {
  return join(stateDir, 'source');
}

export async function readSourceState(stateDir: string): Promise<SourceState | null> {
  try {
    const text = await readFileNoFollow(sourceStatePath(stateDir));
    if (text === null) return null;
    const s = JSON.parse(text) as Partial<SourceState>;
    return s.format_version === 1 && typeof s.url === 'string' && typeof s.ref === 'string'
      ? (s as SourceState)
      : null;
  } catch {
    return null;
  }
}

export async function writeSourceState(stateDir: string, state: SourceState): Promise<void> {
  await writeFileAtomic(
    sourceStatePath(stateDir),
    `${JSON.stringify(state)}\n`,
    0o644,
    homeOfStateDir(stateDir),
  );
}
