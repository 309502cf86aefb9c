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
  return new EnvParser(text).run();
}

/** One parse's position and partial record: the state machine's steps are its methods. */
class EnvParser {
  readonly lines: EnvLine[] = [];
  readonly entries = new Map<string, string>();
  readonly n: number;
  state = State.PreKey;
  start = 0;
  key = '';
  value = '';
  // Index in `key`/`value` where trailing whitespace begins (-1: none), as systemd tracks it.
  keyWs = -1;
  valueWs = -1;

  constructor(readonly text: string) {
    this.n = text.length;
  }

  run(): ParsedEnvFile {
    const { text, n } = this;
    for (let i = 0; i < n; i++) i = this.step(i, text.charCodeAt(i));
    this.finish();
    return { entries: this.entries, lines: this.lines };
  }

  /** End the current record after index `i` (a CRLF pair stays in one record); returns the new index. */
  cut(i: number): number {
    let end = i + 1;
    if (this.text.charCodeAt(i) === CR && this.text.charCodeAt(end) === LF) end += 1;
    return end;
  }

  pushEntry(end: number, trimValue: boolean): void {
    const { key, value, keyWs, valueWs } = this;
    const k = keyWs >= 0 ? key.slice(0, keyWs) : key;
    const v = trimValue && valueWs >= 0 ? value.slice(0, valueWs) : value;
    const raw = this.text.slice(this.start, end);
    if (!VALID_NAME.test(k)) {
      this.lines.push({ kind: 'invalid', raw, reason: `invalid variable name "${k}"` });
    } else if (INVALID_VALUE_CHARS.test(v)) {
      this.lines.push({ kind: 'invalid', raw, reason: `value of ${k} contains control characters` });
    } else {
      this.lines.push({ kind: 'entry', raw, key: k, value: v });
      this.entries.set(k, v);
    }
    this.start = end;
    this.key = '';
    this.value = '';
  }

  /** One character `c` at index `i`; returns the index of the last character it consumed. */
  step(i: number, c: number): number {
    const { text } = this;
    switch (this.state) {
      case State.PreKey:
        return this.preKey(i, c);
      case State.Key:
        return this.inKey(i, c);
      case State.PreValue:
        return this.preValue(i, c);
      case State.Value:
        return this.inValue(i, c);
      case State.ValueEscape:
        this.state = State.Value;
        // A backslash before a newline joins the lines; before anything else it keeps that character.
        if (!isNewline(c)) this.value += text[i];
        return i;
      case State.SingleQuote:
        if (c === SQUOTE) this.state = State.PreValue;
        else this.value += text[i];
        return i;
      case State.DoubleQuote:
        if (c === DQUOTE) this.state = State.PreValue;
        else if (c === BACKSLASH) this.state = State.DoubleQuoteEscape;
        else this.value += text[i];
        return i;
      case State.DoubleQuoteEscape:
        this.state = State.DoubleQuote;
        if (needsShellEscape(c)) this.value += text[i];
        else if (c !== LF) this.value += `\\${text[i]}`;
        return i;
      case State.Comment:
        return this.inComment(i, c);
      case State.CommentEscape:
        // systemd 252: a backslash in a comment swallows the next character, a newline included, so a
        // comment ending in `\` continues onto the next line (systemd 254 changed this).
        this.state = State.Comment;
        return i;
    }
  }

  preKey(i: number, c: number): number {
    if (c === HASH || c === SEMICOLON) this.state = State.Comment;
    else if (!isWhitespace(c)) {
      this.state = State.Key;
      this.key = this.text[i];
      this.keyWs = -1;
    } else if (c === LF) {
      // A physical line of only whitespace: kept as its own record so merges keep blank lines.
      this.lines.push({ kind: 'blank', raw: this.text.slice(this.start, i + 1) });
      this.start = i + 1;
    }
    return i;
  }

  inKey(i: number, c: number): number {
    const { text, n } = this;
    if (isNewline(c)) {
      const end = this.cut(i);
      this.lines.push({ kind: 'invalid', raw: text.slice(this.start, end), reason: 'no "=" in line' });
      this.start = end;
      this.key = '';
      this.state = State.PreKey;
      return end - 1;
    }
    if (c === EQUALS) {
      this.state = State.PreValue;
      this.valueWs = -1;
      return i;
    }
    // The rest of the key up to `=` or the line's end, taken as one slice.
    let j = i;
    for (let d = c; d !== EQUALS && !isNewline(d) && j < n; d = text.charCodeAt(++j)) {
      if (!isWhitespace(d)) this.keyWs = -1;
      else if (this.keyWs < 0) this.keyWs = this.key.length + j - i;
    }
    this.key += text.slice(i, j);
    return j - 1;
  }

  preValue(i: number, c: number): number {
    if (isNewline(c)) {
      const end = this.cut(i);
      this.pushEntry(end, false);
      this.state = State.PreKey;
      return end - 1;
    }
    if (c === SQUOTE) this.state = State.SingleQuote;
    else if (c === DQUOTE) this.state = State.DoubleQuote;
    else if (c === BACKSLASH) this.state = State.ValueEscape;
    else if (!isWhitespace(c)) {
      this.state = State.Value;
      this.value += this.text[i];
    }
    return i;
  }

  inValue(i: number, c: number): number {
    const { text, n } = this;
    if (isNewline(c)) {
      const end = this.cut(i);
      this.pushEntry(end, true);
      this.state = State.PreKey;
      return end - 1;
    }
    if (c === BACKSLASH) {
      this.state = State.ValueEscape;
      this.valueWs = -1;
      return i;
    }
    // The rest of the value up to a backslash or the line's end, taken as one slice.
    let j = i;
    for (let d = c; d !== BACKSLASH && !isNewline(d) && j < n; d = text.charCodeAt(++j)) {
      if (!isWhitespace(d)) this.valueWs = -1;
      else if (this.valueWs < 0) this.valueWs = this.value.length + j - i;
    }
    this.value += text.slice(i, j);
    return j - 1;
  }

  inComment(i: number, c: number): number {
    const { text, n } = this;
    // Most of a rendered file is its header comment: skip to the next backslash or line end at once.
    let j = i;
    let d = c;
    while (d !== BACKSLASH && d !== LF && d !== CR && j < n) d = text.charCodeAt(++j);
    if (j >= n) return n;
    if (d === BACKSLASH) {
      this.state = State.CommentEscape;
      return j;
    }
    const end = this.cut(j);
    this.lines.push({ kind: 'comment', raw: text.slice(this.start, end) });
    this.start = end;
    this.state = State.PreKey;
    return end - 1;
  }

  /** End of text without a final newline. */
  finish(): void {
    const { text, n, start } = this;
    switch (this.state) {
      case State.PreKey:
        if (start < n) this.lines.push({ kind: 'blank', raw: text.slice(start) });
        break;
      case State.Key:
        this.lines.push({ kind: 'invalid', raw: text.slice(start), reason: 'no "=" in line' });
        break;
      case State.PreValue:
      case State.ValueEscape:
      case State.SingleQuote:
      case State.DoubleQuote:
      case State.DoubleQuoteEscape:
        this.pushEntry(n, false);
        break;
      case State.Value:
        this.pushEntry(n, true);
        break;
      case State.Comment:
      case State.CommentEscape:
        this.lines.push({ kind: 'comment', raw: text.slice(start) });
        break;
    }
  }
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
