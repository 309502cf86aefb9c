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
/** What the files checked so far have defined: names and fleet-wide blocks are checked across all files. */
interface FleetSites {
  agentsByName: Map<string, SourceRef>;
  runtimesByName: Map<string, RuntimeSite>;
  holderBySocket: Map<string, { holder: string; ref: SourceRef }>;
  /** Where each fleet-wide block (`reconcile`, `register`, `source`) was first set. */
  fleetWide: Map<string, SourceRef>;
  alertNames: Map<string, SourceRef>;
  declaredRuntimes: Set<string>;
  pendingRuntimeChecks: { c: Collector; index: number; runtime: string }[];
  workspaces: WorkspaceSites;
}

/**
 * One socket, one holder session. Only files with agents put a socket to use (see normalize.ts), so only they
 * can conflict; a file without a holder_session uses the default `_holder`.
 */
function checkHolder(c: Collector, data: Rec, sites: FleetSites): string {
  const { socketName, holder, holderPath, ok } = checkTmux(c, data);
  if (!ok || !Array.isArray(data.agents) || data.agents.length === 0) return holder;
  const seen = sites.holderBySocket.get(socketName);
  const here = c.ref(holderPath, holderPath.length === 1 ? 'key' : 'value');
  if (seen && seen.holder !== holder) {
    const socket = socketName === '' ? 'the default socket' : `socket ${JSON.stringify(socketName)}`;
    const message = `${socket} has holder session ${JSON.stringify(seen.holder)} at ${fmtRef(seen.ref)}, but here ${JSON.stringify(holder)}; a socket has one holder session`;
    c.diagnostics.push(diagnosticAt(c.parsed, here, message));
  } else if (!seen) {
    sites.holderBySocket.set(socketName, { holder, ref: here });
  }
  return holder;
}

/** runtimes: safe names; one definition fleet-wide. */
function checkRuntimeDefinitions(c: Collector, data: Rec, sites: FleetSites): void {
  if (!isRec(data.runtimes)) return;
  for (const [name, spec] of Object.entries(data.runtimes)) {
    sites.declaredRuntimes.add(name);
    checkName(c, name, ['runtimes', name], `runtime name`, SAFE_NAME, 'key');
    const canonical = JSON.stringify(spec, Object.keys(isRec(spec) ? spec : {}).sort());
    const ref = c.ref(['runtimes', name], 'key');
    const seen = sites.runtimesByName.get(name);
    if (seen && seen.canonical !== canonical) {
      c.at(
        ['runtimes', name],
        `runtime "${name}" is defined differently at ${fmtRef(seen.ref)}; define it once or identically`,
        'key',
      );
    } else if (!seen) {
      sites.runtimesByName.set(name, { canonical, ref });
    }
  }
}

/** register: fleet-wide; the DSN comes from exactly one place (an env var or a file), never the manifest. */
function checkRegister(c: Collector, data: Rec, sites: FleetSites): void {
  if (!isRec(data.register)) return;
  setOnce(c, 'register', sites.fleetWide);
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

function checkAgents(c: Collector, data: Rec, holder: string, sites: FleetSites): void {
  if (!Array.isArray(data.agents)) return;
  data.agents.forEach((agent: unknown, index) => {
    if (!isRec(agent)) return;
    const p = (k: string): PathSegment[] => ['agents', index, k];
    if (checkName(c, agent.name, p('name'), `agent name`)) {
      const name = agent.name as string;
      const seen = sites.agentsByName.get(name);
      if (seen) c.at(p('name'), `duplicate agent "${name}" (also defined at ${fmtRef(seen)})`);
      else sites.agentsByName.set(name, c.ref(p('name')));
      if (name === holder)
        c.at(
          p('name'),
          `agent "${name}" has the name of its socket's holder session; they would be the same tmux session`,
        );
    }
    if (checkPlain(c, agent.runtime, p('runtime')))
      sites.pendingRuntimeChecks.push({ c, index, runtime: agent.runtime as string });
    for (const key of ['class', 'model_hint', 'host']) checkPlain(c, agent[key], p(key));
    checkWorkingDirectory(c, agent.working_directory, p('working_directory'));
  });
}

function checkFile(parsed: ParsedManifest, data: Rec, sites: FleetSites): Diagnostic[] {
  const c = new Collector(parsed);
  checkControlCharacters(c, data, []);
  checkPlain(c, data.tenant_id, ['tenant_id']);
  const holder = checkHolder(c, data, sites);
  if (isRec(data.defaults))
    checkWorkingDirectory(c, data.defaults.working_directory, ['defaults', 'working_directory']);
  checkRuntimeDefinitions(c, data, sites);
  // reconcile: fleet-wide, so exactly one file may own it.
  if ('reconcile' in data) setOnce(c, 'reconcile', sites.fleetWide);
  if (Array.isArray(data.alerts)) checkAlertNames(c, data.alerts, sites.alertNames);
  checkRegister(c, data, sites);
  // source: the host follows one repository (docs/hosts.md); its own rules are in semantic-source.ts.
  if (isRec(data.source)) setOnce(c, 'source', sites.fleetWide);
  checkAgents(c, data, holder, sites);
  checkWorkspaces(c, data, sites.workspaces);
  checkBudgets(c, data);
  return c.diagnostics;
}

export function semanticDiagnostics(manifests: readonly ParsedManifest[]): Diagnostic[] {
  const out: Diagnostic[] = [];
  const sites: FleetSites = {
    agentsByName: new Map(),
    runtimesByName: new Map(),
    holderBySocket: new Map(),
    fleetWide: new Map(),
    alertNames: new Map(),
    declaredRuntimes: new Set<string>(BUILTIN_RUNTIME_NAMES),
    pendingRuntimeChecks: [],
    workspaces: new WorkspaceSites(),
  };
  for (const parsed of manifests) {
    if (parsed.data === undefined || !isRec(parsed.data)) continue;
    out.push(...checkFile(parsed, parsed.data, sites));
  }
  // Runtimes are fleet-wide: an agent may use one declared in another file, so check after all files.
  for (const { c, index, runtime } of sites.pendingRuntimeChecks) {
    if (sites.declaredRuntimes.has(runtime)) continue;
    const known = [...sites.declaredRuntimes].sort().join(', ');
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
