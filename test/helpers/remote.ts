/**
 * A git source for the tests: a bare "remote" and a working clone that commits and pushes to it, in a temp dir,
 * with a private git configuration (test/workspaces/git-repo.ts: never the real ~/.gitconfig).
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { git, gitEnv } from '../workspaces/git-repo.js';

export interface Remote {
  /** The bare repository's path (a `file://` URL is `url`). */
  bare: string;
  url: string;
  /** The environment git runs with (the private configuration). */
  env: Record<string, string>;
  /** Write files in the working clone (path -> content; null removes), commit and push; the new commit. */
  push(files: Record<string, string | null>, message?: string): string;
  /** Rewrite the branch: drop the last commit, commit these files instead, push --force; the new commit. */
  forcePush(files: Record<string, string | null>): string;
  /** Make the remote unreachable (moved away) or reachable again. */
  unreachable(gone: boolean): void;
}

export function makeRemote(root: string): Remote {
  const env = gitEnv(root);
  const bare = join(root, 'remote.git');
  const work = join(root, 'work');
  mkdirSync(work, { recursive: true });
  git(env, root, 'init', '-q', '--bare', '-b', 'main', bare);
  git(env, work, 'init', '-q', '-b', 'main');
  git(env, work, 'remote', 'add', 'origin', bare);
  const write = (files: Record<string, string | null>) => {
    for (const [path, content] of Object.entries(files)) {
      if (content === null) git(env, work, 'rm', '-q', path);
      else {
        mkdirSync(join(work, path, '..'), { recursive: true });
        writeFileSync(join(work, path), content);
        git(env, work, 'add', path);
      }
    }
  };
  const head = () => git(env, work, 'rev-parse', 'HEAD').trim();
  return {
    bare,
    url: `file://${bare}`,
    env,
    push(files, message = 'change') {
      write(files);
      git(env, work, 'commit', '-q', '--allow-empty', '-m', message);
      git(env, work, 'push', '-q', 'origin', 'HEAD:refs/heads/main');
      return head();
    },
    forcePush(files) {
      git(env, work, 'reset', '-q', '--hard', 'HEAD~1');
      write(files);
      git(env, work, 'commit', '-q', '--allow-empty', '-m', 'rewritten');
      git(env, work, 'push', '-q', '--force', 'origin', 'HEAD:refs/heads/main');
      return head();
    },
    unreachable(gone) {
      if (gone) renameSync(bare, `${bare}.away`);
      else renameSync(`${bare}.away`, bare);
    },
  };
}

/** A roster of stub agents, each `name` or `name@host`. */
export function roster(agents: string[], socket = 'mosaic-fleet'): string {
  return [
    'version: 1',
    `tmux: {socket_name: ${socket}}`,
    'agents:',
    ...agents.map((a) => {
      const [name, host] = a.split('@');
      return `  - {name: ${name}, runtime: stub${host ? `, host: ${host}` : ''}}`;
    }),
    '',
  ].join('\n');
}
