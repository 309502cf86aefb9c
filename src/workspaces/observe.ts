/**
 * Observation of the agents' git worktrees, read-only, in two passes:
 *   1. per repository (never per agent): one `git worktree list --porcelain`, one `git cat-file --batch-check`
 *      resolving every revision the plan needs (HEAD, the bases, the agents' branches), one `git config
 *      --get-regexp` for the recorded bases; and a stat of each desired worktree path git does not list;
 *   2. only for the worktrees the plan would remove: `git status` and the commits in neither base nor upstream.
 * Every spawn goes through src/exec.ts.
 */
import { lstatSync } from 'node:fs';
import type { Runner } from '../exec.js';
import { isLocalAgent, type DesiredFleet } from '../model/desired.js';
import type { ObservedRepo, ObservedWorkspaces, ReconcilerState, WorktreeWork } from '../model/observed.js';
import {
  BASE_CONFIG_KEY,
  parseBatchCheck,
  parseRecordedBases,
  parseStatus,
  parseWorktreeList,
} from './git.js';

const GIT_TIMEOUT_MS = 30_000;
/** git's messages in one language, and never a prompt for credentials. */
export const GIT_ENV = { LC_ALL: 'C', GIT_TERMINAL_PROMPT: '0' };

/** The repositories to ask and the revisions each needs, from the desired fleet and the state's records. */
export function workspaceQuestions(
  desired: DesiredFleet,
  state: ReconcilerState,
  hostname: string,
): Map<string, Set<string>> {
  const repos = new Map<string, Set<string>>();
  const ask = (repo: string, ...revs: string[]) => {
    const set = repos.get(repo) ?? new Set<string>(['HEAD']);
    for (const r of revs) set.add(r);
    repos.set(repo, set);
  };
  for (const a of desired.agents) {
    const ws = a.workspace;
    if (ws == null || !isLocalAgent(a, hostname)) continue;
    ask(ws.repo, `refs/heads/${ws.branch}`, ...(ws.base !== null ? [ws.base] : []));
  }
  for (const r of Object.values(state.worktrees ?? {}))
    ask(r.repo, `refs/heads/${r.branch}`, ...(r.base !== undefined ? [r.base] : []));
  return repos;
}

function exists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

function firstLine(text: string): string {
  return (
    text
      .split('\n')
      .map((l) => l.trim())
      .find((l) => l !== '') ?? ''
  );
}

async function observeRepo(path: string, revs: readonly string[], runner: Runner): Promise<ObservedRepo> {
  const git = (args: string[], input?: string) =>
    runner.run(['git', '-C', path, ...args], {
      kind: 'read',
      reject: false,
      timeoutMs: GIT_TIMEOUT_MS,
      env: GIT_ENV,
      ...(input !== undefined ? { input } : {}),
    });
  const none: ObservedRepo = { repo: path, error: null, worktrees: [], commits: {}, recordedBases: {} };
  let list;
  try {
    list = await git(['worktree', 'list', '--porcelain']);
  } catch (error) {
    return { ...none, error: error instanceof Error ? firstLine(error.message) : String(error) };
  }
  if (list.exitCode !== 0) {
    const why = firstLine(list.stderr).replace(/^fatal: /, '');
    return { ...none, error: why === '' ? `git worktree list exited ${list.exitCode}` : why };
  }
  // `rev^{commit}`: a tag or a tree-ish names its commit; anything else is no commit.
  const asked = [...revs];
  const [check, config] = await Promise.all([
    git(['cat-file', '--batch-check'], asked.map((r) => `${r}^{commit}`).join('\n') + '\n'),
    git(['config', '--get-regexp', `^branch\\..*\\.${BASE_CONFIG_KEY}$`]),
  ]);
  return {
    repo: path,
    error: null,
    worktrees: parseWorktreeList(list.stdout).map((w) => ({ ...w, exists: exists(w.path) })),
    commits: parseBatchCheck(asked, check.exitCode === 0 ? check.stdout : ''),
    recordedBases: config.exitCode === 0 ? parseRecordedBases(config.stdout) : {},
  };
}

/** The first pass: every repository the fleet's workspaces name, asked a constant number of questions each. */
export async function observeWorkspaces(
  desired: DesiredFleet,
  state: ReconcilerState,
  hostname: string,
  runner: Runner,
): Promise<ObservedWorkspaces | undefined> {
  const questions = workspaceQuestions(desired, state, hostname);
  if (questions.size === 0) return undefined;
  const names = [...questions.keys()].sort();
  const repos = await Promise.all(
    names.map((r) => observeRepo(r, [...(questions.get(r) ?? [])].sort(), runner)),
  );
  const listed = new Set(repos.flatMap((r) => r.worktrees.map((w) => w.path)));
  const paths: ObservedWorkspaces['paths'] = {};
  for (const a of desired.agents) {
    const p = a.workspace?.path;
    if (p !== undefined && !listed.has(p)) paths[p] = exists(p) ? 'present' : 'absent';
  }
  return { repos: Object.fromEntries(names.map((n, i) => [n, repos[i]])), paths, work: {} };
}

/** A worktree whose work must be known before it may be removed, and the commits that count as safe. */
export interface WorkQuestion {
  path: string;
  /** Commits whose history is safe (the base, recorded and current): work reachable from them is not lost. */
  safe: string[];
}

/** The work in one worktree: what is not committed, and the commits in neither `safe` nor the upstream. */
export async function observeWork(q: WorkQuestion, runner: Runner): Promise<WorktreeWork> {
  const git = (args: string[]) =>
    runner.run(['git', '-C', q.path, ...args], {
      kind: 'read',
      reject: false,
      timeoutMs: GIT_TIMEOUT_MS,
      env: GIT_ENV,
    });
  const fail = (error: string): WorktreeWork => ({
    path: q.path,
    uncommitted: 0,
    untracked: 0,
    unmerged: 0,
    upstream: null,
    error,
  });
  try {
    // --no-optional-locks: looking must not write the index (an agent may be committing).
    const status = await git([
      '--no-optional-locks',
      'status',
      '--porcelain=v2',
      '--branch',
      '-z',
      '--untracked-files=all',
    ]);
    if (status.exitCode !== 0) return fail(firstLine(status.stderr) || 'git status failed');
    const counts = parseStatus(status.stdout);
    const not = [...q.safe, ...(counts.upstream !== null ? ['@{upstream}'] : [])];
    const revs = await git(['rev-list', '--count', 'HEAD', ...(not.length > 0 ? ['--not', ...not] : [])]);
    if (revs.exitCode !== 0) return fail(firstLine(revs.stderr) || 'git rev-list failed');
    return { path: q.path, ...counts, unmerged: Number(revs.stdout.trim()) || 0, error: null };
  } catch (error) {
    return fail(error instanceof Error ? firstLine(error.message) : String(error));
  }
}

/** The second pass: only the worktrees the plan would remove. */
export async function observeWorks(
  questions: readonly WorkQuestion[],
  runner: Runner,
): Promise<Record<string, WorktreeWork>> {
  const works = await Promise.all(questions.map((q) => observeWork(q, runner)));
  return Object.fromEntries(works.map((w) => [w.path, w]));
}
