/**
 * Manifest files -> DesiredFleet, or a ManifestError carrying every diagnostic of every file.
 *
 *   expandInputs -> read -> parseManifestText (YAML) -> schemaDiagnostics -> semanticDiagnostics -> normalizeFleet
 *
 * All stages run on all files before anything is reported, so one run shows every problem.
 */
import { readFile, stat } from '../fs-async.js';
import { ManifestError, type Diagnostic } from '../errors.js';
import type { DesiredFleet, HostContext } from '../model/desired.js';
import { expandInputs } from './files.js';
import { normalizeFleet, type ManifestInput } from './normalize.js';
import { locate, MANIFEST_LIMITS, parseManifestText, tooLarge, type ParsedManifest } from './parse.js';
import { schemaDiagnostics } from './schema.js';
import { semanticDiagnostics } from './semantic.js';
import type { RawRoster } from './types.js';

export interface CheckedManifests {
  /** Every manifest read, in load order (including broken ones). */
  manifests: ParsedManifest[];
  /** Sorted by file, line, column. Empty = valid. */
  diagnostics: Diagnostic[];
}

/** Problems shown per file: past this, the rest of a broken file is noise (and thousands of lines of it). */
export const MAX_DIAGNOSTICS_PER_FILE = 50;

export function sortDiagnostics(diagnostics: Diagnostic[]): Diagnostic[] {
  return diagnostics.sort(
    (a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0) || a.line - b.line || a.col - b.col,
  );
}

/** Sorted diagnostics, at most MAX_DIAGNOSTICS_PER_FILE per file, then one line saying how many more. */
export function capDiagnostics(diagnostics: readonly Diagnostic[]): Diagnostic[] {
  const out: Diagnostic[] = [];
  for (let i = 0; i < diagnostics.length;) {
    const file = diagnostics[i]?.file;
    let j = i;
    while (j < diagnostics.length && diagnostics[j]?.file === file) j++;
    const shown = diagnostics.slice(i, Math.min(j, i + MAX_DIAGNOSTICS_PER_FILE));
    out.push(...shown);
    const next = diagnostics[i + MAX_DIAGNOSTICS_PER_FILE];
    if (j - i > MAX_DIAGNOSTICS_PER_FILE && next !== undefined)
      out.push({
        file: next.file,
        line: next.line,
        col: next.col,
        message: `and ${j - i - MAX_DIAGNOSTICS_PER_FILE} more problems in this file (only the first ${MAX_DIAGNOSTICS_PER_FILE} are shown)`,
      });
    i = j;
  }
  return out;
}

/** Schema + semantic checks over manifests already parsed (one fleet). Pure apart from the cached schema. */
export function checkParsed(manifests: ParsedManifest[]): CheckedManifests {
  const diagnostics: Diagnostic[] = [];
  for (const m of manifests) {
    diagnostics.push(...m.diagnostics);
    if (m.data !== undefined) diagnostics.push(...schemaDiagnostics(m));
  }
  diagnostics.push(...semanticDiagnostics(manifests));
  return { manifests, diagnostics: sortDiagnostics(diagnostics) };
}

/** Read and check everything the inputs name. Never throws for a manifest problem; see `diagnostics`. */
export async function checkManifests(inputs: readonly string[]): Promise<CheckedManifests> {
  const { files, diagnostics: fileProblems } = await expandInputs(inputs);
  const manifests: ParsedManifest[] = [];
  for (const file of files) {
    let text: string;
    try {
      // A file far past the size limit (a log named x.yaml, /dev/zero behind a link) is not read at all.
      const size = (await stat(file)).size;
      if (size > MANIFEST_LIMITS.maxBytes) {
        fileProblems.push({ file, line: 1, col: 1, message: tooLarge(size) });
        continue;
      }
      text = await readFile(file, 'utf8');
    } catch (error) {
      fileProblems.push({
        file,
        line: 1,
        col: 1,
        message: `cannot read: ${error instanceof Error ? error.message : String(error)}`,
      });
      continue;
    }
    manifests.push(parseManifestText(file, text));
  }
  const checked = checkParsed(manifests);
  return {
    manifests,
    diagnostics: capDiagnostics(sortDiagnostics([...fileProblems, ...checked.diagnostics])),
  };
}

/** Valid parsed manifests -> the normalizer's input (positions of agents attached). */
export function toManifestInputs(manifests: readonly ParsedManifest[]): ManifestInput[] {
  return manifests.map((m) => {
    const roster = m.data as RawRoster;
    return {
      file: m.file,
      roster,
      agentRefs: (roster.agents ?? []).map((_a, i) => locate(m, ['agents', i])),
      ...(roster.source !== undefined ? { sourceRef: locate(m, ['source'], 'key') } : {}),
    };
  });
}

/**
 * The desired fleet the inputs (files and/or directories, all one fleet) describe.
 * Throws ManifestError with every diagnostic when anything is wrong.
 */
export async function loadDesired(inputs: string[], ctx: HostContext): Promise<DesiredFleet> {
  const { manifests, diagnostics } = await checkManifests(inputs);
  if (diagnostics.length > 0) throw new ManifestError(diagnostics);
  return normalizeFleet(toManifestInputs(manifests), ctx);
}

/**
 * The desired fleet of manifest texts read from elsewhere than files (a commit's manifests, read from git by the
 * git source, src/source/): the same checks as files, every diagnostic collected. `desired` only when valid.
 */
export function loadDesiredFromTexts(
  files: readonly { file: string; text: string }[],
  ctx: HostContext,
): { desired: DesiredFleet | null; diagnostics: Diagnostic[] } {
  const manifests = files.map((f) => parseManifestText(f.file, f.text));
  const { diagnostics } = checkParsed(manifests);
  if (diagnostics.length > 0) return { desired: null, diagnostics: capDiagnostics(diagnostics) };
  return { desired: normalizeFleet(toManifestInputs(manifests), ctx), diagnostics: [] };
}
