/**
 * An agent's workspace as the manifests give it: the file's `defaults.workspace` under the agent's own fields,
 * then resolved (`~` expanded, the defaults for branch and path). Pure: shared by the semantic checks (which
 * need the effective paths and branches to find two agents on one) and normalization.
 */
import { posix } from 'node:path';
import type { DesiredWorkspace } from '../model/desired.js';
import type { RawWorkspace } from './types.js';

/** The branch an agent gets when its workspace names none. */
export function defaultBranch(agent: string): string {
  return `fleet/${agent}`;
}

/** The worktree an agent gets when its workspace names no path: beside the repository, never inside it. */
export function defaultWorktreePath(repo: string, agent: string): string {
  return `${repo}.worktrees/${agent}`;
}

/**
 * The fields in effect for one agent: its own over the file's defaults; null when it has none (or opts out with
 * `workspace: null`). `undefined` values are dropped, so an agent's absent field never hides the default's.
 */
export function mergedWorkspace(
  defaults: RawWorkspace | null | undefined,
  own: RawWorkspace | null | undefined,
): RawWorkspace | null {
  if (own === null) return null;
  if (own === undefined && (defaults === undefined || defaults === null)) return null;
  const out: RawWorkspace = {};
  for (const source of [defaults ?? {}, own ?? {}]) {
    for (const [k, v] of Object.entries(source)) {
      if (v !== undefined) (out as Record<string, unknown>)[k] = v;
    }
  }
  return out;
}

/** `~`, `~/x` -> under `userHome`; normalized, no trailing slash. */
function expand(path: string, userHome: string): string {
  const expanded =
    path === '~' ? userHome : path.startsWith('~/') ? posix.join(userHome, path.slice(2)) : path;
  const normalized = posix.normalize(expanded);
  return normalized.length > 1 && normalized.endsWith('/') ? normalized.slice(0, -1) : normalized;
}

/** The resolved workspace; null when the merged fields name no repository (reported by the semantic checks). */
export function resolveWorkspace(
  agent: string,
  raw: RawWorkspace | null,
  userHome: string,
): DesiredWorkspace | null {
  if (raw === null || typeof raw.repo !== 'string') return null;
  const repo = expand(raw.repo, userHome);
  return {
    repo,
    branch: raw.branch ?? defaultBranch(agent),
    base: raw.base ?? null,
    path: raw.path === undefined ? defaultWorktreePath(repo, agent) : expand(raw.path, userHome),
    pruneBranches: raw.prune_branches === 'merged' ? 'merged' : null,
  };
}
