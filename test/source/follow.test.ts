/**
 * The git source's step (src/source/follow.ts) against real git repositories: a bare remote in a temp dir and a
 * working clone that pushes to it, fetched over file:// URLs. What is refused keeps the last good commit, said
 * once; a dry run moves nothing.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManifestError, UserError } from '../../src/errors.js';
import { createRunner } from '../../src/exec.js';
import type { HostContext, SourceSettings } from '../../src/model/desired.js';
import { followSource, type SourceMode } from '../../src/source/follow.js';
import { checkoutDir, readSourceState } from '../../src/source/state.js';
import { git } from '../workspaces/git-repo.js';
import { makeRemote, roster, type Remote } from '../helpers/remote.js';

let root: string;
let remote: Remote;
let stateDir: string;
let ctx: HostContext;
const saved = { ...process.env };

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'fleet-source-'));
  remote = makeRemote(root);
  // The fleet's own git calls run in this process: the private configuration for them too.
  Object.assign(process.env, remote.env);
  const home = join(root, 'home');
  stateDir = join(home, 'fleet', 'reconciler');
  mkdirSync(stateDir, { recursive: true });
  ctx = { userHome: root, mosaicHome: home, hostname: 'h1' };
});
afterEach(() => {
  process.env = { ...saved };
  rmSync(root, { recursive: true, force: true });
});

function settings(over: Partial<SourceSettings> = {}): SourceSettings {
  return {
    url: remote.url,
    ref: 'main',
    path: '',
    origin: { file: '/etc/source.yaml', line: 2, col: 1 },
    ...over,
  };
}

const follow = (mode: SourceMode = 'apply', s: SourceSettings = settings()) =>
  followSource(s, stateDir, ctx, createRunner(), mode);
const names = (r: Awaited<ReturnType<typeof follow>>) => r.desired.agents.map((a) => a.name);
const head = () => git(remote.env, checkoutDir(stateDir), 'rev-parse', 'HEAD').trim();

describe('the git source', () => {
  it('checks out the branch at first, then fast-forwards to what is pushed, and says nothing when all is well', async () => {
    const c1 = remote.push({ 'roster.yaml': roster(['a1']) });
    const first = await follow();
    expect(first).toMatchObject({
      commit: c1,
      advanced: { from: null, to: c1 },
      problem: null,
      notice: null,
    });
    expect(names(first)).toEqual(['a1']);
    expect(first.desired.sources).toEqual([join(checkoutDir(stateDir), 'roster.yaml')]);
    expect(await readSourceState(stateDir)).toMatchObject({ url: remote.url, ref: 'main', commit: c1 });

    const same = await follow();
    expect(same).toMatchObject({ commit: c1, advanced: null, notice: null });

    const c2 = remote.push({ 'roster.yaml': roster(['a1', 'b1@h2']) });
    const moved = await follow();
    expect(moved).toMatchObject({ commit: c2, advanced: { from: c1, to: c2 }, problem: null });
    expect(names(moved)).toEqual(['a1', 'b1']);
    expect(head()).toBe(c2);
  });

  it('refuses a force-pushed history once, keeps the last good commit, and takes the next fast-forward', async () => {
    remote.push({ 'roster.yaml': roster(['a1']) });
    const good = remote.push({ 'roster.yaml': roster(['a1', 'a2']) });
    await follow();
    const rewritten = remote.forcePush({ 'roster.yaml': roster(['evil']) });
    const refused = await follow();
    expect(refused.problem?.key).toBe(`non-fast-forward:${rewritten}`);
    expect(refused.notice).toMatch(
      new RegExp(
        `^git source: branch main of .* is at ${rewritten.slice(0, 12)}, which does not contain ${good.slice(0, 12)} .*refused; keeping ${good.slice(0, 12)}$`,
      ),
    );
    expect(refused.notice).not.toMatch(/\n/);
    expect(names(refused)).toEqual(['a1', 'a2']);
    expect(head()).toBe(good);
    // Said once: the next run is as refused, and silent.
    const again = await follow();
    expect(again).toMatchObject({
      commit: good,
      notice: null,
      problem: { key: `non-fast-forward:${rewritten}` },
    });
    // A push on top of the rewritten history is no fast-forward either.
    const next = remote.push({ 'roster.yaml': roster(['evil', 'more']) });
    const still = await follow();
    expect(still.problem?.key).toBe(`non-fast-forward:${next}`);
    expect(still.notice).toMatch(/refused/);
    expect(head()).toBe(good);
  });

  it('refuses a checkout with local changes, converging to its commit as committed', async () => {
    const c1 = remote.push({ 'roster.yaml': roster(['a1']) });
    await follow();
    writeFileSync(join(checkoutDir(stateDir), 'roster.yaml'), roster(['a1', 'handmade']));
    remote.push({ 'roster.yaml': roster(['a1', 'b1']) });
    const refused = await follow();
    expect(refused.problem?.key).toBe('dirty');
    expect(refused.notice).toMatch(
      /^git source: the checkout .* has local changes \(M roster.yaml\): refused, read as committed; keeping /,
    );
    expect(names(refused)).toEqual(['a1']);
    expect(head()).toBe(c1);
    // The operator's edit is not touched.
    expect(readFileSync(join(checkoutDir(stateDir), 'roster.yaml'), 'utf8')).toMatch(/handmade/);
    // `read` (ps, the verbs) sees the commit too, not the edit.
    expect(names(await follow('read'))).toEqual(['a1']);
    // An untracked file counts too.
    git(remote.env, checkoutDir(stateDir), 'checkout', '--', 'roster.yaml');
    writeFileSync(join(checkoutDir(stateDir), 'extra.yaml'), roster(['extra']));
    expect((await follow()).problem?.key).toBe('dirty');
    rmSync(join(checkoutDir(stateDir), 'extra.yaml'));
    const clean = await follow();
    expect(clean.notice).toMatch(/nothing refused any more/);
    expect(names(clean)).toEqual(['a1', 'b1']);
  });

  it('keeps the last good commit while the remote is unreachable, says it once, and says when it is over', async () => {
    const c1 = remote.push({ 'roster.yaml': roster(['a1']) });
    await follow();
    remote.unreachable(true);
    const down = await follow();
    expect(down).toMatchObject({ commit: c1, problem: { key: 'unreachable' } });
    expect(down.notice).toMatch(/^git source: cannot fetch file:\/\/.*; keeping /);
    expect(names(down)).toEqual(['a1']);
    expect((await follow()).notice).toBeNull();
    remote.unreachable(false);
    const back = await follow();
    expect(back).toMatchObject({
      problem: null,
      notice: `git source: nothing refused any more; at ${c1.slice(0, 12)}`,
    });
  });

  it('refuses a commit whose manifests are invalid, naming the file and line', async () => {
    const c1 = remote.push({ 'roster.yaml': roster(['a1']) });
    await follow();
    const bad = remote.push({ 'roster.yaml': 'version: 1\nagents:\n  - {name: a1, runtime: nope}\n' });
    const refused = await follow();
    expect(refused.problem?.key).toBe(`invalid:${bad}`);
    expect(refused.notice).toMatch(/has invalid manifests: roster.yaml:3:\d+: unknown runtime "nope"/);
    expect(head()).toBe(c1);
    // A manifest of the repository cannot name a source itself.
    remote.push({ 'roster.yaml': `version: 1\nsource: {git: ${remote.url}}\n` });
    expect((await follow()).notice).toMatch(/cannot set source: itself/);
  });

  it('follows a subdirectory of the repository', async () => {
    remote.push({ 'roster.yaml': roster(['top']), 'hosts/prod/a.yaml': roster(['p1']) });
    expect(names(await follow('apply', settings({ path: 'hosts/prod' })))).toEqual(['p1']);
  });

  it('a dry run fetches and plans from the new commit without moving the checkout or saying it once', async () => {
    const c1 = remote.push({ 'roster.yaml': roster(['a1']) });
    // Before any checkout: a temp one, removed.
    const fresh = await follow('dry-run');
    expect(names(fresh)).toEqual(['a1']);
    expect(existsSync(checkoutDir(stateDir))).toBe(false);
    await follow();
    const c2 = remote.push({ 'roster.yaml': roster(['a1', 'a2']) });
    const dry = await follow('dry-run');
    expect(dry).toMatchObject({ commit: c2, advanced: { from: c1, to: c2 } });
    expect(names(dry)).toEqual(['a1', 'a2']);
    expect(head()).toBe(c1);
    expect(readFileSync(join(checkoutDir(stateDir), 'roster.yaml'), 'utf8')).not.toMatch(/a2/);
    expect((await readSourceState(stateDir))?.commit).toBe(c1);
    await follow();
    remote.forcePush({ 'roster.yaml': roster(['x']) });
    // A dry run says a refusal every time (it remembers nothing).
    expect((await follow('dry-run')).notice).toMatch(/refused/);
    expect((await follow('dry-run')).notice).toMatch(/refused/);
  });

  it('a first fetch that fails is bad input naming where the source is set, and leaves nothing behind', async () => {
    remote.push({ 'roster.yaml': roster(['a1']) });
    remote.unreachable(true);
    await expect(follow()).rejects.toThrow(/^\/etc\/source\.yaml:2:1: git source: cannot fetch file:\/\//);
    remote.unreachable(false);
    const missing = follow('apply', settings({ ref: 'nope' }));
    await expect(missing).rejects.toBeInstanceOf(UserError);
    await expect(follow('apply', settings({ ref: 'nope' }))).rejects.toThrow(
      /^\/etc\/source\.yaml:2:1: git source: branch nope not found in file:\/\/\S+$/,
    );
    expect(existsSync(checkoutDir(stateDir))).toBe(false);
    expect(existsSync(`${checkoutDir(stateDir)}.new`)).toBe(false);
    await expect(follow('read')).rejects.toThrow(/not fetched on this host yet: run fleet reconcile/);
    // A first commit with invalid manifests: the diagnostics, with the checkout's file names.
    remote.push({ 'roster.yaml': 'version: 2\n' });
    const invalid = await follow().catch((e: unknown) => e);
    expect(invalid).toBeInstanceOf(ManifestError);
    expect((invalid as ManifestError).message).toContain(`${join(checkoutDir(stateDir), 'roster.yaml')}:1:`);
    expect(existsSync(checkoutDir(stateDir))).toBe(false);
  });

  it('another branch is a new start, not a rewritten history; a branch that does not exist is bad input, a deleted one a refusal', async () => {
    remote.push({ 'roster.yaml': roster(['a1']) });
    await follow();
    const work = join(root, 'work');
    git(remote.env, work, 'checkout', '-q', '--orphan', 'prod');
    writeFileSync(join(work, 'roster.yaml'), roster(['p1']));
    git(remote.env, work, 'add', 'roster.yaml');
    git(remote.env, work, 'commit', '-q', '-m', 'prod');
    git(remote.env, work, 'push', '-q', 'origin', 'HEAD:refs/heads/prod');
    const prod = git(remote.env, work, 'rev-parse', 'HEAD').trim();
    const switched = await follow('apply', settings({ ref: 'prod' }));
    expect(switched).toMatchObject({ commit: prod, problem: null });
    expect(names(switched)).toEqual(['p1']);
    // A branch just named that does not exist is bad input naming where it is set; the checkout stays.
    await expect(follow('apply', settings({ ref: 'nope' }))).rejects.toThrow(
      /^\/etc\/source\.yaml:2:1: git source: branch nope not found in file:\/\//,
    );
    expect(head()).toBe(prod);
    // The branch followed so far being deleted is a refusal: the last good state is kept.
    git(remote.env, work, 'push', '-q', 'origin', ':refs/heads/prod');
    const gone = await follow('apply', settings({ ref: 'prod' }));
    expect(gone).toMatchObject({ commit: prod, problem: { key: 'missing-ref' } });
    expect(gone.notice).toMatch(/^git source: branch prod not found in file:\/\/.*; keeping /);
    expect(names(gone)).toEqual(['p1']);
  });
});
