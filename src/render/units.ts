/**
 * The fleet's systemd user units, rendered from the package's templates (systemd/*) and the desired fleet.
 * Pure: template text comes in as input (src/assets.ts reads it), file contents go out; src/apply writes them.
 *
 * Two units serve the whole fleet: the holder (one ExecStart= per tmux socket) and the agent template,
 * instantiated once per agent. Absolute paths are baked in at render time from the Mosaic home, so units
 * work without any environment set up for them.
 */
import { sha256Hex } from '../crypto-lazy.js';
import { InternalError, UserError } from '../errors.js';
import type { DesiredFleet } from '../model/desired.js';
import { AGENT_TEMPLATE_UNIT, HOLDER_UNIT } from '../base/names.js';

export interface RenderContext {
  /** Absolute Mosaic home. */
  mosaicHome: string;
  /** Absolute directory the active user units are written to. */
  unitDir: string;
  /** Absolute `<home>/tools/fleet`, where the framework scripts are installed. */
  toolsDir: string;
}

export interface RenderedFile {
  /** Absolute path. */
  path: string;
  content: string;
  mode: number;
  role: 'unit' | 'framework';
}

/** The raw template texts, as shipped in the package's systemd/ directory. */
export interface UnitTemplates {
  /** systemd/mosaic-tmux-holder.service */
  holder: string;
  /** systemd/mosaic-agent@.service */
  agent: string;
}

const UNIT_MODE = 0o644;

export const ENSURE_HOLDER_SCRIPT = 'ensure-holder-session.sh';
export const START_AGENT_SCRIPT = 'start-agent-session.sh';
export const STOP_AGENT_SCRIPT = 'stop-agent-session.sh';

/**
 * Render the holder and the agent template into `ctx.unitDir`, sorted by path.
 *
 * A fleet with no tmux socket (no agent to run on this host) renders no units at all: a holder with no
 * ExecStart= is not a valid service, and the active unit directory should hold only what the roster needs.
 * Units left over from a larger fleet are then orphans for the planner to report or prune.
 */
export function renderUnits(
  desired: DesiredFleet,
  ctx: RenderContext,
  templates: UnitTemplates,
): RenderedFile[] {
  for (const [what, dir] of [
    ['Mosaic home', ctx.mosaicHome],
    ['unit directory', ctx.unitDir],
    ['tools directory', ctx.toolsDir],
  ] as const) {
    if (!dir.startsWith('/')) throw new InternalError(`${what} must be absolute, got ${JSON.stringify(dir)}`);
  }
  if (desired.sockets.length === 0) return [];

  const holderLines: string[] = [];
  const seen = new Set<string>();
  const sockets = [...desired.sockets].sort(
    (a, b) => compare(a.socketName, b.socketName) || compare(a.holderSession, b.holderSession),
  );
  for (const socket of sockets) {
    const id = `${socket.socketName}\n${socket.holderSession}`;
    if (seen.has(id)) continue;
    seen.add(id);
    holderLines.push(
      `ExecStart=${execLine([
        `${ctx.toolsDir}/${ENSURE_HOLDER_SCRIPT}`,
        // `--socket=` with nothing after it is the default socket; a separate empty word would be fragile.
        `--socket=${socket.socketName}`,
        `--holder=${socket.holderSession}`,
      ])}`,
    );
  }

  const holder = fillTemplate(HOLDER_UNIT, templates.holder, {
    HOLDER_EXEC_START: holderLines.join('\n'),
  });
  const agentValues = {
    HOLDER_UNIT,
    AGENTS_DIR: pathSetting(`${ctx.mosaicHome}/fleet/agents`),
    START_AGENT_SESSION: execProgram(`${ctx.toolsDir}/${START_AGENT_SCRIPT}`),
    STOP_AGENT_SESSION: execProgram(`${ctx.toolsDir}/${STOP_AGENT_SCRIPT}`),
  };
  // The digest covers the unit's settings with itself left blank, so it is a pure function of what matters.
  // (A template without the placeholder, such as a test's, declares no digest.)
  const withDigest = templates.agent.includes('@UNIT_DIGEST@');
  const draft = fillTemplate(
    AGENT_TEMPLATE_UNIT,
    templates.agent,
    withDigest ? { ...agentValues, UNIT_DIGEST: '' } : agentValues,
  );
  const agent = withDigest
    ? fillTemplate(AGENT_TEMPLATE_UNIT, templates.agent, {
        ...agentValues,
        UNIT_DIGEST: effectiveUnitDigest(draft),
      })
    : draft;
  return [
    { path: `${ctx.unitDir}/${AGENT_TEMPLATE_UNIT}`, content: agent, mode: UNIT_MODE, role: 'unit' as const },
    { path: `${ctx.unitDir}/${HOLDER_UNIT}`, content: holder, mode: UNIT_MODE, role: 'unit' as const },
  ].sort((a, b) => compare(a.path, b.path));
}

/** The name of the environment variable the agent template sets to its own effective digest. */
export const UNIT_DIGEST_KEY = 'MOSAIC_UNIT_DIGEST';

/**
 * A digest of what a unit file means to systemd: its section headers and settings, whitespace-trimmed, without
 * comments, blank lines or the digest setting itself. A comment edit does not change it; any setting does.
 */
export function effectiveUnitDigest(content: string): string {
  const settings = content
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#') && !l.startsWith(';'))
    .filter((l) => !l.startsWith(`Environment=${UNIT_DIGEST_KEY}=`));
  return sha256Hex(settings.join('\n')).slice(0, 16);
}

/** The digest an agent template declares (null when it declares none: rendered by an older version). */
export function declaredUnitDigest(content: string | null | undefined): string | null {
  const m = new RegExp(`^Environment=${UNIT_DIGEST_KEY}=([0-9a-f]+)$`, 'm').exec(content ?? '');
  return m?.[1] ?? null;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Replace `@NAME@` placeholders. Every placeholder in the template must have a value and every value must be
 * used: a mismatch between a template and this renderer is a packaging bug, never something to ship.
 */
export function fillTemplate(
  unit: string,
  template: string,
  values: Readonly<Record<string, string>>,
): string {
  const used = new Set<string>();
  const filled = template.replace(/@([A-Z][A-Z0-9_]*)@/g, (_match, name: string) => {
    const value = values[name];
    if (value === undefined) throw new InternalError(`template ${unit}: unknown placeholder @${name}@`);
    used.add(name);
    return value;
  });
  for (const name of Object.keys(values)) {
    if (!used.has(name)) throw new InternalError(`template ${unit}: placeholder @${name}@ is missing`);
  }
  return `${filled.replace(/\n*$/, '')}\n`;
}

// eslint-disable-next-line no-control-regex
const CONTROL = /[\x00-\x1f\x7f]/;

function rejectControl(value: string): void {
  // A newline would end the setting and start another: no quoting makes that safe in a unit file.
  if (CONTROL.test(value)) {
    throw new UserError(
      `cannot put ${JSON.stringify(value)} into a unit file: it contains control characters`,
    );
  }
}

/** A setting that takes a path verbatim (EnvironmentFile=): only `%` is special, as a specifier. */
export function pathSetting(path: string): string {
  rejectControl(path);
  return path.replace(/%/g, '%%');
}

const EXEC_SAFE = /^[A-Za-z0-9_@+=:,./-]+$/;

/**
 * One argument of an ExecStart=/ExecStop= line meaning exactly `word` to the program. systemd first expands
 * `%` specifiers over the whole line, then splits words with C-style unquoting, then substitutes `$VAR` in
 * the arguments at run time; so `%` becomes `%%` and `$` becomes `$$`, and anything beyond safe characters
 * is double-quoted with `\` and `"` escaped.
 */
export function execWord(word: string): string {
  return quoteExecWord(word.replace(/\$/g, '$$$$'), word);
}

/**
 * The program word of an Exec line. Unlike the arguments, systemd runs the program path as written, with no
 * `$VAR` substitution, so a `$` stays single here (`$$` would name another file; systemd-analyze verify
 * showed it). `%` is still a specifier.
 */
export function execProgram(path: string): string {
  return quoteExecWord(path, path);
}

function quoteExecWord(escapedDollars: string, original: string): string {
  rejectControl(original);
  const escaped = escapedDollars.replace(/%/g, '%%');
  if (EXEC_SAFE.test(original)) return escaped;
  return `"${escaped.replace(/[\\"]/g, (ch) => `\\${ch}`)}"`;
}

/** A whole command line: the absolute program, then its arguments. */
export function execLine(argv: readonly string[]): string {
  const [program, ...args] = argv;
  if (program === undefined || !program.startsWith('/')) {
    throw new InternalError(`exec line must start with an absolute program path: ${JSON.stringify(argv)}`);
  }
  return [execProgram(program), ...args.map(execWord)].join(' ');
}
