/**
 * The git source (docs/hosts.md, "The git source"): a step before the manifests are loaded. The host's checkout
 * (`fleet/reconciler/source/`, the reconciler's own) is fetched and fast-forwarded to the branch it follows; the
 * desired state is read from it. Refused, with one line, and the last good desired state kept (the checkout's
 * commit, as committed): a remote that cannot be fetched, a branch gone, a history that is not a fast-forward of
 * the checkout's commit (a force-push), a checkout with local changes, a commit whose manifests are invalid. A
 * refusal does not stop convergence: the host goes on converging to the last good commit.
 *
 * Three modes: `apply` (a reconcile, a timer run, a watch resync: under the lock, moves the checkout, remembers
 * what it said), `dry-run` (fetches into the remote-tracking ref only, plans from the fetched commit; the checkout
 * and the files stay as they are) and `read` (`ps`, the verbs: no fetch, the checkout as it is).
 */
import { join } from 'node:path';
import { mkdtemp, rename, rm, stat } from '../fs-async.js';
import { tmpdir } from 'node:os';
import { ManifestError, UserError, formatDiagnostic, type Diagnostic } from '../errors.js';
import type { Runner } from '../exec.js';
import { loadDesiredCached, type LoadedDesired } from '../manifest/cache.js';
import type { DesiredFleet, HostContext, SourceSettings } from '../model/desired.js';
import { commitFleet, nestedSource } from './commit-fleet.js';
import { fetchedRef, firstLine, SourceGit } from './git.js';
import { originText } from './settings.js';
import { checkoutDir, readSourceState, writeSourceState, type SourceState } from './state.js';

export type SourceMode = 'apply' | 'dry-run' | 'read';

/** A refusal: its key (said once per key) and its line. */
export interface SourceProblem {
  key: string;
  line: string;
}

export interface SourceRun {
  settings: SourceSettings;
  /** The fleet to converge to: the new commit's, or the last good one's. */
  desired: DesiredFleet;
  /** The fleet as loaded from the checkout's files, for the desired-state cache; null when read from git. */
  loaded: LoadedDesired | null;
  /** The commit `desired` is from. */
  commit: string;
  /** The checkout moved (`apply`) or would move (`dry-run`) from a commit (null: a first checkout) to `commit`. */
  advanced: { from: string | null; to: string } | null;
  problem: SourceProblem | null;
  /** A line to say now: a refusal (in `apply`, once per distinct problem), or that one is over. */
  notice: string | null;
}

interface Where {
  settings: SourceSettings;
  stateDir: string;
  ctx: HostContext;
  runner: Runner;
}

export function short(commit: string): string {
  return commit.slice(0, 12);
}

async function isDir(path: string): Promise<boolean> {
  return stat(path).then(
    (s) => s.isDirectory(),
    () => false,
  );
}

/** The fleet of the checkout's files (the desired-state cache answers when they did not change). */
async function checkoutFleet(w: Where, dir: string): Promise<LoadedDesired> {
  const loaded = await loadDesiredCached([join(dir, w.settings.path)], w.ctx, w.stateDir);
  const nested = nestedSource(loaded.desired);
  if (nested !== null) throw new ManifestError([nested]);
  return loaded;
}

/** A commit's fleet, read from git; a bad one is a ManifestError (used where there is no older one to keep). */
async function committedFleet(w: Where, git: SourceGit, commit: string): Promise<DesiredFleet> {
  const c = await commitFleet(git, commit, w.settings, w.ctx);
  if (c.desired === null) throw new ManifestError(c.diagnostics);
  return c.desired;
}

/** Fetch the branch: the fetched commit, or the problem (a remote that cannot be reached, a branch gone). */
async function fetchCommit(
  git: SourceGit,
  s: SourceSettings,
): Promise<{ commit: string; problem: null } | { commit: null; problem: SourceProblem }> {
  let why: string;
  try {
    const r = await git.fetch(s.url, s.ref);
    why = r.exitCode === 0 ? '' : firstLine(r) || `git fetch failed with exit code ${r.exitCode}`;
  } catch (error) {
    why = error instanceof Error ? (error.message.split('\n')[0] ?? '') : String(error);
  }
  if (why === '') {
    const commit = await git.commit(fetchedRef(s.ref));
    if (commit !== null) return { commit, problem: null };
    why = `no commit at ${fetchedRef(s.ref)} after the fetch`;
  }
  if (/couldn't find remote ref/i.test(why))
    return { commit: null, problem: { key: 'missing-ref', line: `branch ${s.ref} not found in ${s.url}` } };
  return { commit: null, problem: { key: 'unreachable', line: `cannot fetch ${s.url}: ${why}` } };
}

function diagnosticsLine(diagnostics: readonly Diagnostic[], dir: string): string {
  const first = diagnostics[0];
  const shown = first === undefined ? 'invalid' : formatDiagnostic(first).replace(`${dir}/`, '');
  return diagnostics.length > 1 ? `${shown} (and ${diagnostics.length - 1} more)` : shown;
}

/** What the fetched commit is to this checkout: a commit to move to, or a refusal (null, null: nothing new). */
async function judgeFetched(
  w: Where,
  git: SourceGit,
  head: string,
  fetched: string,
  switched: boolean,
): Promise<{ target: string | null; fleet: DesiredFleet | null; problem: SourceProblem | null }> {
  if (fetched === head) return { target: null, fleet: null, problem: null };
  // Another repository or branch than the checkout's is a new start (the operator changed it), not a rewrite.
  if (!switched && !(await git.isAncestor(head, fetched)))
    return {
      target: null,
      fleet: null,
      problem: {
        key: `non-fast-forward:${fetched}`,
        line: `branch ${w.settings.ref} of ${w.settings.url} is at ${short(fetched)}, which does not contain ${short(head)} (its history was rewritten: a force-push?): refused`,
      },
    };
  const c = await commitFleet(git, fetched, w.settings, w.ctx);
  if (c.desired === null)
    return {
      target: null,
      fleet: null,
      problem: {
        key: `invalid:${fetched}`,
        line: `commit ${short(fetched)} of ${w.settings.ref} has invalid manifests: ${diagnosticsLine(c.diagnostics, git.dir)}; refused`,
      },
    };
  return { target: fetched, fleet: c.desired, problem: null };
}

/** What to say about this run in `apply`: a problem not said yet, or that the last one said is over. */
function noticeOf(problem: SourceProblem | null, said: string | null, commit: string): string | null {
  if (problem !== null)
    return problem.key === said ? null : `git source: ${problem.line}; keeping ${short(commit)}`;
  return said === null ? null : `git source: nothing refused any more; at ${short(commit)}`;
}

/** The refusal of a checkout with local changes (its first few files named), or null when it is clean. */
function dirtProblem(dir: string, dirt: readonly string[]): SourceProblem | null {
  if (dirt.length === 0) return null;
  const files = dirt.slice(0, 3).map((l) => l.trim());
  if (dirt.length > 3) files.push('...');
  return {
    key: 'dirty',
    line: `the checkout ${dir} has local changes (${files.join(', ')}): refused, read as committed`,
  };
}

/** Remember (in `apply`) what the checkout now follows, its commit and the problem said; only when it changed. */
async function remember(
  w: Where,
  before: SourceState | null,
  commit: string,
  problem: SourceProblem | null,
): Promise<void> {
  // Another repository or branch is adopted only once it was fetched without a problem.
  const follows = problem === null || before === null ? w.settings : before;
  const next: SourceState = {
    format_version: 1,
    url: follows.url,
    ref: follows.ref,
    commit,
    problem: problem?.key ?? null,
  };
  if (JSON.stringify(next) !== JSON.stringify(before)) await writeSourceState(w.stateDir, next);
}

/**
 * A host with a checkout: fetch, judge, move (in `apply`), load. Never throws for a refusal (that is the run's
 * `problem`); throws for a checkout git cannot read, or manifests that were never good (a changed `path:`).
 */
async function followCheckout(w: Where, mode: 'apply' | 'dry-run', dir: string): Promise<SourceRun> {
  const git = new SourceGit(w.runner, dir);
  const head = await git.commit('HEAD');
  if (head === null)
    throw new UserError(
      `git source: the checkout ${dir} has no commit; remove it, and the next run fetches afresh`,
    );
  const state = await readSourceState(w.stateDir);
  const switched = state !== null && (state.url !== w.settings.url || state.ref !== w.settings.ref);
  const fetched = await fetchCommit(git, w.settings);
  // A branch just named (a changed `ref:` or `git:`) that does not exist is a typo, bad input like a bad manifest;
  // the branch followed so far being deleted is a refusal (the last good state kept).
  if (switched && fetched.problem?.key === 'missing-ref')
    throw new UserError(`${originText(w.settings.origin)}: git source: ${fetched.problem.line}`);
  const judged =
    fetched.commit === null
      ? { target: null, fleet: null, problem: fetched.problem }
      : await judgeFetched(w, git, head, fetched.commit, switched);
  const dirty = dirtProblem(dir, await git.dirt());
  const problem = judged.problem ?? dirty;
  const target = dirty === null ? judged.target : null;
  let loaded: LoadedDesired | null = null;
  let desired: DesiredFleet;
  if (target !== null && mode === 'apply') await git.checkout(target);
  if (target !== null && mode === 'dry-run' && judged.fleet !== null) desired = judged.fleet;
  else if (dirty !== null) desired = await committedFleet(w, git, head);
  else {
    loaded = await checkoutFleet(w, dir);
    desired = loaded.desired;
  }
  const commit = target ?? head;
  if (mode === 'apply') await remember(w, state, commit, problem);
  const said = mode === 'apply' ? (state?.problem ?? null) : null;
  return {
    settings: w.settings,
    desired,
    loaded,
    commit,
    advanced: target === null ? null : { from: head, to: target },
    problem,
    // A dry run remembers nothing, so it says a refusal every time.
    notice: mode === 'apply' ? noticeOf(problem, said, commit) : noticeOf(problem, null, commit),
  };
}

/**
 * No checkout yet: fetch into a new one (`apply`: made beside the final place, renamed into it once good; a dry
 * run: a temp dir, removed). A first fetch that fails, or a first commit that is invalid, is bad input: there is
 * no good state to keep. One line naming where the source is set; nothing is left behind.
 */
async function firstCheckout(w: Where, mode: 'apply' | 'dry-run', dir: string): Promise<SourceRun> {
  const work =
    mode === 'apply' ? `${dir}.new` : join(await mkdtemp(join(tmpdir(), 'fleet-source-')), 'source');
  await rm(work, { recursive: true, force: true });
  // Messages and the plan name the files where they will be: the final checkout.
  const git = new SourceGit(w.runner, work);
  try {
    const init = await git.init();
    if (init.exitCode !== 0) throw new UserError(`git source: cannot make ${work}: ${firstLine(init)}`);
    const fetched = await fetchCommit(git, w.settings);
    if (fetched.commit === null)
      throw new UserError(`${originText(w.settings.origin)}: git source: ${fetched.problem.line}`);
    const c = await commitFleet(git, fetched.commit, w.settings, w.ctx);
    if (c.desired === null)
      throw new ManifestError(c.diagnostics.map((d) => ({ ...d, file: d.file.replace(work, dir) })));
    if (mode === 'dry-run')
      return {
        settings: w.settings,
        desired: c.desired,
        loaded: null,
        commit: fetched.commit,
        advanced: { from: null, to: fetched.commit },
        problem: null,
        notice: null,
      };
    await git.checkout(fetched.commit);
    await rename(work, dir);
    await writeSourceState(w.stateDir, {
      format_version: 1,
      url: w.settings.url,
      ref: w.settings.ref,
      commit: fetched.commit,
      problem: null,
    });
    const loaded = await checkoutFleet(w, dir);
    return {
      settings: w.settings,
      desired: loaded.desired,
      loaded,
      commit: fetched.commit,
      advanced: { from: null, to: fetched.commit },
      problem: null,
      notice: null,
    };
  } finally {
    await rm(mode === 'apply' ? work : join(work, '..'), { recursive: true, force: true });
  }
}

/** `read`: the checkout as it is, no fetch; with local changes, its commit as committed. */
async function readCheckout(w: Where, dir: string): Promise<SourceRun> {
  const git = new SourceGit(w.runner, dir);
  const state = await readSourceState(w.stateDir);
  const dirty = (await git.dirt()).length > 0;
  const head = dirty || state === null ? await git.commit('HEAD') : state.commit;
  if (head === null) throw new UserError(`git source: the checkout ${dir} has no commit`);
  const loaded = dirty ? null : await checkoutFleet(w, dir);
  const desired = loaded?.desired ?? (await committedFleet(w, git, head));
  return { settings: w.settings, desired, loaded, commit: head, advanced: null, problem: null, notice: null };
}

/** The git source's step before planning (see the top of this file). */
export async function followSource(
  settings: SourceSettings,
  stateDir: string,
  ctx: HostContext,
  runner: Runner,
  mode: SourceMode,
): Promise<SourceRun> {
  const w: Where = { settings, stateDir, ctx, runner };
  const dir = checkoutDir(stateDir);
  const exists = await isDir(join(dir, '.git'));
  if (mode === 'read') {
    if (!exists)
      throw new UserError(
        `${originText(settings.origin)}: git source ${settings.url} not fetched on this host yet: run fleet reconcile`,
      );
    return readCheckout(w, dir);
  }
  return exists ? followCheckout(w, mode, dir) : firstCheckout(w, mode, dir);
}

/**
 * The fleet of one commit the checkout has (fetched by `fleet plan`, say), read from git without moving the
 * checkout: what `fleet apply FILE` plans again from, so a saved plan is checked against the commit it was made
 * from. Bad input when the checkout lacks that commit.
 */
export async function fleetAtCommit(
  settings: SourceSettings,
  stateDir: string,
  ctx: HostContext,
  runner: Runner,
  commit: string,
): Promise<DesiredFleet> {
  const dir = checkoutDir(stateDir);
  const git = new SourceGit(runner, dir);
  if (!(await isDir(join(dir, '.git'))) || (await git.commit(commit)) === null)
    throw new UserError(
      `git source: this host's checkout does not have commit ${short(commit)}; run fleet reconcile, then plan again`,
    );
  return committedFleet({ settings, stateDir, ctx, runner }, git, commit);
}
