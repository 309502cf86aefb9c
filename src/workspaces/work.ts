/**
 * Whether a worktree holds work that removing it would lose, and how to say so (`3 uncommitted files, 2 commits
 * not in main`). Pure.
 */
import type { WorkspaceStatus, WorktreeWork } from '../model/observed.js';

export function isClean(w: WorktreeWork): boolean {
  return w.error === null && w.uncommitted === 0 && w.untracked === 0 && w.unmerged === 0;
}

function count(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** What is in the way of removing it; `base` names the base for people (`main`), null = "its base". */
export function describeWork(w: WorktreeWork, base: string | null): string {
  if (w.error !== null) return `git could not say whether it holds work (${w.error})`;
  const parts: string[] = [];
  if (w.uncommitted > 0) parts.push(count(w.uncommitted, 'uncommitted file', 'uncommitted files'));
  if (w.untracked > 0) parts.push(count(w.untracked, 'untracked file', 'untracked files'));
  if (w.unmerged > 0) {
    const where = `${base ?? 'its base'}${w.upstream !== null ? ` or ${w.upstream}` : ''}`;
    parts.push(`${count(w.unmerged, 'commit', 'commits')} not in ${where}`);
  }
  return parts.length > 0 ? parts.join(', ') : 'clean';
}

/** Whether `fleet ps` calls it dirty: uncommitted or untracked files; null when unknown. */
export function isDirty(s: WorkspaceStatus): boolean | null {
  if (s.uncommitted === null || s.untracked === null) return null;
  return s.uncommitted + s.untracked > 0;
}
