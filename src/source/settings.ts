/**
 * Where a host's git source is set: `--source URL[#BRANCH]` (which sets `$MOSAIC_SOURCE` for the whole run, as
 * `--host-name` sets `$MOSAIC_HOST`), `$MOSAIC_SOURCE` itself (e.g. in the user manager's environment, for the
 * timer and watch units), or a manifest's `source:` (docs/hosts.md, "The git source"). The flag wins.
 */
import { UserError } from '../errors.js';
import { DEFAULT_SOURCE_REF } from '../manifest/normalize.js';
import { badRef, urlProblem } from '../manifest/semantic-source.js';
import type { SourceRef, SourceSettings } from '../model/desired.js';

/** The origin of a source given by the flag or the variable: named so in every message. */
export const FLAG_ORIGIN = '--source ($MOSAIC_SOURCE)';

/** `$MOSAIC_SOURCE` as source settings; null when unset. Bad input is one line, exit 1. */
export function sourceFromEnv(env: NodeJS.ProcessEnv = process.env): SourceSettings | null {
  const spec = env.MOSAIC_SOURCE;
  if (spec === undefined || spec.trim() === '') return null;
  const hash = spec.lastIndexOf('#');
  const url = hash < 0 ? spec : spec.slice(0, hash);
  const ref = hash < 0 ? DEFAULT_SOURCE_REF : spec.slice(hash + 1);
  if (url === '' || url.startsWith('-') || /\s/.test(url))
    throw new UserError(`${FLAG_ORIGIN}: ${JSON.stringify(url)} is not a repository URL`);
  const urlWhy = urlProblem(url);
  if (urlWhy !== null) throw new UserError(`${FLAG_ORIGIN}: the URL ${urlWhy}`);
  const refWhy = badRef(ref);
  if (refWhy !== null) throw new UserError(`${FLAG_ORIGIN}: branch ${JSON.stringify(ref)} ${refWhy}`);
  return { url, ref, path: '', origin: { file: FLAG_ORIGIN, line: 0, col: 0 } };
}

/** Where a source was set, to start a message: `FILE:LINE:COL` of its `source:` key, or the flag. */
export function originText(origin: SourceRef): string {
  return origin.line === 0 ? origin.file : `${origin.file}:${origin.line}:${origin.col}`;
}
