/**
 * `fleet validate [PATH...]`: schema + semantic checks of the manifests as ONE fleet (duplicates across the given
 * paths are errors). Valid: one `FILE: ok (N agents)` line per file on stdout, exit 0. Invalid: every diagnostic
 * as `FILE:LINE:COL: message` on stderr, exit 1. Changes nothing anywhere.
 */
import type { GlobalOptions } from '../options.js';
import { ManifestError, formatDiagnostic } from '../errors.js';
import { agentsPerManifest } from '../engine/validate.js';
import { resolvePaths } from '../paths.js';

export async function validateCommand(paths: string[], g: GlobalOptions): Promise<number> {
  const fleetPaths = resolvePaths(g);
  const inputs = paths.length > 0 ? paths : [fleetPaths.manifests];
  try {
    const counts = await agentsPerManifest(inputs, fleetPaths);
    for (const [file, n] of counts)
      process.stdout.write(`${file}: ok (${n} ${n === 1 ? 'agent' : 'agents'})\n`);
    return 0;
  } catch (error) {
    if (!(error instanceof ManifestError)) throw error;
    // A terminal gets the line and a caret under the spot; pipes and CI logs get exactly FILE:LINE:COL: message.
    const excerpts = process.stderr.isTTY === true;
    for (const d of error.diagnostics) {
      process.stderr.write(`${formatDiagnostic(d)}\n`);
      if (excerpts && d.excerpt !== undefined) process.stderr.write(`${indent(d.excerpt)}\n`);
    }
    const files = new Set(error.diagnostics.map((d) => d.file)).size;
    process.stderr.write(
      `fleet validate: ${error.diagnostics.length} ${error.diagnostics.length === 1 ? 'problem' : 'problems'} in ${files} ${files === 1 ? 'file' : 'files'}\n`,
    );
    return 1;
  }
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((l) => `    ${l}`)
    .join('\n');
}
