/**
 * What `fleet ps` shows of each agent's worktree: its branch and whether it is dirty. One `git worktree list` per
 * repository and one `git status` per agent that has a worktree (only agents with a workspace cost anything).
 */
import type { Runner } from '../exec.js';
import type { DesiredFleet } from '../model/desired.js';
import type { WorkspaceStatus } from '../model/observed.js';
import { emptyState } from '../observe/files.js';
import { parseStatus } from './git.js';
import { GIT_ENV, observeWorkspaces } from './observe.js';

export async function workspaceStatuses(
  desired: DesiredFleet,
  hostname: string,
  runner: Runner,
): Promise<Record<string, WorkspaceStatus>> {
  const observed = await observeWorkspaces(desired, emptyState(), hostname, runner);
  if (observed === undefined) return {};
  const out: Record<string, WorkspaceStatus> = {};
  await Promise.all(
    desired.agents.map(async (a) => {
      const ws = a.workspace;
      if (ws == null) return;
      const repo = observed.repos[ws.repo];
      if (repo === undefined) return;
      const w = repo.worktrees.find((x) => x.path === ws.path);
      const status: WorkspaceStatus = {
        path: ws.path,
        branch: w?.branch ?? null,
        present: w?.exists === true,
        uncommitted: null,
        untracked: null,
        error: repo.error,
      };
      out[a.name] = status;
      if (!status.present) return;
      const r = await runner.run(
        [
          'git',
          '-C',
          ws.path,
          '--no-optional-locks',
          'status',
          '--porcelain=v2',
          '-z',
          '--untracked-files=all',
        ],
        { kind: 'read', reject: false, timeoutMs: 30_000, env: GIT_ENV },
      );
      if (r.exitCode !== 0) {
        status.error = r.stderr.trim().split('\n')[0] ?? 'git status failed';
        return;
      }
      const counts = parseStatus(r.stdout);
      status.uncommitted = counts.uncommitted;
      status.untracked = counts.untracked;
    }),
  );
  return out;
}
