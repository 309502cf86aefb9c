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

/** Something that should never happen: a bug in the reconciler. Printed with its stack. */
export class InternalError extends Error {
  override name = 'InternalError';
}

/** Exhaustiveness check for switches over discriminated unions. */
export function assertNever(x: never, what = 'value'): never {
  throw new InternalError(`unexpected ${what}: ${JSON.stringify(x)}`);
}
