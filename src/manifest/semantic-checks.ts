/**
 * The checks every manifest rule is made of: names safe for systemd, tmux and files; values with no character
 * that would break a unit file, an env file or a shell; where a problem is (the collector). Pure.
 */
import type { Diagnostic } from '../errors.js';
import type { SourceRef } from '../model/desired.js';
import { diagnosticAt, displayPath, locate, type ParsedManifest, type PathSegment } from './parse.js';
/** Agent and runtime names become unit instances (`mosaic-agent@NAME.service`), file names and tmux sessions. */
export const SAFE_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/;
/** The holder session's default is `_holder`, so it may also start with `_` (never with `-`: option injection). */
export const SAFE_HOLDER = /^[A-Za-z0-9_][A-Za-z0-9_-]{0,62}$/;
/** `tmux -L NAME` creates `$TMUX_TMPDIR/tmux-UID/NAME`; '' = the default socket. */
export const SAFE_SOCKET = /^[A-Za-z0-9_-]{0,64}$/;
/** Characters that would change meaning in a unit file, an env file or a shell command line. */
const SHELL_META = /[`$;|&<>()\\"'*?]/;
/** C0/C1 controls (newline, CR, NUL, tab, ...), DEL, and the Unicode line/paragraph separators. */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
export const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

export type Rec = Record<string, unknown>;

export function isRec(x: unknown): x is Rec {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function str(x: unknown): string | undefined {
  return typeof x === 'string' ? x : undefined;
}

export function fmtRef(ref: SourceRef): string {
  return `${ref.file}:${ref.line}:${ref.col}`;
}

function describeControl(s: string): string {
  const ch = CONTROL.exec(s)?.[0] ?? '';
  switch (ch) {
    case '\n':
      return 'a newline';
    case '\r':
      return 'a carriage return';
    case '\u0000':
      return 'a NUL byte';
    case '\t':
      return 'a tab';
    default:
      return `the control character U+${ch.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}`;
  }
}

/** Why `name` fails `pattern`, in words (undefined when it passes). */
function nameProblem(name: string, pattern: RegExp, firstChars: string): string | undefined {
  if (pattern.test(name)) return undefined;
  if (name === '') return 'is empty';
  if (name.length > 63) return 'is longer than 63 characters';
  const bad = /[^A-Za-z0-9_-]/.exec(name)?.[0];
  if (bad === ' ') return 'contains a space';
  if (bad !== undefined) return `contains "${bad}"`;
  return `must start with ${firstChars}`;
}

const NAME_RULE =
  'names become systemd unit instances, file names and tmux session names: use letters, digits, _ and -';

export class Collector {
  readonly diagnostics: Diagnostic[] = [];
  constructor(readonly parsed: ParsedManifest) {}
  at(path: readonly PathSegment[], message: string, which: 'key' | 'value' = 'value'): void {
    this.diagnostics.push(diagnosticAt(this.parsed, locate(this.parsed, path, which), message));
  }
  ref(path: readonly PathSegment[], which: 'key' | 'value' = 'value'): SourceRef {
    return locate(this.parsed, path, which);
  }
}

/** Newline, CR, NUL and other control characters are refused everywhere, keys included. */
export function checkControlCharacters(c: Collector, value: unknown, path: PathSegment[]): void {
  if (typeof value === 'string') {
    if (CONTROL.test(value))
      c.at(
        path,
        `${displayPath(path, c.parsed.data)} contains ${describeControl(value)}; values must be one line`,
      );
  } else if (Array.isArray(value)) {
    value.forEach((v, i) => checkControlCharacters(c, v, [...path, i]));
  } else if (isRec(value)) {
    for (const [k, v] of Object.entries(value)) {
      if (CONTROL.test(k))
        c.at(
          [...path, k],
          `a key in ${displayPath(path, c.parsed.data)} contains ${describeControl(k)}`,
          'key',
        );
      checkControlCharacters(c, v, [...path, k]);
    }
  }
}

/** Plain values (not `command`) must not carry shell metacharacters. Control characters are reported elsewhere. */
export function checkPlain(c: Collector, value: unknown, path: PathSegment[]): boolean {
  const s = str(value);
  if (s === undefined || CONTROL.test(s)) return false;
  const meta = SHELL_META.exec(s)?.[0];
  if (meta !== undefined) {
    c.at(
      path,
      `${displayPath(path, c.parsed.data)} ${JSON.stringify(s)} contains the shell metacharacter ${JSON.stringify(meta)}`,
    );
    return false;
  }
  return true;
}

export function checkName(
  c: Collector,
  value: unknown,
  path: PathSegment[],
  what: string,
  pattern = SAFE_NAME,
  which: 'key' | 'value' = 'value',
): boolean {
  const s = str(value);
  if (s === undefined || CONTROL.test(s)) return false;
  const problem = nameProblem(
    s,
    pattern,
    pattern === SAFE_HOLDER ? 'a letter, digit or _' : 'a letter or digit',
  );
  if (problem !== undefined) {
    c.at(path, `${what} ${JSON.stringify(s)} ${problem} (${NAME_RULE}, at most 63)`, which);
    return false;
  }
  return true;
}

export function checkWorkingDirectory(c: Collector, value: unknown, path: PathSegment[]): void {
  if (!checkPlain(c, value, path)) return;
  const s = value as string;
  if (s.startsWith('/') || s === '~' || s.startsWith('~/')) return;
  if (s.startsWith('~')) {
    c.at(
      path,
      `${displayPath(path, c.parsed.data)} ${JSON.stringify(s)}: only "~" and "~/..." (your own home) are expanded`,
    );
  } else {
    c.at(
      path,
      `${displayPath(path, c.parsed.data)} ${JSON.stringify(s)} must be absolute or start with ~/ (relative to what? units have no current directory)`,
    );
  }
}
