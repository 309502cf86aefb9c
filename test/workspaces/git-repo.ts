/**
 * Real git repositories for the workspace tests, in temp directories, with a private git configuration (never
 * the real ~/.gitconfig): GIT_CONFIG_GLOBAL points at a file of the test's own, GIT_CONFIG_NOSYSTEM=1.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The environment git runs with in these tests (the fleet's and the test's own commands alike). */
export function gitEnv(root = mkdtempSync(join(tmpdir(), 'fleet-git-'))): Record<string, string> {
  const global = join(root, 'gitconfig');
  writeFileSync(
    global,
    '[user]\n\tname = Fleet Test\n\temail = fleet@test.invalid\n[init]\n\tdefaultBranch = main\n',
  );
  return { GIT_CONFIG_GLOBAL: global, GIT_CONFIG_NOSYSTEM: '1' };
}

export function git(env: Record<string, string | undefined>, cwd: string, ...args: string[]): string {
  return execFileSync('git', ['-C', cwd, ...args], {
    env: { ...process.env, ...env, LC_ALL: 'C' },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** A repository with one commit holding README.md, on branch main. */
export function makeRepo(env: Record<string, string | undefined>, path: string): string {
  mkdirSync(path, { recursive: true });
  git(env, path, 'init', '-q', '-b', 'main');
  writeFileSync(join(path, 'README.md'), 'hello\n');
  git(env, path, 'add', 'README.md');
  git(env, path, 'commit', '-q', '-m', 'init');
  return path;
}

export interface ListedWorktree {
  path: string;
  branch: string | null;
  locked: string | null;
}

export function listWorktrees(env: Record<string, string | undefined>, repo: string): ListedWorktree[] {
  return git(env, repo, 'worktree', 'list', '--porcelain')
    .split('\n\n')
    .filter((b) => b.startsWith('worktree '))
    .map((b) => {
      const lines = b.split('\n');
      const branch = lines.find((l) => l.startsWith('branch refs/heads/'));
      const locked = lines.find((l) => l === 'locked' || l.startsWith('locked '));
      return {
        path: (lines[0] ?? '').slice('worktree '.length),
        branch: branch === undefined ? null : branch.slice('branch refs/heads/'.length),
        locked: locked === undefined ? null : locked.slice('locked '.length),
      };
    });
}
