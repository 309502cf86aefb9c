/**
 * Which files the operator's inputs name: a file as is, or a directory's `*.yaml`/`*.yml` (directly in it,
 * sorted). Problems are diagnostics at `PATH:1:1`, never exceptions, so they join the rest of the report.
 */
import { readdir, stat } from '../fs-async.js';
import { join, resolve } from 'node:path';
import type { Diagnostic } from '../errors.js';

export interface ExpandedInputs {
  /** Manifest files, each spelled as the operator would recognise it (input path, or input dir + name). */
  files: string[];
  diagnostics: Diagnostic[];
}

const MANIFEST_NAME = /\.ya?ml$/;

function problem(file: string, message: string): Diagnostic {
  return { file, line: 1, col: 1, message };
}

function reason(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT') return 'no such file or directory';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'ENOTDIR') return 'not a directory';
  return error instanceof Error ? error.message : String(error);
}

export async function expandInputs(inputs: readonly string[]): Promise<ExpandedInputs> {
  const files: string[] = [];
  const diagnostics: Diagnostic[] = [];
  // The same file named twice (a dir and a file in it) is one manifest, not a fleet of duplicates.
  const seen = new Set<string>();
  const add = (file: string): void => {
    const key = resolve(file);
    if (seen.has(key)) return;
    seen.add(key);
    files.push(file);
  };

  for (const input of inputs) {
    let info;
    try {
      info = await stat(input);
    } catch (error) {
      diagnostics.push(problem(input, `cannot read manifests: ${reason(error)}`));
      continue;
    }
    if (info.isFile()) {
      add(input);
      continue;
    }
    if (!info.isDirectory()) {
      diagnostics.push(problem(input, 'not a file or directory'));
      continue;
    }
    let names: string[];
    try {
      names = await readdir(input);
    } catch (error) {
      diagnostics.push(problem(input, `cannot list manifests: ${reason(error)}`));
      continue;
    }
    // Dot files are editors' lock and backup files (`.#roster.yaml`), never the operator's manifests.
    const candidates = names.filter((n) => MANIFEST_NAME.test(n) && !n.startsWith('.')).sort();
    let found = 0;
    for (const name of candidates) {
      const file = join(input, name);
      // A subdirectory called x.yaml is not a manifest; a symlink to a file is.
      const isFile = await stat(file).then(
        (s) => s.isFile(),
        () => false,
      );
      if (!isFile) continue;
      add(file);
      found++;
    }
    if (found === 0) diagnostics.push(problem(input, 'no manifests (*.yaml, *.yml) in this directory'));
  }
  return { files, diagnostics };
}
