/**
 * The manifest's `workspace` (docs/workspaces.md): defaults and normalization, and the bad input validation
 * refuses at its line: both workspace and working_directory, two agents on one branch or one path, a path inside
 * its repository, a branch name git refuses (judged the same as `git check-ref-format --branch`, asked for real).
 */
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadDesired } from '../../src/manifest/load.js';
import { branchNameProblem } from '../../src/manifest/semantic-workspace.js';
import { CTX, diagnosticLines, validateInProcess, writeManifests } from './helpers.js';

let cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups) c();
  cleanups = [];
});

function files(text: string): string {
  const m = writeManifests({ 'r.yaml': text });
  cleanups.push(m.cleanup);
  return join(m.dir, 'r.yaml');
}

async function diagnostics(text: string): Promise<{ line: number; message: string }[]> {
  const r = await validateInProcess([files(text)]);
  expect(r.code, r.stdout + r.stderr).toBe(1);
  return diagnosticLines(r.stderr).map((d) => ({ line: d.line, message: d.message }));
}

describe('workspace in the manifest', () => {
  it('normalizes: defaults for branch and path, ~ expanded, the worktree is the working directory', async () => {
    const path = files(
      [
        'version: 1',
        'defaults: {workspace: {repo: ~/src/app, base: main}}',
        'agents:',
        '  - {name: a1, runtime: stub}',
        '  - {name: a2, runtime: stub, workspace: {branch: feature/x, path: /w/a2, prune_branches: merged}}',
        '  - {name: a3, runtime: stub, workspace: null, working_directory: /srv}',
        '',
      ].join('\n'),
    );
    const desired = await loadDesired([path], CTX);
    const [a1, a2, a3] = desired.agents;
    expect(a1?.workspace).toEqual({
      repo: '/home/op/src/app',
      branch: 'fleet/a1',
      base: 'main',
      path: '/home/op/src/app.worktrees/a1',
      pruneBranches: null,
    });
    expect(a1?.workingDirectory).toBe('/home/op/src/app.worktrees/a1');
    expect(a2?.workspace).toEqual({
      repo: '/home/op/src/app',
      branch: 'feature/x',
      base: 'main',
      path: '/w/a2',
      pruneBranches: 'merged',
    });
    expect(a2?.workingDirectory).toBe('/w/a2');
    expect(a3?.workspace).toBeUndefined();
    expect(a3?.workingDirectory).toBe('/srv');
  });

  it('refuses workspace together with working_directory, naming the line', async () => {
    const d = await diagnostics(
      [
        'version: 1',
        'agents:',
        '  - name: a1',
        '    runtime: stub',
        '    working_directory: /srv',
        '    workspace: {repo: /src/app}',
        '',
      ].join('\n'),
    );
    expect(d).toEqual([
      {
        line: 6,
        message: expect.stringMatching(
          /agent "a1" sets both workspace and working_directory \(at .*r\.yaml:5:5\)/,
        ) as string,
      },
    ]);
  });

  it('refuses working_directory under defaults.workspace unless the agent opts out', async () => {
    const d = await diagnostics(
      'version: 1\ndefaults: {workspace: {repo: /src/app}}\nagents:\n  - {name: a1, runtime: stub, working_directory: /srv}\n',
    );
    expect(d).toEqual([
      { line: 4, message: expect.stringMatching(/defaults\.workspace gives it a worktree/) as string },
    ]);
  });

  it('refuses two agents on one branch, and two on one path, at the second', async () => {
    const d = await diagnostics(
      [
        'version: 1',
        'agents:',
        '  - {name: a1, runtime: stub, workspace: {repo: /src/app, branch: shared}}',
        '  - {name: a2, runtime: stub, workspace: {repo: /src/app, branch: shared}}',
        '  - {name: a3, runtime: stub, workspace: {repo: /src/app, path: /w/one}}',
        '  - {name: a4, runtime: stub, workspace: {repo: /src/other, path: /w/one}}',
        '',
      ].join('\n'),
    );
    expect(d).toEqual([
      {
        line: 4,
        message: expect.stringMatching(
          /agent "a2" uses branch "shared" of \/src\/app, as does agent "a1" \(at .*:3:/,
        ) as string,
      },
      {
        line: 6,
        message: expect.stringMatching(/agent "a4" has worktree path \/w\/one, as does agent "a3"/) as string,
      },
    ]);
  });

  it('refuses a worktree path inside its repository, a relative repo, and a workspace without a repo', async () => {
    const d = await diagnostics(
      [
        'version: 1',
        'agents:',
        '  - {name: a1, runtime: stub, workspace: {repo: /src/app, path: /src/app/wt}}',
        '  - {name: a2, runtime: stub, workspace: {repo: src/app}}',
        '  - {name: a3, runtime: stub, workspace: {branch: x}}',
        '',
      ].join('\n'),
    );
    expect(d.map((x) => x.line)).toEqual([3, 4, 5]);
    expect(d[0]?.message).toMatch(/worktree path \/src\/app\/wt inside its repository/);
    expect(d[1]?.message).toMatch(/must be absolute or start with ~\//);
    expect(d[2]?.message).toMatch(/workspace without a repo/);
  });

  it('refuses a branch name git refuses, at its line', async () => {
    const d = await diagnostics(
      'version: 1\nagents:\n  - name: a1\n    runtime: stub\n    workspace:\n      repo: /src/app\n      branch: "bad..name"\n',
    );
    expect(d).toEqual([
      {
        line: 7,
        message: expect.stringMatching(/workspace branch "bad\.\.name" must not contain "\.\."/) as string,
      },
    ]);
  });

  it('refuses "@", which git accepts as a shorthand but cannot be a branch', () => {
    expect(branchNameProblem('@')).toBeDefined();
  });

  it('judges branch names as git check-ref-format --branch does', () => {
    const names = [
      'fleet/a1',
      'feature/x-1',
      'a.b',
      'bad..name',
      '.hidden',
      'a/.b',
      'x.lock',
      'a/b.lock/c',
      'ends/',
      '/starts',
      'dou//ble',
      'at@{x',
      'HEAD',
      '-dash',
      'sp ace',
      'ti~lde',
      'ca^ret',
      'co:lon',
      'q?',
      'br[ack',
      'back\\slash',
      'dot.',
      'ok-name_2',
    ];
    for (const name of names) {
      // Outside any repository: inside one, --branch expands `@` and `@{-1}` to branch names.
      const git = spawnSync('git', ['check-ref-format', '--branch', name], {
        encoding: 'utf8',
        cwd: tmpdir(),
      });
      const ours = branchNameProblem(name) === undefined;
      expect(ours, `${name}: git says ${git.status === 0 ? 'valid' : 'invalid'}`).toBe(git.status === 0);
    }
  });
});
