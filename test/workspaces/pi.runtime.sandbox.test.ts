/**
 * A real runtime in its worktree (docs/workspaces.md): pi, the lightest, declared with a workspace instead of a
 * working directory, runs in its own worktree on its own branch, reports idle through its extension, and a second
 * reconcile plans nothing.
 */
import { readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { describeRuntimes } from '../runtimes/bed.js';
import { gitEnv, listWorktrees, makeRepo } from './git-repo.js';

describeRuntimes('a real runtime in its worktree (pi)', ['pi'], (bed) => {
  it('pi runs in its worktree, on its branch; the next plan is empty', async () => {
    const b = bed();
    await b.setup([{ name: 'piw', runtime: 'pi' }]);
    const repo = makeRepo(gitEnv(), join(b.sb.root, 'src', 'app'));
    const roster = join(b.sb.paths.mosaicHome, 'fleet', 'roster.yaml');
    const text = readFileSync(roster, 'utf8').replace(/working_directory: .*/, `workspace: {repo: ${repo}}`);
    writeFileSync(roster, text);
    const r = await b.fleet('reconcile');
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const path = `${repo}.worktrees/piw`;
    expect(listWorktrees({}, repo).find((w) => w.path === path)).toEqual({
      path,
      branch: 'fleet/piw',
      locked: 'mosaic fleet: agent piw',
    });
    const row = await b.waitState('piw', 'idle', 90_000);
    expect(row.flags).toEqual([]);
    const pid = (row as unknown as { session: { pane_pid: number } }).session.pane_pid;
    expect(readlinkSync(`/proc/${pid}/cwd`)).toBe(path);
    const dry = await b.fleet('reconcile', '--dry-run', '--detailed-exitcode');
    expect(dry.code, dry.stdout).toBe(0);
  });
});
