/**
 * The rules of `source:` (the git source, docs/hosts.md) the schema cannot say: no credentials in the URL, a
 * branch name git takes, a path inside the repository, and the shape of a host that follows a repository: the
 * manifest that sets `source:` holds nothing else, and no other manifest is loaded beside it (the desired state is
 * the repository's, all of it). Pure.
 */
import type { SourceRef } from '../model/desired.js';
import type { ParsedManifest } from './parse.js';
import { diagnosticAt } from './parse.js';
import { Collector, fmtRef, isRec, type Rec } from './semantic-checks.js';
import type { Diagnostic } from '../errors.js';

/** `scheme://user:password@` anywhere, or any user in an http(s) URL (a token is a password). */
const PASSWORD_IN_URL = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/@]*:[^/@]*@/;
const USER_IN_HTTP_URL = /^https?:\/\/[^/@]+@/i;

/** Why a source URL is refused (credentials in it), or null. Also for `--source` (src/source/settings.ts). */
export function urlProblem(url: string): string | null {
  return PASSWORD_IN_URL.test(url) || USER_IN_HTTP_URL.test(url)
    ? 'holds credentials; never put them in a manifest: use a credential helper or an SSH key'
    : null;
}

/** What git's check-ref-format refuses in a branch name (the schema's characters aside), or null. */
export function badRef(ref: string): string | null {
  if (!/^[A-Za-z0-9_][A-Za-z0-9._/-]*$/.test(ref)) return 'is not a branch name';
  if (ref.includes('..')) return 'must not contain ".."';
  if (ref.endsWith('/') || ref.endsWith('.') || ref.endsWith('.lock'))
    return 'must not end with "/", "." or ".lock"';
  if (ref.includes('//') || ref.split('/').some((part) => part.startsWith('.')))
    return 'must not have an empty part or one starting with "."';
  return null;
}

/** The checks of one manifest's `source:` block (already known to be an object). */
function checkBlock(c: Collector, source: Rec): void {
  const url = source.git;
  const why = typeof url === 'string' ? urlProblem(url) : null;
  if (why !== null) c.at(['source', 'git'], `source.git ${why}`);
  const ref = source.ref;
  const refWhy = typeof ref === 'string' && /^[A-Za-z0-9_][A-Za-z0-9._/-]*$/.test(ref) ? badRef(ref) : null;
  if (refWhy !== null) c.at(['source', 'ref'], `source.ref ${JSON.stringify(ref)} ${refWhy}`);
  const path = source.path;
  if (typeof path === 'string' && path.split('/').includes('..'))
    c.at(['source', 'path'], `source.path ${JSON.stringify(path)} must stay inside the repository (no "..")`);
}

/**
 * Every `source:` rule over one load of manifests: a manifest with `source:` holds only `version:` and
 * `source:`; no other manifest is loaded with it (its content belongs in the repository). Two `source:` blocks
 * are the fleet-wide rule's (semantic.ts), not repeated here.
 */
export function sourceDiagnostics(manifests: readonly ParsedManifest[]): Diagnostic[] {
  const out: Diagnostic[] = [];
  let first: SourceRef | null = null;
  const others: { c: Collector; key: string }[] = [];
  for (const parsed of manifests) {
    if (parsed.data === undefined || !isRec(parsed.data)) continue;
    const data = parsed.data;
    const c = new Collector(parsed);
    const keys = Object.keys(data).filter((k) => k !== 'version' && k !== 'source');
    if (isRec(data.source)) {
      first ??= c.ref(['source'], 'key');
      checkBlock(c, data.source);
      for (const key of keys)
        c.at(
          [key],
          `a manifest with source: holds only version: and source:; ${key}: belongs in the repository`,
          'key',
        );
    } else if (keys.length > 0) {
      others.push({ c, key: keys[0] ?? 'version' });
    }
    out.push(...c.diagnostics);
  }
  if (first !== null) {
    for (const { c, key } of others)
      out.push(
        diagnosticAt(
          c.parsed,
          c.ref([key], 'key'),
          `the manifests come from the git source set at ${fmtRef(first)}: move this file into the repository, or remove it here`,
        ),
      );
  }
  return out;
}
