/**
 * Executors of the worktree actions (docs/workspaces.md). Each checks the repository before it acts, so a second
 * apply (or one after a crash) finds its work done and says so; none ever forces git past a worktree with work in
 * it: removal checks the worktree again right before, and git's own `worktree remove` refuses a dirty one too.
 */
import { dirname } from 'node:path';
import { lstat, mkdir } from '../fs-async.js';
import { assertNever } from '../errors.js';
import type { Runner, RunResult } from '../exec.js';
import type { ReconcilerState } from '../model/observed.js';
import type { WorkspaceAction, WorktreeAddAction, WorktreeRemoveAction } from '../model/plan.js';
import { BASE_CONFIG_KEY, parseWorktreeList } from '../workspaces/git.js';
import { GIT_ENV, observeWork } from '../workspaces/observe.js';
import { describeWork, isClean } from '../workspaces/work.js';

const GIT_TIMEOUT_MS = 120_000;

async function exists(path: string): Promise<boolean> {
  return lstat(path).then(
    () => true,
    () => false,
  );
}

function git(runner: Runner, repo: string, args: string[], kind: 'read' | 'mutate'): Promise<RunResult> {
  return runner.run(['git', '-C', repo, ...args], {
    kind,
    reject: false,
    timeoutMs: GIT_TIMEOUT_MS,
    env: GIT_ENV,
  });
}

function failed(r: RunResult): Error {
  const detail = (r.stderr.trim() || r.stdout.trim()).split('\n')[0] ?? '';
  return new Error(`${r.command.slice(3).join(' ')} failed: ${detail}`);
}

async function mustRun(runner: Runner, repo: string, args: string[]): Promise<void> {
  const r = await git(runner, repo, args, 'mutate');
  if (r.exitCode !== 0) throw failed(r);
}

async function worktrees(runner: Runner, repo: string) {
  const r = await git(runner, repo, ['worktree', 'list', '--porcelain'], 'read');
  if (r.exitCode !== 0) throw failed(r);
  return parseWorktreeList(r.stdout);
}

/** Lock with the fleet's reason; a worktree already locked (by anyone) is left as it is. */
async function lock(runner: Runner, repo: string, path: string, reason: string): Promise<boolean> {
  const r = await git(runner, repo, ['worktree', 'lock', '--reason', reason, path], 'mutate');
  if (r.exitCode === 0) return true;
  if (/already locked/i.test(r.stderr)) return false;
  throw failed(r);
}

async function add(a: WorktreeAddAction, runner: Runner): Promise<string> {
  const listed = await worktrees(runner, a.repo);
  const here = listed.find((w) => w.path === a.path);
  if (here !== undefined && (await exists(a.path))) {
    if (here.branch !== a.branch)
      throw new Error(
        `${a.path} is a worktree on ${here.branch ?? 'a detached HEAD'}, not ${a.branch}; left alone`,
      );
    const locked = here.locked === null && (await lock(runner, a.repo, a.path, a.lockReason));
    return `worktree ${a.path} was already there${locked ? ' (locked it)' : ''}`;
  }
  if (await exists(a.path))
    throw new Error(`${a.path} exists and is not a worktree of ${a.repo}; left alone`);
  const elsewhere = listed.find((w) => w.branch === a.branch && w.path !== a.path);
  if (elsewhere !== undefined) throw new Error(`branch ${a.branch} is checked out at ${elsewhere.path}`);
  // The base is recorded before the worktree is made: a crash in between leaves a record that is simply reused.
  if (a.recordBase !== null) {
    const key = `branch.${a.branch}.${BASE_CONFIG_KEY}`;
    const got = await git(runner, a.repo, ['config', '--get', key], 'read');
    if (got.exitCode !== 0) await mustRun(runner, a.repo, ['config', key, a.recordBase]);
  }
  const branchNow = await git(
    runner,
    a.repo,
    ['rev-parse', '--verify', '--quiet', `refs/heads/${a.branch}`],
    'read',
  );
  const lockArgs = ['--lock', '--reason', a.lockReason];
  if (here !== undefined) {
    // Deleted by hand but still listed (git keeps a locked entry through `prune`): `-f -f` reuses that entry.
    await mustRun(runner, a.repo, ['worktree', 'add', '-f', '-f', ...lockArgs, a.path, a.branch]);
    return `added worktree ${a.path} again from branch ${a.branch}`;
  }
  if (branchNow.exitCode === 0 || a.startPoint === null) {
    // An existing branch is checked out as it is: never reset to the base.
    await mustRun(runner, a.repo, ['worktree', 'add', ...lockArgs, a.path, a.branch]);
    return `added worktree ${a.path} on branch ${a.branch}`;
  }
  await mustRun(runner, a.repo, ['worktree', 'add', ...lockArgs, '-b', a.branch, a.path, a.startPoint]);
  return `added worktree ${a.path} on new branch ${a.branch} from ${a.startPoint.slice(0, 12)}`;
}

async function remove(a: WorktreeRemoveAction, runner: Runner, state: ReconcilerState): Promise<string> {
  const listed = await worktrees(runner, a.repo);
  if (!listed.some((w) => w.path === a.path) || !(await exists(a.path))) {
    forget(state, a.path);
    return `worktree ${a.path} was already gone`;
  }
  // The agent may have written since the plan was made: look again, right before.
  const work = await observeWork({ path: a.path, safe: a.safe }, runner);
  if (!isClean(work)) {
    throw new Error(`kept ${a.path}: ${describeWork(work, null)} (found just before removing it)`);
  }
  const unlock = await git(runner, a.repo, ['worktree', 'unlock', a.path], 'mutate');
  if (unlock.exitCode !== 0 && !/not locked/i.test(unlock.stderr)) throw failed(unlock);
  // No --force: git refuses a worktree with changes too.
  await mustRun(runner, a.repo, ['worktree', 'remove', a.path]);
  forget(state, a.path);
  if (a.branch === null) return `removed worktree ${a.path}`;
  if (a.deleteBranchIfMergedInto !== null) {
    const merged = await git(
      runner,
      a.repo,
      ['merge-base', '--is-ancestor', `refs/heads/${a.branch}`, a.deleteBranchIfMergedInto],
      'read',
    );
    if (merged.exitCode === 0) {
      await mustRun(runner, a.repo, ['branch', '-D', a.branch]);
      return `removed worktree ${a.path} and its merged branch ${a.branch}`;
    }
    return `removed worktree ${a.path}; kept branch ${a.branch} (not merged)`;
  }
  return `removed worktree ${a.path}; kept branch ${a.branch}`;
}

function forget(state: ReconcilerState, path: string): void {
  if (state.worktrees === undefined) return;
  delete state.worktrees[path];
  if (Object.keys(state.worktrees).length === 0) delete state.worktrees;
}

/** Run one worktree action; the past-tense sentence says what was found and done. */
export async function runWorkspaceAction(
  a: WorkspaceAction,
  runner: Runner,
  state: ReconcilerState,
): Promise<string> {
  switch (a.kind) {
    case 'worktree-add':
      return add(a, runner);
    case 'worktree-lock': {
      if (!(await exists(a.path))) throw new Error(`worktree ${a.path} is gone`);
      const locked = await lock(runner, a.repo, a.path, a.lockReason);
      return locked ? `locked worktree ${a.path}` : `worktree ${a.path} was already locked`;
    }
    case 'worktree-move': {
      const listed = await worktrees(runner, a.repo);
      if (!listed.some((w) => w.path === a.path) && listed.some((w) => w.path === a.to)) {
        await lock(runner, a.repo, a.to, a.lockReason);
        return `worktree ${a.to} was already moved`;
      }
      if (await exists(a.to)) throw new Error(`${a.to} exists; left alone`);
      const unlock = await git(runner, a.repo, ['worktree', 'unlock', a.path], 'mutate');
      if (unlock.exitCode !== 0 && !/not locked/i.test(unlock.stderr)) throw failed(unlock);
      // A move keeps everything in the worktree, committed or not. git makes no parent directory for it.
      await mkdir(dirname(a.to), { recursive: true });
      const moved = await git(runner, a.repo, ['worktree', 'move', a.path, a.to], 'mutate');
      if (moved.exitCode !== 0) {
        await lock(runner, a.repo, a.path, a.lockReason).catch(() => false);
        throw failed(moved);
      }
      await lock(runner, a.repo, a.to, a.lockReason);
      const record = state.worktrees?.[a.path];
      if (record !== undefined && state.worktrees !== undefined) {
        delete state.worktrees[a.path];
        state.worktrees[a.to] = record;
      }
      return `moved worktree ${a.path} to ${a.to}`;
    }
    case 'worktree-remove':
      return remove(a, runner, state);
    default:
      return assertNever(a, 'worktree action');
  }
}
