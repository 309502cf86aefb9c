/**
 * Content rules the schema cannot say well: names safe for systemd/tmux/files, no characters that would break
 * a unit file, an env file or a shell, known runtimes, and the cross-file rules (unique agent names, one
 * definition per runtime, one `reconcile` block). Every problem is collected; nothing is thrown. Pure.
 *
 * The data may have failed the schema too, so every check guards its types and silently skips what the schema
 * already reported: the operator sees every problem in one run, each once.
 */
import type { Diagnostic } from '../errors.js';
import type { SourceRef } from '../model/desired.js';
import { diagnosticAt, displayPath, locate, type ParsedManifest, type PathSegment } from './parse.js';
import { BUILTIN_RUNTIME_NAMES } from '../runtimes/index.js';
import { checkWorkspaces, WorkspaceSites } from './semantic-workspace.js';
import { checkBudgets } from './semantic-budget.js';

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
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

type Rec = Record<string, unknown>;

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
function checkControlCharacters(c: Collector, value: unknown, path: PathSegment[]): void {
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

function checkName(
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

interface RuntimeSite {
  canonical: string;
  ref: SourceRef;
}

interface TmuxSettings {
  /** '' = the default socket. */
  socketName: string;
  holder: string;
  /** Where the holder is set (or the `tmux`/`agents` key when it is the default), for the conflict message. */
  holderPath: PathSegment[];
  /** false when the socket or holder name is itself invalid (already reported). */
  ok: boolean;
}

/** tmux: both spellings of an alias, socket and holder names. Returns the effective settings. */
function checkTmux(c: Collector, data: Rec): TmuxSettings {
  const settings: TmuxSettings = { socketName: '', holder: '_holder', holderPath: ['agents'], ok: true };
  if (!isRec(data.tmux)) return settings;
  const tmux = data.tmux;
  settings.holderPath = ['tmux'];
  for (const [canonical, alias] of [
    ['socket_name', 'socketName'],
    ['holder_session', 'holderSession'],
  ] as const) {
    if (!(canonical in tmux && alias in tmux)) continue;
    const a = c.ref(['tmux', canonical], 'key');
    const b = c.ref(['tmux', alias], 'key');
    const later = a.line > b.line || (a.line === b.line && a.col > b.col) ? canonical : alias;
    const other = later === canonical ? b : a;
    c.at(
      ['tmux', later],
      `tmux sets both "${canonical}" and its alias "${alias}" (the other at ${fmtRef(other)}); keep one`,
      'key',
    );
  }
  const socketKey = 'socket_name' in tmux ? 'socket_name' : 'socketName';
  const socket = tmux[socketKey];
  if (typeof socket === 'string') {
    settings.socketName = socket;
    if (!CONTROL.test(socket) && !SAFE_SOCKET.test(socket)) {
      settings.ok = false;
      c.at(
        ['tmux', socketKey],
        `tmux.${socketKey} ${JSON.stringify(socket)} is not a safe tmux socket name: use up to 64 letters, digits, _ and - (or leave it out for the default socket)`,
      );
    }
  }
  const holderKey = 'holder_session' in tmux ? 'holder_session' : 'holderSession';
  const holder = tmux[holderKey];
  if (typeof holder === 'string') {
    settings.holder = holder;
    settings.holderPath = ['tmux', holderKey];
    if (!checkName(c, holder, ['tmux', holderKey], `tmux.${holderKey}`, SAFE_HOLDER)) settings.ok = false;
  }
  return settings;
}

/** Semantic diagnostics for a whole fleet: all files given together. Files whose YAML is broken are skipped. */
export function semanticDiagnostics(manifests: readonly ParsedManifest[]): Diagnostic[] {
  const out: Diagnostic[] = [];
  const agentsByName = new Map<string, SourceRef>();
  const runtimesByName = new Map<string, RuntimeSite>();
  const holderBySocket = new Map<string, { holder: string; ref: SourceRef }>();
  let reconcileAt: SourceRef | undefined;
  const alertNames = new Map<string, SourceRef>();
  const declaredRuntimes = new Set<string>(BUILTIN_RUNTIME_NAMES);
  const pendingRuntimeChecks: { c: Collector; index: number; runtime: string }[] = [];
  const workspaceSites = new WorkspaceSites();

  for (const parsed of manifests) {
    if (parsed.data === undefined || !isRec(parsed.data)) continue;
    const data = parsed.data;
    const c = new Collector(parsed);
    checkControlCharacters(c, data, []);

    checkPlain(c, data.tenant_id, ['tenant_id']);

    const { socketName, holder, holderPath, ok: socketOk } = checkTmux(c, data);
    // One socket, one holder session. Only files with agents put a socket to use (see normalize.ts), so only
    // they can conflict; a file without a holder_session uses the default `_holder`.
    if (socketOk && Array.isArray(data.agents) && data.agents.length > 0) {
      const seen = holderBySocket.get(socketName);
      const here = c.ref(holderPath, holderPath.length === 1 ? 'key' : 'value');
      if (seen && seen.holder !== holder) {
        const socket = socketName === '' ? 'the default socket' : `socket ${JSON.stringify(socketName)}`;
        const message = `${socket} has holder session ${JSON.stringify(seen.holder)} at ${fmtRef(seen.ref)}, but here ${JSON.stringify(holder)}; a socket has one holder session`;
        c.diagnostics.push(diagnosticAt(parsed, here, message));
      } else if (!seen) {
        holderBySocket.set(socketName, { holder, ref: here });
      }
    }

    if (isRec(data.defaults))
      checkWorkingDirectory(c, data.defaults.working_directory, ['defaults', 'working_directory']);

    // runtimes: safe names; one definition fleet-wide.
    if (isRec(data.runtimes)) {
      for (const [name, spec] of Object.entries(data.runtimes)) {
        declaredRuntimes.add(name);
        checkName(c, name, ['runtimes', name], `runtime name`, SAFE_NAME, 'key');
        const canonical = JSON.stringify(spec, Object.keys(isRec(spec) ? spec : {}).sort());
        const ref = c.ref(['runtimes', name], 'key');
        const seen = runtimesByName.get(name);
        if (seen && seen.canonical !== canonical) {
          c.at(
            ['runtimes', name],
            `runtime "${name}" is defined differently at ${fmtRef(seen.ref)}; define it once or identically`,
            'key',
          );
        } else if (!seen) {
          runtimesByName.set(name, { canonical, ref });
        }
      }
    }

    // reconcile: fleet-wide, so exactly one file may own it.
    if ('reconcile' in data) {
      const ref = c.ref(['reconcile'], 'key');
      if (reconcileAt) {
        c.at(
          ['reconcile'],
          `reconcile is also set at ${fmtRef(reconcileAt)}; it applies to the whole fleet, so set it in one manifest`,
          'key',
        );
      } else {
        reconcileAt = ref;
      }
    }

    if (Array.isArray(data.alerts)) checkAlertNames(c, data.alerts, alertNames);

    if (Array.isArray(data.agents)) {
      data.agents.forEach((agent: unknown, index) => {
        if (!isRec(agent)) return;
        const p = (k: string): PathSegment[] => ['agents', index, k];
        const nameOk = checkName(c, agent.name, p('name'), `agent name`);
        if (nameOk) {
          const name = agent.name as string;
          const ref = c.ref(p('name'));
          const seen = agentsByName.get(name);
          if (seen) {
            c.at(p('name'), `duplicate agent "${name}" (also defined at ${fmtRef(seen)})`);
          } else {
            agentsByName.set(name, ref);
          }
          if (name === holder) {
            c.at(
              p('name'),
              `agent "${name}" has the name of its socket's holder session; they would be the same tmux session`,
            );
          }
        }
        if (checkPlain(c, agent.runtime, p('runtime'))) {
          pendingRuntimeChecks.push({ c, index, runtime: agent.runtime as string });
        }
        for (const key of ['class', 'model_hint', 'host']) checkPlain(c, agent[key], p(key));
        checkWorkingDirectory(c, agent.working_directory, p('working_directory'));
      });
    }
    checkWorkspaces(c, data, workspaceSites);
    checkBudgets(c, data);
    out.push(...c.diagnostics);
  }

  // Runtimes are fleet-wide: an agent may use one declared in another file, so check after all files.
  for (const { c, index, runtime } of pendingRuntimeChecks) {
    if (declaredRuntimes.has(runtime)) continue;
    const known = [...declaredRuntimes].sort().join(', ');
    const message = `unknown runtime "${runtime}" (known: ${known}; declare others under runtimes:)`;
    out.push(diagnosticAt(c.parsed, c.ref(['agents', index, 'runtime']), message));
  }
  return out;
}

/**
 * Alert rules are named fleet-wide (a rule's episodes are remembered by its name in the state file): two rules
 * with one name, given or defaulted (`alert-N`, N counted across all files in load order), would share episodes.
 */
function checkAlertNames(c: Collector, alerts: unknown[], seen: Map<string, SourceRef>): void {
  alerts.forEach((rule: unknown, index) => {
    if (!isRec(rule)) return;
    const given = typeof rule.name === 'string';
    const name = given ? (rule.name as string) : `alert-${seen.size + 1}`;
    const path: PathSegment[] = given ? ['alerts', index, 'name'] : ['alerts', index];
    const ref = c.ref(path);
    const before = seen.get(name);
    if (before)
      c.at(path, `alert rule "${name}" is also defined at ${fmtRef(before)}; give each rule its own name`);
    // Counted even when it clashes, so the defaults stay the same as normalize.ts gives them.
    seen.set(before ? `${name}\u0000${seen.size}` : name, ref);
  });
}
