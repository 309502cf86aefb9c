/**
 * Per-agent env files (`<home>/fleet/agents/<name>.env`), read by systemd through `EnvironmentFile=`.
 *
 * The file is shared: the reconciler owns a fixed set of keys, the operator owns everything else (their
 * own variables, comments, blank lines, and `MOSAIC_AGENT_COMMAND` unless the roster sets `command`).
 * Rendering is a merge into the existing text, never a rewrite, so operator lines survive every run.
 *
 * `parseEnvFile` follows systemd's own parser (src/basic/env-file.c, systemd 252) character by character,
 * so "the value systemd will see" is decided here exactly, including quotes, escapes and continuations.
 */
import { createHash } from 'node:crypto';
import { UserError } from '../errors.js';
import type { DesiredAgent, RuntimeSpec } from '../model/desired.js';
import type { RenderContext } from './units.js';
import { integrationEnv, plainRuntime, quoteArgs, runtimeArgs } from '../manifest/runtimes.js';

/** Keys the reconciler writes, in the order it appends them. `MOSAIC_AGENT_COMMAND` only when the roster sets `command`. */
export const MANAGED_ENV_KEYS: readonly string[] = [
  'MOSAIC_AGENT_NAME',
  'MOSAIC_AGENT_RUNTIME',
  'MOSAIC_AGENT_RUNTIME_COMMAND',
  'MOSAIC_AGENT_MODEL',
  'MOSAIC_AGENT_WORKDIR',
  'MOSAIC_TMUX_SOCKET',
  'MOSAIC_HOME',
  'MOSAIC_AGENT_STATE',
  'MOSAIC_AGENT_ARGS',
  'MOSAIC_AGENT_RESUME_ARGS',
  'MOSAIC_AGENT_EXIT_KEYS',
  'MOSAIC_AGENT_ENV',
  'MOSAIC_AGENT_COMMAND',
  'MOSAIC_ENV_DIGEST',
];

/**
 * The digest of everything else the file gives the agent (every valid assignment, the operator's included; never
 * comments). The start script passes it into the pane's environment with the rest, so the reconciler tells a
 * running agent that still has an older environment (a restart pending, whatever interrupted it) from one that
 * is current, by reading /proc/PID/environ instead of remembering what it planned.
 */
export const ENV_DIGEST_KEY = 'MOSAIC_ENV_DIGEST';

export function envDigest(entries: ReadonlyMap<string, string>): string {
  const lines = [...entries]
    .filter(([k]) => k !== ENV_DIGEST_KEY)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}=${JSON.stringify(v)}`);
  return createHash('sha256').update(lines.join('\n')).digest('hex').slice(0, 16);
}

/**
 * Written on the line before a roster-set `MOSAIC_AGENT_COMMAND`. It is how a later run tells "the roster
 * put this here" (remove it when the roster drops `command`) from "the operator wrote this" (keep it).
 */
export const ROSTER_COMMAND_MARKER =
  '# fleet: the next line is the roster\'s "command" for this agent (managed)';

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

export interface ParsedEnvFile {
  /** What systemd puts into the environment: valid assignments, the last one of a key winning. */
  entries: Map<string, string>;
  lines: EnvLine[];
}

// Character classes from systemd's string-util.h / escape.h.
const WHITESPACE = ' \t\n\r';
const NEWLINE = '\n\r';
const COMMENTS = '#;';
const SHELL_NEED_ESCAPE = '"\\`$';

const VALID_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** systemd drops assignments whose value has control characters other than tab and newline (env_value_is_valid). */
// eslint-disable-next-line no-control-regex
const INVALID_VALUE_CHARS = /[\x00-\x08\x0b-\x1f\x7f]/;

type State =
  | 'pre-key'
  | 'key'
  | 'pre-value'
  | 'value'
  | 'value-escape'
  | 'single-quote'
  | 'double-quote'
  | 'double-quote-escape'
  | 'comment'
  | 'comment-escape';

/** Parse env-file text the way systemd 252's `EnvironmentFile=` does. Never throws. */
export function parseEnvFile(text: string): ParsedEnvFile {
  const lines: EnvLine[] = [];
  const entries = new Map<string, string>();
  let state: State = 'pre-key';
  let start = 0;
  let key = '';
  let value = '';
  // Index in `key`/`value` where trailing whitespace begins (-1: none), as systemd tracks it.
  let keyWs = -1;
  let valueWs = -1;

  /** End the current record after index `i` (a CRLF pair stays in one record); returns the new index. */
  const cut = (i: number): number => {
    let end = i + 1;
    if (text[i] === '\r' && text[end] === '\n') end += 1;
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

  for (let i = 0; i < text.length; i++) {
    const c = text.charAt(i);
    switch (state) {
      case 'pre-key':
        if (COMMENTS.includes(c)) state = 'comment';
        else if (!WHITESPACE.includes(c)) {
          state = 'key';
          key = c;
          keyWs = -1;
        } else if (c === '\n') {
          // A physical line of only whitespace: kept as its own record so merges keep blank lines.
          lines.push({ kind: 'blank', raw: text.slice(start, i + 1) });
          start = i + 1;
        }
        break;
      case 'key':
        if (NEWLINE.includes(c)) {
          const end = cut(i);
          lines.push({ kind: 'invalid', raw: text.slice(start, end), reason: 'no "=" in line' });
          start = end;
          i = end - 1;
          key = '';
          state = 'pre-key';
        } else if (c === '=') {
          state = 'pre-value';
          valueWs = -1;
        } else {
          if (!WHITESPACE.includes(c)) keyWs = -1;
          else if (keyWs < 0) keyWs = key.length;
          key += c;
        }
        break;
      case 'pre-value':
        if (NEWLINE.includes(c)) {
          const end = cut(i);
          pushEntry(end, false);
          i = end - 1;
          state = 'pre-key';
        } else if (c === "'") state = 'single-quote';
        else if (c === '"') state = 'double-quote';
        else if (c === '\\') state = 'value-escape';
        else if (!WHITESPACE.includes(c)) {
          state = 'value';
          value += c;
        }
        break;
      case 'value':
        if (NEWLINE.includes(c)) {
          const end = cut(i);
          pushEntry(end, true);
          i = end - 1;
          state = 'pre-key';
        } else if (c === '\\') {
          state = 'value-escape';
          valueWs = -1;
        } else {
          if (!WHITESPACE.includes(c)) valueWs = -1;
          else if (valueWs < 0) valueWs = value.length;
          value += c;
        }
        break;
      case 'value-escape':
        state = 'value';
        // A backslash before a newline joins the lines; before anything else it keeps that character.
        if (!NEWLINE.includes(c)) value += c;
        break;
      case 'single-quote':
        if (c === "'") state = 'pre-value';
        else value += c;
        break;
      case 'double-quote':
        if (c === '"') state = 'pre-value';
        else if (c === '\\') state = 'double-quote-escape';
        else value += c;
        break;
      case 'double-quote-escape':
        state = 'double-quote';
        if (SHELL_NEED_ESCAPE.includes(c)) value += c;
        else if (c !== '\n') value += `\\${c}`;
        break;
      case 'comment':
        if (c === '\\') state = 'comment-escape';
        else if (NEWLINE.includes(c)) {
          const end = cut(i);
          lines.push({ kind: 'comment', raw: text.slice(start, end) });
          start = end;
          i = end - 1;
          state = 'pre-key';
        }
        break;
      case 'comment-escape':
        // systemd 252: a backslash in a comment swallows the next character, a newline included, so a
        // comment ending in `\` continues onto the next line (systemd 254 changed this).
        state = 'comment';
        break;
    }
  }

  // End of text without a final newline.
  switch (state) {
    case 'pre-key':
      if (start < text.length) lines.push({ kind: 'blank', raw: text.slice(start) });
      break;
    case 'key':
      lines.push({ kind: 'invalid', raw: text.slice(start), reason: 'no "=" in line' });
      break;
    case 'pre-value':
    case 'value-escape':
    case 'single-quote':
    case 'double-quote':
    case 'double-quote-escape':
      pushEntry(text.length, false);
      break;
    case 'value':
      pushEntry(text.length, true);
      break;
    case 'comment':
    case 'comment-escape':
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

/** The managed key/value pairs for an agent, in MANAGED_ENV_KEYS order. */
export function managedEnv(
  agent: DesiredAgent,
  ctx: RenderContext,
  runtimes: Readonly<Record<string, RuntimeSpec>> = {},
): Array<[string, string]> {
  const pairs: Array<[string, string]> = [
    ['MOSAIC_AGENT_NAME', agent.name],
    ['MOSAIC_AGENT_RUNTIME', agent.runtime],
    // A runtime's program defaults to its name (RuntimeSpec.command), which is also the fallback here.
    ['MOSAIC_AGENT_RUNTIME_COMMAND', runtimes[agent.runtime]?.command ?? agent.runtime],
    ['MOSAIC_AGENT_MODEL', agent.modelHint ?? ''],
    ['MOSAIC_AGENT_WORKDIR', agent.workingDirectory],
    ['MOSAIC_TMUX_SOCKET', agent.socketName],
    ['MOSAIC_HOME', ctx.mosaicHome],
  ];
  const spec = runtimes[agent.runtime] ?? plainRuntime(agent.runtime);
  const resume = (agent.resume ?? spec.resume) && spec.resumeArgs.length > 0;
  let args: string;
  let resumeArgs: string;
  let exitKeys: string;
  let integrationEnvWords: string;
  try {
    args = quoteArgs(runtimeArgs(spec, ctx.toolsDir, agent.modelHint));
    resumeArgs = resume ? quoteArgs(spec.resumeArgs) : '';
    exitKeys = quoteArgs(spec.exitKeys);
    integrationEnvWords = quoteArgs(
      Object.entries(integrationEnv(spec, ctx.toolsDir)).map(([k, v]) => `${k}=${v}`),
    );
  } catch (error) {
    throw new UserError(`agent ${agent.name}: ${(error as Error).message}`, 1, { cause: error });
  }
  // What the launcher (tools/fleet/start-agent-session.sh) runs: the runtime's program with these arguments,
  // and, when the agent's heartbeat names a previous conversation, the resume arguments first. The exit keys
  // are what tools/fleet/stop-agent-session.sh types (each a tmux key, sent on its own) to ask the runtime to
  // quit its own way before it ends the session.
  pairs.push(
    ['MOSAIC_AGENT_STATE', spec.state],
    ['MOSAIC_AGENT_ARGS', args],
    ['MOSAIC_AGENT_RESUME_ARGS', resumeArgs],
    ['MOSAIC_AGENT_EXIT_KEYS', exitKeys],
    ['MOSAIC_AGENT_ENV', integrationEnvWords],
  );
  if (agent.command !== null) pairs.push(['MOSAIC_AGENT_COMMAND', agent.command]);
  return pairs;
}

function envFilePath(agent: DesiredAgent, ctx: RenderContext): string {
  return `${ctx.mosaicHome}/fleet/agents/${agent.name}.env`;
}

function header(agent: DesiredAgent): string {
  return [
    `# Environment of Mosaic fleet agent ${agent.name}, read by mosaic-agent@${agent.name}.service.`,
    `# \`fleet reconcile\` manages these keys and rewrites their values from the roster:`,
    `#   ${MANAGED_ENV_KEYS.slice(0, 4).join(' ')}`,
    `#   ${MANAGED_ENV_KEYS.slice(4, 7).join(' ')}`,
    `#   ${MANAGED_ENV_KEYS.slice(7, 12).join(' ')}`,
    `#   MOSAIC_AGENT_COMMAND (only when the roster sets "command" for this agent)`,
    `#   ${ENV_DIGEST_KEY} (a digest of every other line here; a change means the agent restarts)`,
    `# Every other line is yours and is kept as written. Without a roster "command", a`,
    `# MOSAIC_AGENT_COMMAND you add here replaces the runtime command (run as bash -lc "...").`,
    '',
  ].join('\n');
}

/** A comment whose last physical line ends in an odd number of backslashes swallows the next line (systemd 252). */
function continuesOntoNextLine(line: EnvLine | undefined): boolean {
  if (line?.kind !== 'comment') return false;
  const body = line.raw.replace(/\r?\n$/, '');
  const trailing = /\\+$/.exec(body)?.[0].length ?? 0;
  return trailing % 2 === 1;
}

/**
 * The agent's env file: `existing` (the file's current text, null when there is none) with the managed keys
 * merged in.
 *
 * - Managed keys are updated in place at their first occurrence. Later assignments of a managed key are
 *   removed: systemd lets the last assignment win, so keeping one would silently override the roster.
 * - Missing managed keys are appended in MANAGED_ENV_KEYS order.
 * - Everything else (operator keys, comments, blank lines, text systemd ignores) is kept verbatim and in
 *   order. `MOSAIC_AGENT_COMMAND` is managed only while the roster sets `command`; a line the reconciler wrote
 *   (it follows ROSTER_COMMAND_MARKER) is removed when the roster drops `command`; one the operator wrote
 *   is theirs.
 * - Trailing blank lines are dropped and the text ends with exactly one newline, so merging is idempotent.
 * - A new (or empty) file starts with a header saying which keys are managed.
 *
 * `runtimes` (the fleet's `desired.runtimes`) supplies MOSAIC_AGENT_RUNTIME_COMMAND; without an entry for the
 * agent's runtime, the runtime's name is used, as RuntimeSpec's default does.
 */
export function renderEnvFile(
  agent: DesiredAgent,
  ctx: RenderContext,
  existing: string | null,
  runtimes: Readonly<Record<string, RuntimeSpec>> = {},
): string {
  const managed = managedEnv(agent, ctx, runtimes);
  // Twice: the digest is of the merged file's other entries, which do not depend on the digest's own value.
  const draft = mergeEnvFile(agent, ctx, existing, [...managed, [ENV_DIGEST_KEY, '']]);
  const digest = envDigest(parseEnvFile(draft).entries);
  return mergeEnvFile(agent, ctx, existing, [...managed, [ENV_DIGEST_KEY, digest]]);
}

function mergeEnvFile(
  agent: DesiredAgent,
  ctx: RenderContext,
  existing: string | null,
  desired: Array<[string, string]>,
): string {
  const wanted = new Map(desired);
  const rendered = (k: string, v: string): string => {
    try {
      return `${k}=${quoteEnvValue(v)}\n`;
    } catch (error) {
      const why = error instanceof Error ? error.message : String(error);
      throw new UserError(`${envFilePath(agent, ctx)}: ${k}: ${why}`, 1, { cause: error });
    }
  };

  const lines = existing === null ? [] : parseEnvFile(existing).lines;
  const fresh = existing === null || existing.trim() === '';
  const out: EnvLine[] = [];
  const written = new Set<string>();
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (line === undefined) continue;
    const next = lines[i + 1];
    if (line.kind === 'comment' && line.raw.replace(/\r?\n$/, '') === ROSTER_COMMAND_MARKER) {
      // Our marker: re-emitted below together with a managed MOSAIC_AGENT_COMMAND, or dropped with the
      // command it marked when the roster no longer sets one.
      if (next?.kind === 'entry' && next.key === 'MOSAIC_AGENT_COMMAND' && agent.command === null) i += 1;
      continue;
    }
    if (line.kind !== 'entry' || !wanted.has(line.key)) {
      out.push(line);
      continue;
    }
    if (written.has(line.key)) continue;
    written.add(line.key);
    const value = wanted.get(line.key) ?? '';
    if (line.key === 'MOSAIC_AGENT_COMMAND') out.push({ kind: 'comment', raw: `${ROSTER_COMMAND_MARKER}\n` });
    out.push({ kind: 'entry', key: line.key, value, raw: rendered(line.key, value) });
  }

  while (out.length > 0 && out[out.length - 1]?.kind === 'blank') out.pop();
  let text = fresh ? header(agent) : out.map((l) => l.raw).join('');
  if (text !== '' && !text.endsWith('\n')) text += '\n';
  const missing = desired.filter(([k]) => !written.has(k));
  if (missing.length > 0 && continuesOntoNextLine(out[out.length - 1])) text += '\n';
  for (const [k, v] of missing) {
    if (k === 'MOSAIC_AGENT_COMMAND') text += `${ROSTER_COMMAND_MARKER}\n`;
    text += rendered(k, v);
  }

  // The promise of this module: systemd reads back exactly the managed values. An operator line that
  // swallows what follows it (an unclosed quote at the end of the file) would break that; say so.
  const readBack = parseEnvFile(text).entries;
  for (const [k, v] of desired) {
    if (readBack.get(k) !== v) {
      throw new UserError(
        `${envFilePath(agent, ctx)}: cannot merge ${k}: a line in the file (an unclosed quote or a trailing backslash?) ` +
          'hides it from systemd; fix the file by hand',
      );
    }
  }
  return text;
}
