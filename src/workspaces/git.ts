/**
 * Reading git's own output: `worktree list --porcelain`, `cat-file --batch-check`, `config --get-regexp`,
 * `status --porcelain=v2`. Pure parsers, so what the fleet believes about a repository is testable without one.
 */
import type { ObservedWorktree, WorktreeWork } from '../model/observed.js';

/** The git config key (per branch) where the fleet records the commit a worktree's branch started from. */
export const BASE_CONFIG_KEY = 'mosaicfleetbase';

/** The lock reason that marks a worktree as the fleet's, for one agent (shown by `git worktree list`). */
export function lockReason(agent: string): string {
  return `mosaic fleet: agent ${agent}`;
}

/** The agent a fleet lock reason names; null for any other reason (an operator's own lock). */
export function agentOfLock(reason: string | null): string | null {
  if (reason === null) return null;
  const m = /^mosaic fleet: agent ([A-Za-z0-9][A-Za-z0-9_-]*)$/.exec(reason);
  return m?.[1] ?? null;
}

/** `git worktree list --porcelain` -> entries (without `exists`, which the caller stats). */
export function parseWorktreeList(text: string): Omit<ObservedWorktree, 'exists'>[] {
  const out: Omit<ObservedWorktree, 'exists'>[] = [];
  for (const block of text.split(/\n\n+/)) {
    const lines = block.split('\n').filter((l) => l !== '');
    const first = lines[0];
    if (first?.startsWith('worktree ') !== true) continue;
    const entry: Omit<ObservedWorktree, 'exists'> = {
      path: first.slice('worktree '.length),
      head: null,
      branch: null,
      locked: null,
    };
    for (const l of lines.slice(1)) {
      if (l.startsWith('HEAD ')) entry.head = l.slice(5);
      else if (l.startsWith('branch refs/heads/')) entry.branch = l.slice('branch refs/heads/'.length);
      else if (l === 'locked') entry.locked = '';
      else if (l.startsWith('locked ')) entry.locked = l.slice('locked '.length);
    }
    out.push(entry);
  }
  return out;
}

/** `git cat-file --batch-check` answers, one line per asked revision, in order -> revision -> commit or null. */
export function parseBatchCheck(revs: readonly string[], text: string): Record<string, string | null> {
  const lines = text.split('\n');
  const out: Record<string, string | null> = {};
  revs.forEach((rev, i) => {
    const m = /^([0-9a-f]{40,64}) commit /.exec(lines[i] ?? '');
    out[rev] = m?.[1] ?? null;
  });
  return out;
}

/** `git config --get-regexp` of the recorded bases -> branch -> commit. */
export function parseRecordedBases(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^branch\.(.+)\.mosaicfleetbase ([0-9a-f]{40,64})$/.exec(line);
    if (m?.[1] !== undefined && m[2] !== undefined) out[m[1]] = m[2];
  }
  return out;
}

/** `git status --porcelain=v2 --branch -z` -> the counts of what is not committed, and the upstream. */
export function parseStatus(text: string): Pick<WorktreeWork, 'uncommitted' | 'untracked' | 'upstream'> {
  let uncommitted = 0;
  let untracked = 0;
  let upstream: string | null = null;
  const fields = text.split('\0');
  for (let i = 0; i < fields.length; i++) {
    const f = fields[i] ?? '';
    if (f.startsWith('# branch.upstream ')) upstream = f.slice('# branch.upstream '.length);
    else if (f.startsWith('1 ') || f.startsWith('u ')) uncommitted++;
    else if (f.startsWith('2 ')) {
      uncommitted++;
      i++; // a rename or copy carries its original path in the next field
    } else if (f.startsWith('? ')) untracked++;
  }
  return { uncommitted, untracked, upstream };
}
