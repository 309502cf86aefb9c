/**
 * The fleet a run converges to: the host's manifests, or, when they (or `--source` / `$MOSAIC_SOURCE`) name a git
 * source, the manifests of the repository's branch, fetched and fast-forwarded first (src/source/follow.ts,
 * docs/hosts.md "The git source"). The commit converged goes into the session, so the journal and the register's
 * lease carry it; a move of the checkout is journaled as an entry of its own.
 */
import type { JournalAction } from '../apply/journal.js';
import type { Runner } from '../exec.js';
import { loadDesiredCached, type LoadedDesired } from '../manifest/cache.js';
import type { DesiredFleet, SourceSettings } from '../model/desired.js';
import { hostContext, type FleetPaths } from '../paths.js';
import { followSource, short, type SourceMode, type SourceRun } from '../source/follow.js';
import { sourceFromEnv } from '../source/settings.js';

export type { SourceRun } from '../source/follow.js';
import { writeJournal } from './journal-write.js';

/** The commit a session converges to, as the journal and the register carry it. */
export interface SourceCommit {
  url: string;
  ref: string;
  commit: string;
}

/** The host's own manifests: the fleet itself, or (with a git source) only where to fetch it from. */
export type LocalFleet =
  { kind: 'fleet'; loaded: LoadedDesired } | { kind: 'source'; settings: SourceSettings };

export interface RunFleet {
  /** For the desired-state cache (src/manifest/cache.ts): the fleet as loaded, key null when not cacheable. */
  loaded: LoadedDesired;
  desired: DesiredFleet;
  /** The git source's step, when there is one. */
  source: SourceRun | null;
}

/** The flag or variable first (the manifests are then not read), else the host's manifests. */
export async function localFleet(paths: FleetPaths): Promise<LocalFleet> {
  const flag = sourceFromEnv();
  if (flag !== null) return { kind: 'source', settings: flag };
  const loaded = await loadDesiredCached([paths.manifests], hostContext(paths), paths.stateDir);
  const settings = loaded.desired.source;
  return settings === undefined ? { kind: 'fleet', loaded } : { kind: 'source', settings };
}

/** The fleet of this run; with a git source, after its step in `mode` (`apply` only under the lock). */
export async function fleetForRun(
  local: LocalFleet,
  paths: FleetPaths,
  runner: Runner,
  mode: SourceMode,
): Promise<RunFleet> {
  if (local.kind === 'fleet') return { loaded: local.loaded, desired: local.loaded.desired, source: null };
  const source = await followSource(local.settings, paths.stateDir, hostContext(paths), runner, mode);
  return {
    loaded: source.loaded ?? { desired: source.desired, key: null, hit: false },
    desired: source.desired,
    source,
  };
}

export function sourceCommit(run: SourceRun | null): SourceCommit | undefined {
  return run === null ? undefined : { url: run.settings.url, ref: run.settings.ref, commit: run.commit };
}

/** One line for a move of the checkout: `fast-forwarded main to 1a2b… (from 9f8e…)`. */
export function advanceText(run: SourceRun, dryRun = false): string | null {
  const a = run.advanced;
  if (a === null) return null;
  const verb = dryRun ? 'would fast-forward' : 'fast-forwarded';
  return a.from === null
    ? `git source: ${dryRun ? 'would check out' : 'checked out'} ${run.settings.ref} of ${run.settings.url} at ${short(a.to)}`
    : `git source: ${verb} ${run.settings.ref} to ${short(a.to)} (from ${short(a.from)})`;
}

/** The journal entry of a move of the checkout (apply), so `fleet history` shows which commit came when. */
export async function journalAdvance(paths: FleetPaths, command: string, run: SourceRun): Promise<void> {
  const text = advanceText(run);
  if (text === null) return;
  const action: JournalAction = {
    kind: 'source',
    target: `${run.settings.url}#${run.settings.ref}`,
    message: text.replace(/^git source: /, 'manifests '),
    reason: run.advanced?.from === null ? 'first fetch of the git source' : 'the branch moved on the remote',
    outcome: 'done',
  };
  await writeJournal(paths, command, new Date(), [action], { source: sourceCommit(run) });
}
