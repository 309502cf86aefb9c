/**
 * Typed errors. Commands throw these; only `main` turns them into an exit code and a message.
 * A user error prints one line (or a list of diagnostics) and never a stack trace.
 */

/**
 * Leave now with `code`, without waiting for work in flight (watch mode's second signal: the operator insists).
 * Already said: main prints nothing and ends the process.
 */
export class ExitNow extends Error {
  override name = 'ExitNow';
  constructor(readonly code: number) {
    super(`exit ${code}`);
  }
}

/** A problem at a place in a manifest: `FILE:LINE:COL: message`. */
export interface Diagnostic {
  file: string;
  line: number;
  col: number;
  message: string;
  /** Optional source excerpt with a caret under the spot (eemeli/yaml prettifyError style). */
  excerpt?: string;
}

export function formatDiagnostic(d: Diagnostic): string {
  return `${d.file}:${d.line}:${d.col}: ${d.message}`;
}

/** The operator can fix this (bad manifest, bad flag, missing tool); exit with `code` and print `message`. */
export class UserError extends Error {
  override name = 'UserError';
  constructor(
    message: string,
    readonly code = 1,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Manifests are invalid: every diagnostic is reported, exit 1. */
export class ManifestError extends UserError {
  override name = 'ManifestError';
  constructor(readonly diagnostics: Diagnostic[]) {
    super(diagnostics.map(formatDiagnostic).join('\n'));
  }
}

/** An external command failed or could not start (execa-style message, stderr attached, original error as cause). */
export class CommandError extends UserError {
  override name = 'CommandError';
  constructor(
    message: string,
    readonly command: readonly string[],
    readonly exitCode: number | undefined,
    readonly stderr: string,
    options?: { cause?: unknown },
  ) {
    super(message, 1, options);
  }
}

/** What each errno a write can meet from the disk itself means, in the operator's words. */
const STORAGE_ERRNOS: Readonly<Record<string, string>> = {
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
  EROFS: 'read-only file system',
};

/**
 * The disk refused a write: full, over quota, or read-only. Not a bug, and not the manifests' fault: one line
 * naming the file and the errno, exit 1. The writer removed its temp file; nothing was left half-written.
 */
export class StorageError extends UserError {
  override name = 'StorageError';
  constructor(
    readonly path: string,
    readonly errno: string,
    options?: { cause?: unknown },
  ) {
    super(
      `cannot write ${path}: ${errno} (${STORAGE_ERRNOS[errno] ?? 'refused by the file system'}); ` +
        'free space (or make it writable) and run again',
      1,
      options,
    );
  }
}

/**
 * The one translation of a failed write: ENOSPC, EDQUOT and EROFS become a StorageError naming `path` (the file
 * the operator knows, not a temp name); anything else, and an error already translated, is returned as it is.
 * Writers call it in their catch: `throw storageError(error, path)`.
 */
export function storageError(error: unknown, path: string): unknown {
  if (error instanceof UserError) return error;
  const code = (error as NodeJS.ErrnoException | null)?.code;
  return code !== undefined && code in STORAGE_ERRNOS
    ? new StorageError(path, code, { cause: error })
    : error;
}

/** Something that should never happen: a bug in the reconciler. Printed with its stack. */
export class InternalError extends Error {
  override name = 'InternalError';
}

/** Exhaustiveness check for switches over discriminated unions. */
export function assertNever(x: never, what = 'value'): never {
  throw new InternalError(`unexpected ${what}: ${JSON.stringify(x)}`);
}
