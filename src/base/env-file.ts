/**
 * The env-file format (`<home>/fleet/agents/<name>.env`, read by systemd through `EnvironmentFile=`): the parser
 * and the value quoting. Observation reads an agent's socket from it, the planner merges into it, apply checks it:
 * all of them read it here, so "the value systemd will see" is decided once.
 *
 * `parseEnvFile` follows systemd's own parser (src/basic/env-file.c, systemd 252) character by character,
 * including quotes, escapes and continuations. Pure.
 */
import { UserError } from '../errors.js';

/**
 * One logical record of an env file. `raw` is the exact source text including its line terminator, so
 * joining every `raw` gives the file back byte for byte. A record can span several physical lines (a quoted
 * value with a newline, a backslash continuation).
 */
export type EnvLine =
  | { kind: 'blank'; raw: string }
  | { kind: 'comment'; raw: string }
  | { kind: 'entry'; raw: string; key: string; value: string }
  /** Text systemd ignores: a line without `=`, an invalid variable name, a value systemd rejects. */
  | { kind: 'invalid'; raw: string; reason: string };

/** Shared between the callers that parse the same text (parseEnvFile): read it, never change it. */
export interface ParsedEnvFile {
  /** What systemd puts into the environment: valid assignments, the last one of a key winning. */
  readonly entries: ReadonlyMap<string, string>;
  readonly lines: readonly EnvLine[];
}

// Character classes from systemd's string-util.h / escape.h, as char codes: this parser runs for every agent's
// env file on every observation and plan, so it compares numbers instead of searching class strings per character.
const TAB = 9;
const LF = 10;
const CR = 13;
const SPACE = 32;
const DQUOTE = 34; // "
const HASH = 35; // #
const DOLLAR = 36; // $
const SQUOTE = 39; // '
const SEMICOLON = 59; // ;
const EQUALS = 61; // =
const BACKSLASH = 92; // \
const BACKTICK = 96; // `

/** WHITESPACE: ' \t\n\r' */
function isWhitespace(c: number): boolean {
  return c === SPACE || c === TAB || c === LF || c === CR;
}
/** NEWLINE: '\n\r' */
function isNewline(c: number): boolean {
  return c === LF || c === CR;
}
/** SHELL_NEED_ESCAPE: '"\\`$' */
function needsShellEscape(c: number): boolean {
  return c === DQUOTE || c === BACKSLASH || c === BACKTICK || c === DOLLAR;
}

const VALID_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** systemd drops assignments whose value has control characters other than tab and newline (env_value_is_valid). */
// eslint-disable-next-line no-control-regex
const INVALID_VALUE_CHARS = /[\x00-\x08\x0b-\x1f\x7f]/;

const enum State {
  PreKey,
  Key,
  PreValue,
  Value,
  ValueEscape,
  SingleQuote,
  DoubleQuote,
  DoubleQuoteEscape,
  Comment,
  CommentEscape,
}

/**
 * Recent parses by text. Every env file is parsed by observation (its socket), then by the planner (the merge), on
 * every run and, in watch mode, on every resync, while the files seldom change. Bounded: oldest out first.
 */
const parsed = new Map<string, ParsedEnvFile>();
const PARSED_MAX = 2048;

/** Parse env-file text the way systemd 252's `EnvironmentFile=` does. Never throws. The result is shared. */
export function parseEnvFile(text: string): ParsedEnvFile {
  let result = parsed.get(text);
  if (result === undefined) {
    result = parseEnvText(text);
    if (parsed.size >= PARSED_MAX) parsed.delete(parsed.keys().next().value as string);
    parsed.set(text, result);
  }
  return result;
}

function parseEnvText(text: string): ParsedEnvFile {
  const lines: EnvLine[] = [];
  const entries = new Map<string, string>();
  const n = text.length;
  let state = State.PreKey;
  let start = 0;
  let key = '';
  let value = '';
  // Index in `key`/`value` where trailing whitespace begins (-1: none), as systemd tracks it.
  let keyWs = -1;
  let valueWs = -1;

  /** End the current record after index `i` (a CRLF pair stays in one record); returns the new index. */
  const cut = (i: number): number => {
    let end = i + 1;
    if (text.charCodeAt(i) === CR && text.charCodeAt(end) === LF) end += 1;
    return end;
  };
  const pushEntry = (end: number, trimValue: boolean): void => {
    const k = keyWs >= 0 ? key.slice(0, keyWs) : key;
    const v = trimValue && valueWs >= 0 ? value.slice(0, valueWs) : value;
    const raw = text.slice(start, end);
    if (!VALID_NAME.test(k)) {
      lines.push({ kind: 'invalid', raw, reason: `invalid variable name "${k}"` });
    } else if (INVALID_VALUE_CHARS.test(v)) {
      lines.push({ kind: 'invalid', raw, reason: `value of ${k} contains control characters` });
    } else {
      lines.push({ kind: 'entry', raw, key: k, value: v });
      entries.set(k, v);
    }
    start = end;
    key = '';
    value = '';
  };

  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    switch (state) {
      case State.PreKey:
        if (c === HASH || c === SEMICOLON) state = State.Comment;
        else if (!isWhitespace(c)) {
          state = State.Key;
          key = text[i];
          keyWs = -1;
        } else if (c === LF) {
          // A physical line of only whitespace: kept as its own record so merges keep blank lines.
          lines.push({ kind: 'blank', raw: text.slice(start, i + 1) });
          start = i + 1;
        }
        break;
      case State.Key:
        if (isNewline(c)) {
          const end = cut(i);
          lines.push({ kind: 'invalid', raw: text.slice(start, end), reason: 'no "=" in line' });
          start = end;
          i = end - 1;
          key = '';
          state = State.PreKey;
        } else if (c === EQUALS) {
          state = State.PreValue;
          valueWs = -1;
        } else {
          // The rest of the key up to `=` or the line's end, taken as one slice.
          let j = i;
          for (let d = c; d !== EQUALS && !isNewline(d) && j < n; d = text.charCodeAt(++j)) {
            if (!isWhitespace(d)) keyWs = -1;
            else if (keyWs < 0) keyWs = key.length + j - i;
          }
          key += text.slice(i, j);
          i = j - 1;
        }
        break;
      case State.PreValue:
        if (isNewline(c)) {
          const end = cut(i);
          pushEntry(end, false);
          i = end - 1;
          state = State.PreKey;
        } else if (c === SQUOTE) state = State.SingleQuote;
        else if (c === DQUOTE) state = State.DoubleQuote;
        else if (c === BACKSLASH) state = State.ValueEscape;
        else if (!isWhitespace(c)) {
          state = State.Value;
          value += text[i];
        }
        break;
      case State.Value:
        if (isNewline(c)) {
          const end = cut(i);
          pushEntry(end, true);
          i = end - 1;
          state = State.PreKey;
        } else if (c === BACKSLASH) {
          state = State.ValueEscape;
          valueWs = -1;
        } else {
          // The rest of the value up to a backslash or the line's end, taken as one slice.
          let j = i;
          for (let d = c; d !== BACKSLASH && !isNewline(d) && j < n; d = text.charCodeAt(++j)) {
            if (!isWhitespace(d)) valueWs = -1;
            else if (valueWs < 0) valueWs = value.length + j - i;
          }
          value += text.slice(i, j);
          i = j - 1;
        }
        break;
      case State.ValueEscape:
        state = State.Value;
        // A backslash before a newline joins the lines; before anything else it keeps that character.
        if (!isNewline(c)) value += text[i];
        break;
      case State.SingleQuote:
        if (c === SQUOTE) state = State.PreValue;
        else value += text[i];
        break;
      case State.DoubleQuote:
        if (c === DQUOTE) state = State.PreValue;
        else if (c === BACKSLASH) state = State.DoubleQuoteEscape;
        else value += text[i];
        break;
      case State.DoubleQuoteEscape:
        state = State.DoubleQuote;
        if (needsShellEscape(c)) value += text[i];
        else if (c !== LF) value += `\\${text[i]}`;
        break;
      case State.Comment: {
        // Most of a rendered file is its header comment: skip to the next backslash or line end at once.
        let j = i;
        let d = c;
        while (d !== BACKSLASH && d !== LF && d !== CR && j < n) d = text.charCodeAt(++j);
        if (j >= n) {
          i = n;
          break;
        }
        i = j;
        if (d === BACKSLASH) state = State.CommentEscape;
        else {
          const end = cut(i);
          lines.push({ kind: 'comment', raw: text.slice(start, end) });
          start = end;
          i = end - 1;
          state = State.PreKey;
        }
        break;
      }
      case State.CommentEscape:
        // systemd 252: a backslash in a comment swallows the next character, a newline included, so a
        // comment ending in `\` continues onto the next line (systemd 254 changed this).
        state = State.Comment;
        break;
    }
  }

  // End of text without a final newline.
  switch (state) {
    case State.PreKey:
      if (start < n) lines.push({ kind: 'blank', raw: text.slice(start) });
      break;
    case State.Key:
      lines.push({ kind: 'invalid', raw: text.slice(start), reason: 'no "=" in line' });
      break;
    case State.PreValue:
    case State.ValueEscape:
    case State.SingleQuote:
    case State.DoubleQuote:
    case State.DoubleQuoteEscape:
      pushEntry(n, false);
      break;
    case State.Value:
      pushEntry(n, true);
      break;
    case State.Comment:
    case State.CommentEscape:
      lines.push({ kind: 'comment', raw: text.slice(start) });
      break;
  }
  return { entries, lines };
}

/** Characters that need no quoting in an env file (and mean the same to a POSIX shell). */
const BARE_SAFE = /^[A-Za-z0-9_@%+=:,./-]*$/;

/**
 * One value as systemd's `EnvironmentFile=` reads it back exactly: bare when it is only safe characters
 * (the empty value is written bare, `KEY=`, never `''`), otherwise in double quotes with `\`, `"`, `` ` ``
 * and `$` backslash-escaped. systemd does not expand `$VAR` in env files; escaping `$` anyway keeps the file
 * meaning the same when a shell sources it. `#` needs no escape (comments only start a line) but forces quotes.
 */
export function quoteEnvValue(value: string): string {
  if (INVALID_VALUE_CHARS.test(value)) {
    throw new UserError(`value ${JSON.stringify(value)} has control characters systemd would drop`);
  }
  if (BARE_SAFE.test(value)) return value;
  return `"${value.replace(/["\\`$]/g, (ch) => `\\${ch}`)}"`;
}
