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
import { diagnosticAt, type ParsedManifest, type PathSegment } from './parse.js';
import { BUILTIN_RUNTIME_NAMES } from '../runtimes/index.js';
import { checkWorkspaces, WorkspaceSites } from './semantic-workspace.js';
import {
  SAFE_NAME,
  SAFE_HOLDER,
  SAFE_SOCKET,
  CONTROL,
  type Rec,
  isRec,
  fmtRef,
  Collector,
  checkControlCharacters,
  checkPlain,
  checkName,
  checkWorkingDirectory,
} from './semantic-checks.js';
import { checkBudgets } from './semantic-budget.js';
import { sourceDiagnostics } from './semantic-source.js';
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
  /** Where each fleet-wide block (`reconcile`, `register`, `source`) was first set. */
  const fleetWide = new Map<string, SourceRef>();
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
    if ('reconcile' in data) setOnce(c, 'reconcile', fleetWide);

    if (Array.isArray(data.alerts)) checkAlertNames(c, data.alerts, alertNames);
    // register: fleet-wide too; the DSN comes from exactly one place (an env var or a file), never the manifest.
    if (isRec(data.register)) {
      setOnce(c, 'register', fleetWide);
      const hasEnv = typeof data.register.url_env === 'string';
      const hasFile = typeof data.register.url_file === 'string';
      if (hasEnv === hasFile)
        c.at(
          ['register'],
          'register needs exactly one of url_env (a variable holding the DSN) or url_file',
          'key',
        );
      if (hasFile) checkWorkingDirectory(c, data.register.url_file, ['register', 'url_file']);
    }

    // source: the host follows one repository (docs/hosts.md); its own rules are in semantic-source.ts.
    if (isRec(data.source)) setOnce(c, 'source', fleetWide);

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
  out.push(...sourceDiagnostics(manifests));
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

/** A block that applies to the whole fleet may be set in one manifest only: the second one is refused. */
function setOnce(c: Collector, key: string, seen: Map<string, SourceRef>): void {
  const first = seen.get(key);
  if (first === undefined) seen.set(key, c.ref([key], 'key'));
  else
    c.at(
      [key],
      `${key} is also set at ${fmtRef(first)}; it applies to the whole fleet, so set it in one manifest`,
      'key',
    );
}
