/**
 * Workspaces end to end (docs/workspaces.md): real git repositories, the real sandbox (systemd user manager and
 * tmux) and the stub agent. Each agent runs in its own worktree on its own branch; a worktree deleted by hand
 * comes back with its commits; pruning never removes a worktree holding work; bad input makes nothing.
 */
import { existsSync, mkdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { runFleet, type CliResult } from '../helpers/cli.js';
import { snapshotTree } from '../helpers/snapshot.js';
import { uniqueSocket, waitFor, writeRoster } from '../helpers/fleet.js';
import { describeSandbox, withSandbox, type Sandbox } from '../sandbox.js';
import { git, gitEnv, listWorktrees, makeRepo } from './git-repo.js';

const GIT = gitEnv();

function fleet(sb: Sandbox, ...args: string[]): Promise<CliResult> {
  return runFleet({ ...sb.env, ...GIT, FLEET_BACKOFF_INITIAL_SECONDS: '0.001' }, args, { logDir: sb.root });
}

function roster(socket: string, agents: string[], workspace: (name: string) => string): string {
  return [
    'version: 1',
    `tmux: {socket_name: ${socket}}`,
    'agents:',
    ...agents.flatMap((name) => [
      `  - name: ${name}`,
      '    runtime: stub',
      `    workspace: ${workspace(name)}`,
    ]),
    '',
  ].join('\n');
}

/** The pane pid of `session` on `socket`. */
async function panePid(sb: Sandbox, socket: string, session: string): Promise<number> {
  const r = await sb.run(['tmux', '-L', socket, 'list-panes', '-t', `=${session}:0.0`, '-F', '#{pane_pid}']);
  return Number(r.stdout.trim());
}

async function expectEmptyPlan(sb: Sandbox, label: string, ...extra: string[]): Promise<void> {
  const dry = await fleet(sb, 'reconcile', '--dry-run', '--detailed-exitcode', ...extra);
  expect(dry.code, `plan ${label}:\n${dry.stdout}${dry.stderr}`).toBe(0);
}

/** A fresh sandbox per test: each makes its own repository and fleet. */
function inSandbox(fn: (sb: Sandbox) => Promise<void>): Promise<void> {
  return withSandbox(fn, { env: GIT });
}

describeSandbox(
  'workspaces: a git worktree per agent',
  () => {
    it('two agents on one repository run in their own worktrees, on their own branches; a second reconcile plans nothing', () =>
      inSandbox(async (sb) => {
        const socket = uniqueSocket('fleet-ws');
        const repo = makeRepo(GIT, join(sb.root, 'src', 'app'));
        await writeRoster(
          sb,
          roster(socket, ['a1', 'a2'], () => `{repo: ${repo}}`),
        );
        const first = await fleet(sb, 'reconcile');
        expect(first.code, first.stdout + first.stderr).toBe(0);
        expect(first.stdout).toMatch(/worktree add/);
        const listed = listWorktrees(GIT, repo);
        for (const name of ['a1', 'a2']) {
          const path = `${repo}.worktrees/${name}`;
          const w = listed.find((x) => x.path === path);
          expect(w, `${name}'s worktree`).toEqual({
            path,
            branch: `fleet/${name}`,
            locked: `mosaic fleet: agent ${name}`,
          });
          // The pane's working directory, as the kernel says it.
          const pid = await waitFor(`${name}'s pane`, () => panePid(sb, socket, name).catch(() => 0));
          expect(readlinkSync(`/proc/${pid}/cwd`)).toBe(path);
          expect(readFileSync(join(path, 'README.md'), 'utf8')).toBe('hello\n');
        }
        await expectEmptyPlan(sb, 'after the first reconcile');
        const second = await fleet(sb, 'reconcile');
        expect(second.code).toBe(0);
        expect(second.mutating, JSON.stringify(second.mutating)).toEqual([]);
        // Observation asks each repository a constant number of questions, whatever the number of agents.
        const gits = second.commands.filter((c) => c.argv[0] === 'git');
        expect(gits.filter((c) => c.argv.includes('worktree'))).toHaveLength(1);
        expect(gits.length).toBeLessThanOrEqual(3);

        // fleet diff: a committed and an uncommitted change, from the agent's worktree.
        const wt = `${repo}.worktrees/a1`;
        writeFileSync(join(wt, 'feature.txt'), 'committed line\n');
        git(GIT, wt, 'add', 'feature.txt');
        git(GIT, wt, 'commit', '-q', '-m', 'feature');
        writeFileSync(join(wt, 'README.md'), 'hello\nuncommitted line\n');
        writeFileSync(join(wt, 'scratch.txt'), 'new\n');
        const diff = await fleet(sb, 'diff', 'a1');
        expect(diff.code, diff.stderr).toBe(0);
        expect(diff.stdout).toMatch(/## committed: 1 commit since the base[\s\S]*\+committed line/);
        expect(diff.stdout).toMatch(/## uncommitted[\s\S]*\+uncommitted line/);
        expect(diff.stdout).toMatch(/## untracked: 1 file\n {2}scratch\.txt/);
        expect(diff.stdout).not.toMatch(/uncommitted line[\s\S]*## committed/);
        expect(diff.mutating).toEqual([]);
        const stat = await fleet(sb, 'diff', 'a1', '--stat');
        expect(stat.stdout).toMatch(/feature\.txt \| 1 \+/);
        expect(stat.stdout).toMatch(/README\.md +\| 1 \+/);
        const none = await fleet(sb, 'diff', 'a2');
        expect(none.stdout).toMatch(/## committed: 0 commits since the base\n\(none\)/);

        // fleet ps: the branch, and whether the worktree is dirty.
        const ps = await fleet(sb, 'ps', '--json');
        expect(ps.code, ps.stderr).toBe(0);
        const doc = JSON.parse(ps.stdout) as {
          agents: {
            name: string;
            workspace: { branch: string; dirty: boolean; uncommitted_files: number };
          }[];
        };
        const byName = Object.fromEntries(doc.agents.map((a) => [a.name, a.workspace]));
        expect(byName.a1).toMatchObject({ branch: 'fleet/a1', dirty: true, uncommitted_files: 1 });
        expect(byName.a2).toMatchObject({ branch: 'fleet/a2', dirty: false });
        const table = await fleet(sb, 'ps');
        expect(table.stdout).toMatch(/BRANCH/);
        expect(table.stdout).toMatch(/fleet\/a1 dirty/);
        expect(ps.mutating).toEqual([]);
      }));

    it('a worktree deleted by hand (rm -rf, git worktree prune) comes back with its branch and its commits', () =>
      inSandbox(async (sb) => {
        const socket = uniqueSocket('fleet-ws');
        const repo = makeRepo(GIT, join(sb.root, 'src', 'app'));
        await writeRoster(
          sb,
          roster(socket, ['h1'], () => `{repo: ${repo}}`),
        );
        expect((await fleet(sb, 'reconcile')).code).toBe(0);
        const path = `${repo}.worktrees/h1`;
        writeFileSync(join(path, 'work.txt'), 'committed work\n');
        git(GIT, path, 'add', 'work.txt');
        git(GIT, path, 'commit', '-q', '-m', 'work');
        const tip = git(GIT, path, 'rev-parse', 'HEAD').trim();
        rmSync(path, { recursive: true, force: true });
        git(GIT, repo, 'worktree', 'prune');
        const dry = await fleet(sb, 'reconcile', '--dry-run');
        expect(dry.stdout).toMatch(/worktree directory was deleted: added again from branch fleet\/h1/);
        const r = await fleet(sb, 'reconcile');
        expect(r.code, r.stdout + r.stderr).toBe(0);
        expect(readFileSync(join(path, 'work.txt'), 'utf8')).toBe('committed work\n');
        expect(git(GIT, path, 'rev-parse', 'HEAD').trim()).toBe(tip);
        expect(listWorktrees(GIT, repo).find((w) => w.path === path)?.locked).toBe('mosaic fleet: agent h1');
        await expectEmptyPlan(sb, 'after the worktree came back');
      }));

    it('prune keeps a worktree with an uncommitted edit, an untracked file or a commit not in base, byte for byte; a clean one is removed and its branch kept', () =>
      inSandbox(async (sb) => {
        const socket = uniqueSocket('fleet-ws');
        const repo = makeRepo(GIT, join(sb.root, 'src', 'app'));
        const names = ['edit', 'untracked', 'commit', 'clean'];
        await writeRoster(
          sb,
          roster(socket, ['keeper', ...names], () => `{repo: ${repo}, base: main}`),
        );
        const first = await fleet(sb, 'reconcile');
        expect(first.code, first.stdout + first.stderr).toBe(0);
        const wt = (n: string) => `${repo}.worktrees/${n}`;
        writeFileSync(join(wt('edit'), 'README.md'), 'hello, edited\n');
        writeFileSync(join(wt('untracked'), 'notes.txt'), 'mine\n');
        writeFileSync(join(wt('commit'), 'feature.txt'), 'feature\n');
        git(GIT, wt('commit'), 'add', 'feature.txt');
        git(GIT, wt('commit'), 'commit', '-q', '-m', 'feature');
        const before = Object.fromEntries(names.map((n) => [n, snapshotTree(wt(n))]));
        await writeRoster(
          sb,
          roster(socket, ['keeper'], () => `{repo: ${repo}, base: main}`),
        );
        const r = await fleet(sb, 'reconcile', '--prune');
        expect(r.code, r.stdout + r.stderr).toBe(0);
        const out = r.stdout + r.stderr;
        expect(out).toMatch(/edit: worktree \S+ kept: 1 uncommitted file \(no manifest names agent edit\)/);
        expect(out).toMatch(/untracked: worktree \S+ kept: 1 untracked file/);
        expect(out).toMatch(/commit: worktree \S+ kept: 1 commit not in main/);
        for (const n of ['edit', 'untracked', 'commit']) {
          expect(snapshotTree(wt(n)), `${n} byte for byte`).toEqual(before[n]);
        }
        expect(existsSync(wt('clean'))).toBe(false);
        expect(git(GIT, repo, 'branch', '--list', 'fleet/clean').trim()).toBe('fleet/clean');
        expect(listWorktrees(GIT, repo).map((w) => w.path)).not.toContain(wt('clean'));
        await expectEmptyPlan(sb, 'after the prune', '--prune');
      }));

    it('a changed path moves the worktree with its uncommitted work; a changed branch adds a new one and keeps the old while it holds work', () =>
      inSandbox(async (sb) => {
        const socket = uniqueSocket('fleet-ws');
        const repo = makeRepo(GIT, join(sb.root, 'src', 'app'));
        const immediate = (text: string) =>
          text.replace('agents:', 'reconcile: {restart: {policy: immediate}}\nagents:');
        await writeRoster(sb, immediate(roster(socket, ['m1'], () => `{repo: ${repo}}`)));
        expect((await fleet(sb, 'reconcile')).code).toBe(0);
        const old = `${repo}.worktrees/m1`;
        writeFileSync(join(old, 'wip.txt'), 'work in progress\n');
        const moved = join(sb.root, 'wt', 'm1');
        await writeRoster(sb, immediate(roster(socket, ['m1'], () => `{repo: ${repo}, path: ${moved}}`)));
        const r = await fleet(sb, 'reconcile');
        expect(r.code, r.stdout + r.stderr).toBe(0);
        expect(r.stdout).toMatch(/worktree move/);
        expect(existsSync(old)).toBe(false);
        expect(readFileSync(join(moved, 'wip.txt'), 'utf8')).toBe('work in progress\n');
        expect(listWorktrees(GIT, repo).find((w) => w.path === moved)).toEqual({
          path: moved,
          branch: 'fleet/m1',
          locked: 'mosaic fleet: agent m1',
        });
        const pid = await waitFor('m1 restarted in its new worktree', async () => {
          const p = await panePid(sb, socket, 'm1').catch(() => 0);
          return p > 0 && readlinkSync(`/proc/${p}/cwd`) === moved ? p : null;
        });
        expect(pid).toBeGreaterThan(0);
        await expectEmptyPlan(sb, 'after the move');

        // Another branch: a new worktree; the old one holds wip.txt, so it is kept and the plan says why.
        const second = join(sb.root, 'wt', 'm1-b');
        await writeRoster(
          sb,
          immediate(roster(socket, ['m1'], () => `{repo: ${repo}, branch: other, path: ${second}}`)),
        );
        const b = await fleet(sb, 'reconcile');
        expect(b.code, b.stdout + b.stderr).toBe(0);
        expect(existsSync(join(second, 'README.md'))).toBe(true);
        expect(readFileSync(join(moved, 'wip.txt'), 'utf8')).toBe('work in progress\n');
        await waitFor('m1 restarted on its new branch', async () => {
          const p = await panePid(sb, socket, 'm1').catch(() => 0);
          return p > 0 && readlinkSync(`/proc/${p}/cwd`) === second;
        });
        const dry = await fleet(sb, 'reconcile', '--dry-run', '--detailed-exitcode');
        expect(dry.code, dry.stdout).toBe(0);
        expect(dry.stdout).toMatch(
          /m1: worktree \S+wt\/m1 kept: 1 untracked file \(agent m1's workspace changed\)/,
        );
        // Once its work is committed and merged, the old worktree goes; its branch stays.
        rmSync(join(moved, 'wip.txt'));
        const c = await fleet(sb, 'reconcile');
        expect(c.code, c.stdout + c.stderr).toBe(0);
        expect(existsSync(moved)).toBe(false);
        expect(git(GIT, repo, 'branch', '--list', 'fleet/m1').trim()).toBe('fleet/m1');
        await expectEmptyPlan(sb, 'after the old worktree went');
      }));

    it('bad input: not a repository, no such base, a path inside another worktree, a branch git refuses: one line each, nothing made', () =>
      inSandbox(async (sb) => {
        const socket = uniqueSocket('fleet-ws');
        const repo = makeRepo(GIT, join(sb.root, 'src', 'app'));
        const plain = join(sb.root, 'plain');
        mkdirSync(plain);
        const other = join(sb.root, 'src', 'other-wt');
        git(GIT, repo, 'worktree', 'add', '-q', other);
        const cases: [string, RegExp][] = [
          [`{repo: ${plain}}`, /agent b1: workspace repo \S+ is not a git repository/],
          [
            `{repo: ${repo}, base: no-such-branch}`,
            /agent b1: workspace base "no-such-branch" is not a commit in/,
          ],
          [
            `{repo: ${repo}, path: ${other}/inner}`,
            /agent b1: workspace path \S+ is inside the worktree \S+other-wt/,
          ],
          [
            `{repo: ${repo}, branch: "bad..name"}`,
            /roster\.yaml:\d+:\d+: .*workspace branch "bad\.\.name" must not contain "\.\."/,
          ],
        ];
        for (const [ws, message] of cases) {
          await writeRoster(
            sb,
            roster(socket, ['b1'], () => ws),
          );
          const r = await fleet(sb, 'reconcile');
          expect(r.code, `${ws}: ${r.stdout}${r.stderr}`).toBe(1);
          expect(r.stderr).toMatch(message);
          expect(
            r.stderr
              .trim()
              .split('\n')
              .filter((l) => /b1|branch/.test(l)),
            r.stderr,
          ).toHaveLength(1);
          expect(r.mutating, `${ws}: nothing made`).toEqual([]);
          expect(existsSync(sb.paths.agentsDir), `${ws}: no env file`).toBe(false);
          expect(existsSync(`${repo}.worktrees`), `${ws}: no worktree`).toBe(false);
          expect(existsSync(`${other}/inner`)).toBe(false);
        }
      }));
  },
  { env: GIT },
);
