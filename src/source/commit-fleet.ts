/**
 * The desired fleet of one commit of the git source, read from git's objects rather than from the checkout's
 * files: so a fetched commit is checked before the checkout moves to it (a commit with a broken manifest is
 * refused, and the checkout keeps the last good one), a dry run plans from the fetched commit without moving
 * anything, and a checkout with local changes still converges to what is committed. File names are those the
 * files have (or will have) in the checkout, so messages and the plan name the same files either way.
 */
import { join } from 'node:path';
import type { Diagnostic } from '../errors.js';
import { loadDesiredFromTexts } from '../manifest/load.js';
import type { DesiredFleet, HostContext, SourceSettings } from '../model/desired.js';
import type { SourceGit } from './git.js';

const MANIFEST_NAME = /\.ya?ml$/;

export interface CommitFleet {
  desired: DesiredFleet | null;
  diagnostics: Diagnostic[];
}

/** The diagnostic of a repository manifest that sets `source:` itself (a host follows one repository). */
export function nestedSource(desired: DesiredFleet): Diagnostic | null {
  const at = desired.source?.origin;
  return at === undefined
    ? null
    : { ...at, message: 'a manifest of the git source cannot set source: itself (only the host does)' };
}

export async function commitFleet(
  git: SourceGit,
  commit: string,
  settings: SourceSettings,
  ctx: HostContext,
): Promise<CommitFleet> {
  const dir = join(git.dir, settings.path);
  const problem = (message: string): CommitFleet => ({
    desired: null,
    diagnostics: [{ file: dir, line: 1, col: 1, message }],
  });
  const entries = await git.listDir(commit, settings.path);
  if (entries === null) return problem(`not a directory of commit ${commit.slice(0, 12)}`);
  // As for a directory of files (src/manifest/files.ts): its *.yaml and *.yml, not dot files, sorted.
  const blobs = entries
    .filter((e) => e.type === 'blob' && e.mode !== '120000' && MANIFEST_NAME.test(e.name))
    .filter((e) => !e.name.startsWith('.'))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  if (blobs.length === 0)
    return problem(`no manifests (*.yaml, *.yml) in this directory of commit ${commit.slice(0, 12)}`);
  const texts = await git.blobs(blobs.map((b) => b.oid));
  const loaded = loadDesiredFromTexts(
    blobs.map((b) => ({ file: join(dir, b.name), text: texts.get(b.oid) ?? '' })),
    ctx,
  );
  const nested = loaded.desired === null ? null : nestedSource(loaded.desired);
  return nested === null ? loaded : { desired: null, diagnostics: [nested] };
}
