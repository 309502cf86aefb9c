/**
 * `fleet diff AGENT [--stat]`: what an agent changed in its worktree (docs/workspaces.md), read-only: the commits
 * on its branch since its base, then what is not committed (tracked changes, and the untracked files by name).
 * The base is the one recorded when the fleet made the worktree; else the manifest's `base` (or the repository's
 * HEAD) as it is now, through the merge base, so a base that moved on shows only the agent's own changes.
 */
import type { GlobalOptions } from '../options.js';
import { createRunner, type Runner } from '../exec.js';
import { UserError } from '../errors.js';
import { loadFleet } from '../engine/session.js';
import { resolvePaths } from '../paths.js';
import { BASE_CONFIG_KEY } from '../workspaces/git.js';
import { GIT_ENV } from '../workspaces/observe.js';

export interface DiffOptions extends GlobalOptions {
  stat: boolean;
}

async function git(
  runner: Runner,
  dir: string,
  args: string[],
): Promise<{ ok: boolean; out: string; err: string }> {
  const r = await runner.run(['git', '-C', dir, '--no-optional-locks', ...args], {
    kind: 'read',
    reject: false,
    timeoutMs: 60_000,
    env: GIT_ENV,
  });
  return { ok: r.exitCode === 0, out: r.stdout, err: r.stderr.trim().split('\n')[0] ?? '' };
}

export async function diffCommand(
  agentName: string,
  o: DiffOptions,
  runner: Runner = createRunner(),
): Promise<number> {
  const { desired } = await loadFleet(resolvePaths(o));
  const agent = desired.agents.find((a) => a.name === agentName);
  if (agent === undefined) throw new UserError(`no agent named "${agentName}" in the manifests`);
  const ws = agent.workspace;
  if (ws == null) throw new UserError(`agent ${agentName} has no workspace (docs/workspaces.md)`);
  const head = await git(runner, ws.path, ['rev-parse', '--verify', 'HEAD']);
  if (!head.ok)
    throw new UserError(`agent ${agentName}: no worktree at ${ws.path} (${head.err}); run fleet reconcile`);
  const recorded = await git(runner, ws.repo, ['config', '--get', `branch.${ws.branch}.${BASE_CONFIG_KEY}`]);
  let base = recorded.ok ? recorded.out.trim() : '';
  if (base === '') {
    const now = await git(runner, ws.repo, ['rev-parse', '--verify', `${ws.base ?? 'HEAD'}^{commit}`]);
    if (!now.ok)
      throw new UserError(`agent ${agentName}: base ${ws.base ?? 'HEAD'} is not a commit in ${ws.repo}`);
    base = now.out.trim();
  }
  const format = o.stat ? ['--stat'] : ['--patch'];
  const flags = ['--no-color', '--no-ext-diff', ...format];
  const count = await git(runner, ws.path, ['rev-list', '--count', `${base}..HEAD`]);
  const committed = await git(runner, ws.path, ['diff', ...flags, `${base}...HEAD`]);
  const uncommitted = await git(runner, ws.path, ['diff', ...flags, 'HEAD']);
  const untracked = await git(runner, ws.path, ['ls-files', '--others', '--exclude-standard']);
  for (const r of [count, committed, uncommitted, untracked]) {
    if (!r.ok) throw new UserError(`agent ${agentName}: git could not read ${ws.path}: ${r.err}`);
  }
  const n = Number(count.out.trim()) || 0;
  const files = untracked.out.split('\n').filter((l) => l !== '');
  const out = [
    `# ${agentName}: branch ${ws.branch} in ${ws.path}, base ${base.slice(0, 12)}${ws.base !== null ? ` (${ws.base})` : ''}`,
    '',
    `## committed: ${n} commit${n === 1 ? '' : 's'} since the base`,
    committed.out.trimEnd() === '' ? '(none)' : committed.out.trimEnd(),
    '',
    '## uncommitted',
    uncommitted.out.trimEnd() === '' ? '(none)' : uncommitted.out.trimEnd(),
    '',
    `## untracked: ${files.length} file${files.length === 1 ? '' : 's'}`,
    ...files.map((f) => `  ${f}`),
  ];
  process.stdout.write(`${out.join('\n')}\n`);
  return 0;
}
