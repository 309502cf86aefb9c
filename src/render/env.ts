/**
 * Per-agent env files (`<home>/fleet/agents/<name>.env`), read by systemd through `EnvironmentFile=`.
 *
 * The file is shared: the reconciler owns a fixed set of keys, the operator owns everything else (their
 * own variables, comments, blank lines, and `MOSAIC_AGENT_COMMAND` unless the roster sets `command`).
 * Rendering is a merge into the existing text, never a rewrite, so operator lines survive every run.
 * The format itself (the parser systemd's way, value quoting) is src/base/env-file.ts.
 */
import { sha256Hex } from '../crypto-lazy.js';
import { UserError } from '../errors.js';
import type { DesiredAgent, RuntimeSpec } from '../model/desired.js';
import type { RenderContext } from './units.js';
import { parseEnvFile, quoteEnvValue, type EnvLine, type ParsedEnvFile } from '../base/env-file.js';
import { integrationEnv, plainRuntime, quoteArgs, runtimeArgs } from '../runtimes/index.js';

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
  const keys: string[] = [];
  for (const k of entries.keys()) if (k !== ENV_DIGEST_KEY) keys.push(k);
  keys.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  let text = '';
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i];
    text += `${i === 0 ? '' : '\n'}${k}=${JSON.stringify(entries.get(k))}`;
  }
  return sha256Hex(text).slice(0, 16);
}

/**
 * Files known to merge to themselves, with the managed values they were merged with: in watch mode every resync
 * renders every agent's file again, and nearly always nothing changed (the same text is the same shared parse).
 */
const steady = new WeakMap<ParsedEnvFile, { noCommand: boolean; managed: readonly [string, string][] }>();

function samePairs(a: readonly [string, string][], b: readonly [string, string][]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    const y = b[i];
    if (x === undefined || y === undefined || x[0] !== y[0] || x[1] !== y[1]) return false;
  }
  return true;
}

/** envDigest of parseEnvFile's entries, which are shared and never change: remembered per parse. */
const digests = new WeakMap<ReadonlyMap<string, string>, string>();
function parsedDigest(entries: ReadonlyMap<string, string>): string {
  let d = digests.get(entries);
  if (d === undefined) {
    d = envDigest(entries);
    digests.set(entries, d);
  }
  return d;
}

/**
 * Written on the line before a roster-set `MOSAIC_AGENT_COMMAND`. It is how a later run tells "the roster
 * put this here" (remove it when the roster drops `command`) from "the operator wrote this" (keep it).
 */
export const ROSTER_COMMAND_MARKER =
  '# fleet: the next line is the roster\'s "command" for this agent (managed)';

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
  return renderEnvFileParsed(agent, ctx, existing, runtimes).text;
}

/** A rendered env file and what systemd reads from it. */
export interface RenderedEnvFile {
  text: string;
  /** `parseEnvFile(text).entries`: the environment the agent's unit gets. */
  entries: ReadonlyMap<string, string>;
}

/**
 * renderEnvFile, with the rendered file's entries, parsing as little as it can: the planner renders every agent's
 * file on every run, and nearly always the file on disk is already the result.
 */
export function renderEnvFileParsed(
  agent: DesiredAgent,
  ctx: RenderContext,
  existing: string | null,
  runtimes: Readonly<Record<string, RuntimeSpec>> = {},
): RenderedEnvFile {
  const managed = managedEnv(agent, ctx, runtimes);
  const parsed = existing === null ? null : parseEnvFile(existing);
  // The digest is of the merged file's other entries, which do not depend on the digest's own value: its line is
  // one bare word in the same place whatever the value. So a file that holds its own current digest and merges to
  // itself is the result, and the draft below (and its parse) is not needed.
  const current = parsed?.entries.get(ENV_DIGEST_KEY);
  if (
    existing !== null &&
    parsed !== null &&
    current !== undefined &&
    parsedDigest(parsed.entries) === current
  ) {
    // What the merge depends on besides the file: the managed values, and whether the roster sets `command`.
    const known = steady.get(parsed);
    if (
      known !== undefined &&
      known.noCommand === (agent.command === null) &&
      samePairs(known.managed, managed)
    )
      return { text: existing, entries: parsed.entries };
    const same = mergeEnvFile(agent, ctx, existing, parsed, [...managed, [ENV_DIGEST_KEY, current]]);
    if (same.text === existing) {
      steady.set(parsed, { noCommand: agent.command === null, managed });
      return same;
    }
  }
  // Twice: the draft's entries give the digest, then the file is merged again with it.
  const draft = mergeEnvFile(agent, ctx, existing, parsed, [...managed, [ENV_DIGEST_KEY, '']]);
  const digest = parsedDigest(draft.entries);
  return mergeEnvFile(agent, ctx, existing, parsed, [...managed, [ENV_DIGEST_KEY, digest]]);
}

/** Whether a comment record is ROSTER_COMMAND_MARKER (with or without its line end). */
function isRosterCommandMarker(raw: string): boolean {
  // Compared whole, without stripping the line end first: every comment line of every env file comes here.
  return (
    raw.startsWith(ROSTER_COMMAND_MARKER) &&
    (raw.length === ROSTER_COMMAND_MARKER.length ||
      raw === `${ROSTER_COMMAND_MARKER}\n` ||
      raw === `${ROSTER_COMMAND_MARKER}\r\n`)
  );
}

function mergeEnvFile(
  agent: DesiredAgent,
  ctx: RenderContext,
  existing: string | null,
  parsed: ParsedEnvFile | null,
  desired: Array<[string, string]>,
): RenderedEnvFile {
  const wanted = new Map(desired);
  const rendered = (k: string, v: string): string => {
    try {
      return `${k}=${quoteEnvValue(v)}\n`;
    } catch (error) {
      const why = error instanceof Error ? error.message : String(error);
      throw new UserError(`${envFilePath(agent, ctx)}: ${k}: ${why}`, 1, { cause: error });
    }
  };

  const lines = parsed === null ? [] : parsed.lines;
  const fresh = existing === null || existing.trim() === '';
  const out: EnvLine[] = [];
  const written = new Set<string>();
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (line === undefined) continue;
    const next = lines[i + 1];
    if (line.kind === 'comment' && isRosterCommandMarker(line.raw)) {
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
  let text = '';
  if (fresh) text = header(agent);
  else for (const l of out) text += l.raw;
  if (text !== '' && !text.endsWith('\n')) text += '\n';
  const missing = desired.filter(([k]) => !written.has(k));
  if (missing.length > 0 && continuesOntoNextLine(out[out.length - 1])) text += '\n';
  for (const [k, v] of missing) {
    if (k === 'MOSAIC_AGENT_COMMAND') text += `${ROSTER_COMMAND_MARKER}\n`;
    text += rendered(k, v);
  }

  // The promise of this module: systemd reads back exactly the managed values. An operator line that
  // swallows what follows it (an unclosed quote at the end of the file) would break that; say so.
  const readBack = text === existing && parsed !== null ? parsed.entries : parseEnvFile(text).entries;
  for (const [k, v] of desired) {
    if (readBack.get(k) !== v) {
      throw new UserError(
        `${envFilePath(agent, ctx)}: cannot merge ${k}: a line in the file (an unclosed quote or a trailing backslash?) ` +
          'hides it from systemd; fix the file by hand',
      );
    }
  }
  return { text, entries: readBack };
}
