/**
 * The workspaces decider (src/plan/deciders/workspaces.ts), on in-memory tables: what it adds, locks, moves and
 * removes, what it keeps and why, what bad input it refuses; and where plan() puts the actions (a worktree
 * before its agent's first start, removals last).
 */
import { describe, expect, it } from 'vitest';
import type { DesiredAgent, DesiredWorkspace } from '../../../src/model/desired.js';
import type { Observed, ObservedRepo, ObservedWorktree, WorktreeWork } from '../../../src/model/observed.js';
import {
  decideWorkspaces,
  removalCandidates,
  workspaceRefusals,
} from '../../../src/plan/deciders/workspaces.js';
import { agent, fleet, observedBuilder } from '../../helpers/builders.js';
import { planFor } from '../../helpers/planning.js';
import {
  parseStatus,
  parseWorktreeList,
  parseBatchCheck,
  parseRecordedBases,
} from '../../../src/workspaces/git.js';

const REPO = '/src/app';
const MAIN = 'a'.repeat(40);
const TIP = 'b'.repeat(40);

function ws(name: string, over: Partial<DesiredWorkspace> = {}): DesiredWorkspace {
  return {
    repo: REPO,
    branch: `fleet/${name}`,
    base: null,
    path: `${REPO}.worktrees/${name}`,
    pruneBranches: null,
    ...over,
  };
}

function wsAgent(name: string, over: Partial<DesiredWorkspace> = {}): DesiredAgent {
  const w = ws(name, over);
  return agent(name, { workspace: w, workingDirectory: w.path });
}

function tree(path: string, branch: string | null, locked: string | null, exists = true): ObservedWorktree {
  return { path, head: TIP, branch, locked, exists };
}

function observedWith(repo: Partial<ObservedRepo>, extra: Partial<Observed> = {}): Observed {
  const o = observedBuilder().build();
  const r: ObservedRepo = {
    repo: REPO,
    error: null,
    worktrees: [tree(REPO, 'main', null)],
    commits: { HEAD: MAIN },
    recordedBases: {},
    ...repo,
  };
  return { ...o, ...extra, workspaces: { repos: { [REPO]: r }, paths: {}, work: {} } };
}

const clean: Omit<WorktreeWork, 'path'> = {
  uncommitted: 0,
  untracked: 0,
  unmerged: 0,
  upstream: null,
  error: null,
};

describe('decideWorkspaces', () => {
  it('adds a new branch from HEAD for an agent without a worktree, recording the base, locked at once', () => {
    const d = decideWorkspaces(fleet([wsAgent('a1')]), observedWith({}), false);
    expect(d.prepare).toEqual([
      expect.objectContaining({
        kind: 'worktree-add',
        agent: 'a1',
        path: `${REPO}.worktrees/a1`,
        branch: 'fleet/a1',
        startPoint: MAIN,
        recordBase: MAIN,
        stale: false,
        lockReason: 'mosaic fleet: agent a1',
      }),
    ]);
    expect(d.worktrees).toEqual({
      [`${REPO}.worktrees/a1`]: { agent: 'a1', repo: REPO, branch: 'fleet/a1' },
    });
  });

  it('reuses an existing branch as it is (no start point: never reset)', () => {
    const o = observedWith({
      commits: { HEAD: MAIN, 'refs/heads/fleet/a1': TIP },
      recordedBases: { 'fleet/a1': MAIN },
    });
    const [a] = decideWorkspaces(fleet([wsAgent('a1')]), o, false).prepare;
    expect(a).toMatchObject({ kind: 'worktree-add', startPoint: null, recordBase: null });
    expect(a?.reason).toMatch(/exists and is checked out as it is/);
  });

  it("adds a worktree deleted by hand again over git's stale entry, from its branch", () => {
    const p = `${REPO}.worktrees/a1`;
    const o = observedWith({
      worktrees: [tree(REPO, 'main', null), tree(p, 'fleet/a1', 'mosaic fleet: agent a1', false)],
      commits: { HEAD: MAIN, 'refs/heads/fleet/a1': TIP },
    });
    const [a] = decideWorkspaces(fleet([wsAgent('a1')]), o, false).prepare;
    expect(a).toMatchObject({ kind: 'worktree-add', stale: true, startPoint: null });
  });

  it('locks an unlocked worktree of the agent; plans nothing for a locked one', () => {
    const p = `${REPO}.worktrees/a1`;
    const unlocked = observedWith({ worktrees: [tree(REPO, 'main', null), tree(p, 'fleet/a1', null)] });
    expect(decideWorkspaces(fleet([wsAgent('a1')]), unlocked, false).prepare.map((a) => a.kind)).toEqual([
      'worktree-lock',
    ]);
    const locked = observedWith({
      worktrees: [tree(REPO, 'main', null), tree(p, 'fleet/a1', 'mosaic fleet: agent a1')],
    });
    const d = decideWorkspaces(fleet([wsAgent('a1')]), locked, false);
    expect(d.prepare).toEqual([]);
    expect(d.removals).toEqual([]);
  });

  it("moves the agent's worktree when only its path changed (same repository and branch)", () => {
    const old = `${REPO}.worktrees/a1`;
    const o = observedWith({
      worktrees: [tree(REPO, 'main', null), tree(old, 'fleet/a1', 'mosaic fleet: agent a1')],
    });
    const d = decideWorkspaces(fleet([wsAgent('a1', { path: '/w/a1' })]), o, false);
    expect(d.prepare).toEqual([expect.objectContaining({ kind: 'worktree-move', path: old, to: '/w/a1' })]);
    expect(d.removals).toEqual([]);
  });

  it("a pruned agent's worktree: only with prune; removed when clean, branch kept; kept with the reason when not", () => {
    const p = `${REPO}.worktrees/old`;
    const repo = {
      worktrees: [tree(REPO, 'main', null), tree(p, 'fleet/old', 'mosaic fleet: agent old')],
      commits: { HEAD: MAIN, main: MAIN },
      recordedBases: { 'fleet/old': MAIN },
    };
    const o = observedWith(repo);
    expect(removalCandidates(fleet([]), o, false)).toEqual([]);
    expect(removalCandidates(fleet([]), o, true)).toEqual([
      expect.objectContaining({ agent: 'old', path: p, safe: [MAIN], mergedInto: null, pruned: true }),
    ]);
    o.workspaces!.work[p] = { path: p, ...clean };
    const removed = decideWorkspaces(fleet([]), o, true);
    expect(removed.removals).toEqual([
      expect.objectContaining({ kind: 'worktree-remove', path: p, branch: 'fleet/old' }),
    ]);
    expect(removed.removals[0]?.reason).toMatch(
      /no manifest names agent old; it holds no work \(branch fleet\/old is kept\)/,
    );
    o.workspaces!.work[p] = { path: p, ...clean, uncommitted: 3, unmerged: 2 };
    o.state.worktrees = { [p]: { agent: 'old', repo: REPO, branch: 'fleet/old', base: 'main' } };
    const kept = decideWorkspaces(fleet([]), o, true);
    expect(kept.removals).toEqual([]);
    expect(kept.warnings).toEqual([
      `old: worktree ${p} kept: 3 uncommitted files, 2 commits not in main (no manifest names agent old)`,
    ]);
    expect(kept.worktrees[p]).toEqual({ agent: 'old', repo: REPO, branch: 'fleet/old', base: 'main' });
  });

  it('a replaced worktree waits while the agent still runs in it', () => {
    const p = `${REPO}.worktrees/a1`;
    const o = observedWith({
      worktrees: [tree(REPO, 'main', null), tree(p, 'fleet/a1', 'mosaic fleet: agent a1')],
      commits: { HEAD: MAIN },
    });
    const b = observedBuilder(o).session('mosaic-fleet', 'a1', {});
    const withPane = b.build();
    const pane = withPane.tmux.sockets['mosaic-fleet']?.panes[0];
    if (pane) pane.environ = { MOSAIC_AGENT_WORKDIR: p };
    withPane.workspaces!.work[p] = { path: p, ...clean };
    const moved = fleet([wsAgent('a1', { repo: '/src/other', path: '/src/other.worktrees/a1' })]);
    const d = decideWorkspaces(moved, withPane, false);
    expect(d.removals).toEqual([]);
    expect(d.warnings[0]).toMatch(/kept: the agent still runs in it/);
  });

  it('prune_branches: merged asks for the branch to go when merged into the base as it is now', () => {
    const p = `${REPO}.worktrees/old`;
    const o = observedWith({
      worktrees: [tree(REPO, 'main', null), tree(p, 'fleet/old', 'mosaic fleet: agent old')],
      commits: { HEAD: MAIN },
    });
    o.state.worktrees = { [p]: { agent: 'old', repo: REPO, branch: 'fleet/old', pruneBranches: 'merged' } };
    o.workspaces!.work[p] = { path: p, ...clean };
    expect(decideWorkspaces(fleet([]), o, true).removals[0]?.deleteBranchIfMergedInto).toBe(MAIN);
  });
});

describe('workspaceRefusals', () => {
  it('one line each: not a repository, no such base, a path in the way, a path inside a worktree, a branch checked out elsewhere', () => {
    expect(
      workspaceRefusals(fleet([wsAgent('a1')]), observedWith({ error: 'not a git repository' })),
    ).toEqual([`agent a1: workspace repo ${REPO} is not a git repository (git: not a git repository)`]);
    expect(
      workspaceRefusals(
        fleet([wsAgent('a1', { base: 'nope' })]),
        observedWith({ commits: { HEAD: MAIN, nope: null } }),
      ),
    ).toEqual([`agent a1: workspace base "nope" is not a commit in ${REPO}`]);
    const inTheWay = observedWith({});
    inTheWay.workspaces!.paths[`${REPO}.worktrees/a1`] = 'present';
    expect(workspaceRefusals(fleet([wsAgent('a1')]), inTheWay)[0]).toMatch(/exists and is not a worktree of/);
    const nested = observedWith({ worktrees: [tree(REPO, 'main', null), tree('/w/other', 'x', null)] });
    expect(workspaceRefusals(fleet([wsAgent('a1', { path: '/w/other/in' })]), nested)).toEqual([
      'agent a1: workspace path /w/other/in is inside the worktree /w/other',
    ]);
    const taken = observedWith({ worktrees: [tree(REPO, 'main', null), tree('/w/x', 'fleet/a1', null)] });
    expect(workspaceRefusals(fleet([wsAgent('a1')]), taken)).toEqual([
      'agent a1: workspace branch fleet/a1 is already checked out at /w/x',
    ]);
    expect(workspaceRefusals(fleet([wsAgent('a1')]), observedWith({}))).toEqual([]);
  });
});

describe('plan() with workspaces', () => {
  it("puts the worktree before the agent's start, and a second plan after it is made is quiet about it", () => {
    const desired = fleet([wsAgent('a1')]);
    // Its working directory (the worktree) does not exist yet: the plan makes it, so the start is not held.
    const p = planFor(desired, observedWith({}, { dirs: { [`${REPO}.worktrees/a1`]: false } }));
    expect(p.held).toEqual([]);
    expect(p.warnings.filter((w) => w.includes('does not exist'))).toEqual([]);
    const kinds = p.actions.map((a) => a.kind);
    expect(kinds.indexOf('worktree-add')).toBeGreaterThanOrEqual(0);
    expect(kinds.indexOf('worktree-add')).toBeLessThan(kinds.indexOf('start'));
    expect(p.summary.add).toBeGreaterThan(0);
    expect(p.worktrees).toEqual({
      [`${REPO}.worktrees/a1`]: { agent: 'a1', repo: REPO, branch: 'fleet/a1' },
    });
  });
});

describe('git output parsers', () => {
  it('reads worktree lists, batch-check answers, recorded bases and status', () => {
    expect(
      parseWorktreeList(
        `worktree /r\nHEAD ${MAIN}\nbranch refs/heads/main\n\nworktree /r.w/a\nHEAD ${TIP}\nbranch refs/heads/fleet/a\nlocked mosaic fleet: agent a\n\nworktree /d\nHEAD ${TIP}\ndetached\nlocked\n\n`,
      ),
    ).toEqual([
      { path: '/r', head: MAIN, branch: 'main', locked: null },
      { path: '/r.w/a', head: TIP, branch: 'fleet/a', locked: 'mosaic fleet: agent a' },
      { path: '/d', head: TIP, branch: null, locked: '' },
    ]);
    expect(parseBatchCheck(['HEAD', 'nope'], `${MAIN} commit 200\nnope^{commit} missing\n`)).toEqual({
      HEAD: MAIN,
      nope: null,
    });
    expect(parseRecordedBases(`branch.fleet/a.mosaicfleetbase ${MAIN}\n`)).toEqual({ 'fleet/a': MAIN });
    const status = [
      '# branch.oid x',
      '# branch.head fleet/a',
      '# branch.upstream origin/fleet/a',
      '1 .M N... 100644 100644 100644 x y README.md',
      '2 R. N... 100644 100644 100644 x y R100 new.md',
      'old.md',
      '? notes.txt',
      '',
    ].join('\0');
    expect(parseStatus(status)).toEqual({ uncommitted: 2, untracked: 1, upstream: 'origin/fleet/a' });
  });
});
