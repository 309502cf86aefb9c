/**
 * Whether a running agent needs a restart: only when what it sees would change, judged from what its process
 * has now (the `MOSAIC_*` environment observation read from /proc/PID/environ) against its env file and unit.
 * Derived from observation, never from memory of what was planned, so a restart deferred, declined or
 * interrupted is found again by every later run until it is done.
 */
import type { ObservedPane } from '../../model/observed.js';
import { ENV_DIGEST_KEY } from '../../render/env.js';
import { UNIT_DIGEST_KEY } from '../../render/units.js';

export interface RestartNeedInput {
  /** The agent's live pane; undefined when none. */
  pane: ObservedPane | undefined;
  /** The agent's env file as the plan leaves it, parsed. */
  wantedEnv: ReadonlyMap<string, string> | undefined;
  /** `MOSAIC_UNIT_DIGEST` an agent started now gets from its unit; null without one. */
  unitDigest: string | null;
  /** The env file's content changes in this plan. */
  envFileChanges: boolean;
  /** The agent template's settings change in this plan. */
  templateChanged: boolean;
}

/** Why the agent must restart to see what its files say; null when it already has it. */
export function restartNeed(i: RestartNeedInput): string | null {
  const env = i.pane?.environ;
  if (env != null && i.wantedEnv !== undefined) return environmentNeed(env, i.wantedEnv, i.unitDigest);
  // Its environment could not be read (another user's process, a vanished pid): the files' own changes in
  // this plan are all there is to go by.
  if (i.envFileChanges) return 'env file changed';
  if (i.templateChanged) return 'agent unit template settings changed';
  return null;
}

/**
 * Every managed key against the process: one it lacks or holds with another value means a restart, digests or
 * not. An agent started by a release that recorded no digests lacks `MOSAIC_ENV_DIGEST` (and every key added
 * since), so it restarts once and carries them from then on; the operator's own keys are covered by the digest.
 */
function environmentNeed(
  env: Readonly<Record<string, string>>,
  wantedEnv: ReadonlyMap<string, string>,
  unitDigest: string | null,
): string | null {
  const reasons: string[] = [];
  const digest = env[ENV_DIGEST_KEY];
  if (digest !== wantedEnv.get(ENV_DIGEST_KEY)) {
    // A digest it has is named only when it is all that differs (the operator's keys); one it lacks is named.
    const changed = [...wantedEnv]
      .filter(
        ([k, v]) => k.startsWith('MOSAIC_') && (k !== ENV_DIGEST_KEY || digest === undefined) && env[k] !== v,
      )
      .map(([k]) => k);
    reasons.push(
      changed.length > 0
        ? `its environment differs from its env file (${changed.join(', ')})`
        : "its environment differs from its env file (keys of the operator's)",
    );
  }
  if (unitDigest !== null && env[UNIT_DIGEST_KEY] !== unitDigest) reasons.push('its unit settings changed');
  return reasons.length > 0 ? `running agent: ${reasons.join('; ')}` : null;
}
