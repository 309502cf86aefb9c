/**
 * The JSON fields of the worktree actions (docs/plan-format.md, docs/workspaces.md). Pure.
 */
import { assertNever } from '../errors.js';
import type { Action } from '../model/plan.js';

export function workspaceFields(a: Action): Record<string, unknown> {
  switch (a.kind) {
    case 'worktree-add':
      return {
        repo: a.repo,
        branch: a.branch,
        start_point: a.startPoint,
        new_branch: a.startPoint !== null,
        stale: a.stale,
      };
    case 'worktree-lock':
      return { repo: a.repo, lock_reason: a.lockReason };
    case 'worktree-move':
      return { repo: a.repo, to: a.to };
    case 'worktree-remove':
      return {
        repo: a.repo,
        branch: a.branch,
        delete_branch_if_merged: a.deleteBranchIfMergedInto !== null,
      };
    case 'write-file':
    case 'daemon-reload':
    case 'enable':
    case 'disable':
    case 'start':
    case 'restart':
    case 'stop':
    case 'respawn':
    case 'kill-session':
    case 'archive-file':
      return {};
    default:
      return assertNever(a, 'action');
  }
}
