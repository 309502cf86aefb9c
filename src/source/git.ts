/**
 * The git commands of the git source (docs/hosts.md, "The git source"), each through src/exec.ts with a bounded
 * timeout, git's messages in one language and never a prompt: a reconciler run by a timer has nobody to answer
 * one, and a prompt would hang it until the timeout. Credentials are the operator's (a credential helper, an SSH
 * key or agent); none is ever passed here.
 */
import { UserError } from '../errors.js';
import type { Runner, RunResult } from '../exec.js';

/** Fetching crosses the network: long enough for a slow remote, short enough that a hung one does not stall a cycle. */
export const FETCH_TIMEOUT_MS = 20_000;
/** Everything else is local to the checkout. */
const LOCAL_TIMEOUT_MS = 10_000;

/**
 * git's messages in English, no terminal prompt, and ssh in batch mode (no password or host-key question) unless
 * the operator chose an ssh command of their own.
 */
export function gitEnv(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  return {
    LC_ALL: 'C',
    GIT_TERMINAL_PROMPT: '0',
    GIT_ASKPASS: 'true',
    ...(env.GIT_SSH_COMMAND === undefined && env.GIT_SSH === undefined
      ? { GIT_SSH_COMMAND: 'ssh -o BatchMode=yes' }
      : {}),
  };
}

/** The remote-tracking ref a fetch of branch `ref` lands in: the fetched commit, before it is checked out. */
export function fetchedRef(ref: string): string {
  return `refs/remotes/origin/${ref}`;
}

export class SourceGit {
  constructor(
    private readonly runner: Runner,
    readonly dir: string,
  ) {}

  private run(args: string[], opts: { mutate?: boolean; timeoutMs?: number; input?: string } = {}) {
    return this.runner.run(['git', '-C', this.dir, ...args], {
      env: gitEnv(),
      reject: false,
      timeoutMs: opts.timeoutMs ?? LOCAL_TIMEOUT_MS,
      kind: opts.mutate ? 'mutate' : 'read',
      ...(opts.input !== undefined ? { input: opts.input } : {}),
    });
  }

  /** `git init` of a new checkout (the directory is made by git). */
  async init(): Promise<RunResult> {
    return this.runner.run(['git', 'init', '--quiet', '--', this.dir], {
      env: gitEnv(),
      reject: false,
      timeoutMs: LOCAL_TIMEOUT_MS,
      kind: 'mutate',
    });
  }

  /**
   * Fetch branch `ref` of `url` into its remote-tracking ref, forced: a rewritten history is fetched too, so it
   * can be seen and refused; the checkout (HEAD and the files) is not touched.
   */
  fetch(url: string, ref: string): Promise<RunResult> {
    return this.run(
      [
        'fetch',
        '--quiet',
        '--no-tags',
        '--no-recurse-submodules',
        '--',
        url,
        `+refs/heads/${ref}:${fetchedRef(ref)}`,
      ],
      { mutate: true, timeoutMs: FETCH_TIMEOUT_MS },
    );
  }

  /** The commit a revision names, or null when it names none. */
  async commit(rev: string): Promise<string | null> {
    const r = await this.run(['rev-parse', '--verify', '--quiet', `${rev}^{commit}`]);
    return r.exitCode === 0 ? r.stdout.trim() : null;
  }

  /** Whether `ancestor` is in the history of `commit` (a fast-forward from one to the other). */
  async isAncestor(ancestor: string, commit: string): Promise<boolean> {
    const r = await this.run(['merge-base', '--is-ancestor', ancestor, commit]);
    if (r.exitCode === 0) return true;
    if (r.exitCode === 1) return false;
    throw new UserError(
      `git source: ${firstLine(r) || `git merge-base failed with exit code ${r.exitCode}`}`,
    );
  }

  /** Files changed, untracked or ignored in the checkout: anything there that is not the commit's. */
  async dirt(): Promise<string[]> {
    const r = await this.run(['status', '--porcelain', '--untracked-files=all', '--ignored']);
    if (r.exitCode !== 0)
      throw new UserError(`git source: ${firstLine(r) || `git status failed with exit code ${r.exitCode}`}`);
    return r.stdout.split('\n').filter((l) => l.trim() !== '');
  }

  /** Move the checkout to `commit` (detached: the branch is followed by the remote-tracking ref). */
  async checkout(commit: string): Promise<void> {
    const r = await this.run(['-c', 'advice.detachedHead=false', 'checkout', '--quiet', '--detach', commit], {
      mutate: true,
    });
    if (r.exitCode !== 0)
      throw new UserError(
        `git source: ${firstLine(r) || `git checkout failed with exit code ${r.exitCode}`}`,
      );
  }

  /** The entries of a directory of a commit ('' = its top): mode, type, object id and name; null when no such dir. */
  async listDir(commit: string, path: string): Promise<TreeEntry[] | null> {
    const r = await this.run(['ls-tree', '-z', `${commit}:${path}`]);
    if (r.exitCode !== 0) return null;
    return parseLsTree(r.stdout);
  }

  /** The contents of blobs, by object id, in one `git cat-file --batch`. */
  async blobs(oids: readonly string[]): Promise<Map<string, string>> {
    if (oids.length === 0) return new Map();
    const r = await this.run(['cat-file', '--batch'], { input: `${oids.join('\n')}\n` });
    if (r.exitCode !== 0)
      throw new UserError(
        `git source: ${firstLine(r) || `git cat-file failed with exit code ${r.exitCode}`}`,
      );
    return parseBatch(Buffer.from(r.stdout, 'utf8'));
  }
}

export interface TreeEntry {
  mode: string;
  type: string;
  oid: string;
  name: string;
}

/** `git ls-tree -z` output: `<mode> SP <type> SP <oid> TAB <name>` NUL-terminated. */
export function parseLsTree(out: string): TreeEntry[] {
  const entries: TreeEntry[] = [];
  for (const record of out.split('\0')) {
    const tab = record.indexOf('\t');
    if (tab < 0) continue;
    const [mode, type, oid] = record.slice(0, tab).split(' ');
    if (mode === undefined || type === undefined || oid === undefined) continue;
    entries.push({ mode, type, oid, name: record.slice(tab + 1) });
  }
  return entries;
}

/** `git cat-file --batch` output: `<oid> SP <type> SP <size> LF <content> LF` per object (sizes in bytes). */
export function parseBatch(out: Buffer): Map<string, string> {
  const blobs = new Map<string, string>();
  let at = 0;
  while (at < out.length) {
    const eol = out.indexOf(0x0a, at);
    if (eol < 0) break;
    const [oid, type, size] = out.subarray(at, eol).toString('utf8').split(' ');
    at = eol + 1;
    if (oid === undefined || type === undefined || size === undefined) continue; // `<oid> missing`
    const n = Number(size);
    blobs.set(oid, out.subarray(at, at + n).toString('utf8'));
    at += n + 1;
  }
  return blobs;
}

/** git's own first line of complaint (`fatal: ...`), for a one-line message. */
export function firstLine(r: Pick<RunResult, 'stderr' | 'stdout'>): string {
  const lines = `${r.stderr}\n${r.stdout}`
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
  return lines.find((l) => /^(fatal|error):/.test(l)) ?? lines[0] ?? '';
}
