/**
 * Agent health: one pure judgment per agent, joined from systemd, tmux, the process tree, the heartbeat and
 * the back-off state. `fleet ps` shows it and the planner acts on it, so this is the single place that decides
 * what DRIFT, BOOT-ENABLE, STALE, DEAD, MISSING and BACKOFF mean. No I/O, no clock: "now" is `observed.nowMs`.
 */
import type { DesiredAgent, DesiredFleet, RuntimeSpec } from '../model/desired.js';
import type { BackoffEntry, Observed, ObservedPane, ObservedProcess } from '../model/observed.js';
import { builtinRuntimes } from '../manifest/runtimes.js';
import { agentUnitName } from '../render/names.js';
import { hasSession, sessionPanes } from './lookup.js';

/**
 * What the runtime itself last said it was doing (docs/runtimes.md), from the heartbeat its hooks or extension
 * wrote: starting (launched, no event yet), busy (a turn in progress), idle (waiting for a prompt), waiting (for a
 * permission answer), exited (it said it quit), unknown (the signal is stale, malformed, or from a previous run).
 */
export type AgentState = 'starting' | 'busy' | 'idle' | 'waiting' | 'exited' | 'unknown';

const AGENT_STATES: ReadonlySet<string> = new Set(['starting', 'busy', 'idle', 'waiting', 'exited']);

export interface StateStatus {
  state: AgentState;
  /** Seconds in this state; null when unknown. */
  forSeconds: number | null;
  /** The runtime's event that set it (`UserPromptSubmit`, `agent_end`, ...). */
  event: string | null;
  /** The runtime's own conversation id, as it reported it. */
  session: string | null;
}

export type HealthFlag = 'DRIFT' | 'BOOT-ENABLE' | 'STALE' | 'DEAD' | 'MISSING' | 'BACKOFF';

/** Display and decision order: what is most broken first. */
export const FLAG_ORDER: readonly HealthFlag[] = [
  'MISSING',
  'DEAD',
  'DRIFT',
  'STALE',
  'BOOT-ENABLE',
  'BACKOFF',
];

/**
 * healthy   a heartbeat within `staleAfterSeconds`
 * stale     older than that, past the start-up grace
 * grace     no fresh heartbeat yet, but the session is younger than `graceSeconds`
 * malformed the file exists without a numeric `ts` (`ts=x`): health unknown
 * missing   no heartbeat file
 * none      the runtime does not speak the heartbeat protocol and wrote none, or the agent is another host's
 */
export type HeartbeatHealth = 'healthy' | 'stale' | 'grace' | 'malformed' | 'missing' | 'none';

export interface HeartbeatStatus {
  ageSeconds: number | null;
  health: HeartbeatHealth;
  /** Whether this agent's runtime is expected to write heartbeats at all. */
  expected: boolean;
}

export interface AgentStatus {
  agent: string;
  unit: string;
  /** systemd's ActiveState ('' when systemd does not know the unit or could not be asked). */
  unitActiveState: string;
  unitSubState: string;
  /** enabled | disabled | static | masked | ... ; null when there is no unit file or it is unknown. */
  unitFileState: string | null;
  socketName: string;
  session: string;
  /** null when tmux could not be asked (missing binary, failing server): unknown, not absent. */
  sessionExists: boolean | null;
  paneDead: boolean;
  paneDeadStatus: number | null;
  paneDeadSignal: number | null;
  panePid: number | null;
  /** What actually runs in the pane: the process matching the expected program, else the pane's own process. */
  paneCommand: string | null;
  paneStartCommand: string | null;
  /** Seconds since the pane last printed anything; null when unknown. */
  idleSeconds: number | null;
  /** Unix seconds the session was created. */
  sessionCreated: number | null;
  heartbeat: HeartbeatStatus;
  tenantId: string | null;
  host: string | null;
  /** false when the agent belongs to another host: nothing here can be observed about it. */
  local: boolean;
  /** false when the manifest keeps the agent but wants it stopped. */
  wanted: boolean;
  /** The program the roster says the pane runs (basename), or the whole command when it is shell syntax. */
  expectedProgram: string;
  /** One line explaining DRIFT, null otherwise. */
  driftReason: string | null;
  /** The runtime's own report of what it is doing; null when it reports nothing (no state signal). */
  state: StateStatus | null;
  backoff: (BackoffEntry & { due: boolean }) | null;
  /** In FLAG_ORDER. */
  flags: HealthFlag[];
}

/** Programs that run a script named by a later argument: the script, not the interpreter, is "the program". */
const INTERPRETERS = new Set([
  'bash',
  'sh',
  'dash',
  'zsh',
  'ksh',
  'fish',
  'env',
  'python',
  'python2',
  'python3',
  'node',
  'nodejs',
  'deno',
  'bun',
  'perl',
  'ruby',
  'tsx',
  'npx',
  'uv',
]);

/** The fleet's launcher (framework/tools/fleet/run-agent.sh): it execs the runtime named by its first argument. */
export const LAUNCHER = 'run-agent.sh';

/** Words in a `-c` command that run the next word rather than being the program. */
const PREFIXES = new Set(['exec', 'command', 'nohup', 'builtin', 'stdbuf', 'nice', 'setsid']);

/** Shell syntax beyond "program arg arg": pipes, lists, redirections, substitutions, assignments, globs. */
const COMPOUND = /[|&;<>()$`\\\n*?{}[\]]|^\s*\w+=/;

export function basename(p: string): string {
  const trimmed = p.replace(/\/+$/, '');
  return trimmed.slice(trimmed.lastIndexOf('/') + 1);
}

/** First word of a simple command, honouring plain single/double quotes around it. */
function firstWord(command: string): string {
  const m = /^\s*(?:'([^']*)'|"([^"]*)"|(\S+))/.exec(command);
  return m ? (m[1] ?? m[2] ?? m[3] ?? '') : '';
}

/** Words of a simple command (no shell syntax): whitespace-separated, plain quotes removed. */
function words(command: string): string[] {
  const out: string[] = [];
  for (const m of command.matchAll(/'([^']*)'|"([^"]*)"|(\S+)/g)) out.push(m[1] ?? m[2] ?? m[3] ?? '');
  return out;
}

/** tmux shows start commands with arguments in double quotes and `"`, `$`, `\` escaped; undo that for comparing. */
function unTmux(text: string): string {
  return text.replace(/\\(["$\\])/g, '$1').replace(/"/g, '');
}

/** The program names a process stands for: argv[0], and for an interpreter the script (or `-c` command) it runs. */
export function programNames(argv: readonly string[]): string[] {
  const first = argv[0];
  if (first === undefined || first === '') return [];
  const name = basename(first);
  const names = [name];
  // `python3.11` is a python.
  if (!INTERPRETERS.has(name) && !INTERPRETERS.has(name.replace(/[\d.]+$/, ''))) return names;
  for (let i = 1; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === '--') continue;
    if (arg.startsWith('-')) {
      // `bash -c 'cmd args'`, `bash -lc ...`, `python -c ...`: the next argument is the command itself.
      if (/^-[a-zA-Z]*c$/.test(arg) && i + 1 < argv.length) {
        // Its program is the first word that is not a prefix (`exec pi`, `A=1 nohup pi`), judged in turn
        // (`exec python3 x.py` runs x.py).
        const ws = words(argv[i + 1] ?? '');
        while (ws.length > 0 && (PREFIXES.has(ws[0] ?? '') || /^\w+=/.test(ws[0] ?? ''))) ws.shift();
        names.push(...programNames(ws));
        break;
      }
      continue;
    }
    // `env VAR=x prog`: skip assignments.
    if (name === 'env' && /^\w+=/.test(arg)) continue;
    names.push(basename(arg));
    // The fleet's launcher runs the program named after it (until it execs it).
    if (basename(arg) === LAUNCHER) names.push(...programNames(argv.slice(i + 1)));
    break;
  }
  return names;
}

export interface Expected {
  /** What is shown and compared: a program basename, or the whole command for shell syntax. */
  program: string;
  /** true when the command is shell syntax and is compared against the pane's start command. */
  compound: boolean;
  /**
   * Every name that counts as the expected program in the pane's process tree: the program, the runtime
   * adapter's `programs` (an npm shim's native binary, a process title), and the name the program resolves to
   * through links on the user manager's PATH.
   */
  names?: string[];
}

/**
 * What the roster says the pane runs. The operator's `command` wins over the runtime (it is what the start
 * script runs); its first word is the program unless it is shell syntax, whose first word proves nothing
 * (`cd x && claude`), so such commands are compared whole against what tmux started.
 */
export function expectedProgram(
  agent: DesiredAgent,
  runtime: RuntimeSpec | undefined,
  resolved: Observed['programs'] = undefined,
): Expected {
  if (agent.command !== null && agent.command.trim() !== '') {
    if (COMPOUND.test(agent.command)) return { program: agent.command.trim(), compound: true };
    // `python3 /opt/agent.py` runs agent.py: judged like a process argv, the script is the program.
    const names = programNames(words(agent.command));
    return { program: names.at(-1) ?? basename(firstWord(agent.command)), compound: false };
  }
  const command = runtime?.command ?? agent.runtime;
  const program = basename(command);
  const target = resolved?.[command]?.realPath;
  const names = [program, ...(runtime?.programs ?? []), ...(target ? [basename(target)] : [])];
  return { program, compound: false, names: [...new Set(names)] };
}

function agentPane(observed: Observed, agent: DesiredAgent): ObservedPane | null {
  const socket = observed.tmux.sockets[agent.socketName];
  if (socket === undefined) return null;
  // Agent sessions have one window and one pane; take the first in case an operator split it.
  return sessionPanes(socket, agent.name)[0] ?? null;
}

/** Whether an agent runs on this machine: no host, this machine's name (short or fully qualified), or loopback. */
export function isLocalAgent(agent: DesiredAgent, hostname: string): boolean {
  if (agent.host === null || agent.host === '' || agent.host === 'localhost') return true;
  const short = (h: string): string => h.split('.')[0] ?? h;
  return agent.host === hostname || short(agent.host) === short(hostname);
}

/**
 * Drift: does anything in the pane's process tree run the expected program? Any process counts, not only the
 * pane's first one, because a runtime started through a shell or wrapper is a descendant of it.
 */
function driftCheck(
  expected: Expected,
  pane: ObservedPane,
): { drift: boolean; reason: string | null; shown: ObservedProcess | null } {
  if (expected.compound) {
    // Shell syntax is started as `bash -lc "<command>"`: compare what tmux started. The pane's processes cannot
    // prove anything here, since any word of the command may be the long-running one.
    const started = unTmux(pane.startCommand);
    const ok = started.includes(unTmux(expected.program));
    return {
      drift: !ok,
      reason: ok ? null : `pane was started with '${started}', the roster's command is '${expected.program}'`,
      shown: pane.processes[0] ?? null,
    };
  }
  const names = new Set(expected.names ?? [expected.program]);
  const match = pane.processes.find(
    (p) => programNames(p.argv).some((n) => names.has(n)) || (p.exe != null && names.has(basename(p.exe))),
  );
  if (match !== undefined) return { drift: false, reason: null, shown: match };
  if (pane.processes.length === 0) {
    // The pane process vanished between tmux answering and the /proc read: tmux's own name for the foreground
    // process is the only evidence left.
    const ok = names.has(pane.currentCommand);
    return {
      drift: !ok && pane.currentCommand !== '',
      reason: ok ? null : `pane runs '${pane.currentCommand}', the roster says '${expected.program}'`,
      shown: null,
    };
  }
  // A wrapper that exec'd a differently named program keeps the pid tmux started: when the pane was started
  // with the expected program (directly or through the fleet's launcher), its first process is still that
  // start, whatever name it took since. A pane respawned with anything else has another start command.
  const started = programNames(words(unTmux(pane.startCommand)));
  if (started.some((n) => names.has(n)))
    return { drift: false, reason: null, shown: pane.processes[0] ?? null };
  const runs = pane.processes[0]?.argv.join(' ') ?? pane.currentCommand;
  return { drift: true, reason: `pane runs '${runs}', the roster says '${expected.program}'`, shown: null };
}

function heartbeatStatus(
  agent: DesiredAgent,
  runtime: RuntimeSpec | undefined,
  observed: Observed,
  pane: ObservedPane | null,
): HeartbeatStatus {
  const expected = runtime?.heartbeat ?? true;
  const hb = observed.heartbeats[agent.name];
  const nowSec = observed.nowMs / 1000;
  // The grace runs from the session's creation: a new pane has not had time to write its first heartbeat, and the
  // file it finds may be its predecessor's.
  const inGrace =
    pane !== null &&
    !pane.dead &&
    pane.created !== null &&
    nowSec - pane.created < agent.heartbeat.graceSeconds;
  if (hb === undefined || !hb.exists) {
    if (!expected) return { ageSeconds: null, health: 'none', expected };
    return { ageSeconds: null, health: inGrace ? 'grace' : 'missing', expected };
  }
  if (hb.malformed || hb.ageSeconds === null) return { ageSeconds: null, health: 'malformed', expected };
  if (hb.ageSeconds <= agent.heartbeat.staleAfterSeconds)
    return { ageSeconds: hb.ageSeconds, health: 'healthy', expected };
  return { ageSeconds: hb.ageSeconds, health: inGrace ? 'grace' : 'stale', expected };
}

/**
 * The runtime's own report, read from its heartbeat. Trusted only while the heartbeat is fresh and was written
 * for the runtime now in the pane (its `pid=` is the pane's process): a report from a previous run, or one that
 * stopped being refreshed, is `unknown`, never a stale "idle".
 */
function stateStatus(
  runtime: RuntimeSpec | undefined,
  observed: Observed,
  agent: DesiredAgent,
  pane: ObservedPane | null,
  heartbeat: HeartbeatStatus,
): StateStatus | null {
  const hb = observed.heartbeats[agent.name];
  const reported = hb?.keys.state;
  const speaks = (runtime?.state ?? 'none') !== 'none' && agent.command === null;
  if (!speaks && reported === undefined) return null;
  if (pane === null || pane.dead) return null;
  const nowSec = observed.nowMs / 1000;
  const since = Number(hb?.keys.since);
  const session = hb?.keys.session || null;
  const event = hb?.keys.event || null;
  const unknown: StateStatus = { state: 'unknown', forSeconds: null, event, session };
  if (hb === undefined || reported === undefined || !AGENT_STATES.has(reported)) {
    return heartbeat.health === 'grace'
      ? { state: 'starting', forSeconds: null, event: null, session: null }
      : unknown;
  }
  const pid = Number(hb.keys.pid);
  const current = !Number.isInteger(pid) || pid <= 0 || pane.panePid === null || pid === pane.panePid;
  if (!current) {
    return heartbeat.health === 'grace' ||
      pane.created === null ||
      nowSec - pane.created < agent.heartbeat.graceSeconds
      ? {
          state: 'starting',
          forSeconds: pane.created === null ? null : Math.max(0, Math.floor(nowSec - pane.created)),
          event: null,
          session: null,
        }
      : unknown;
  }
  if (heartbeat.health !== 'healthy') return unknown;
  // `starting` stays `starting` until the runtime's own ready signal (src/runtimes/ready.ts): never guessed idle.
  return {
    state: reported as AgentState,
    forSeconds: Number.isFinite(since) ? Math.max(0, Math.floor(nowSec - since)) : null,
    event,
    session,
  };
}

/** One agent's joined status and flags. `runtime` is the agent's runtime spec (drift and heartbeat expectations). */
export function agentStatus(agent: DesiredAgent, observed: Observed, runtimeSpec?: RuntimeSpec): AgentStatus {
  // Callers should pass the fleet's spec (fleetStatus does); without it, the built-in runtimes are the best
  // guess, so the stub runtime is still judged by its script and not by the word "stub".
  const runtime = runtimeSpec ?? builtinRuntime(agent.runtime, observed);
  const unitName = agentUnitName(agent.name);
  const unit = observed.systemd.ok ? observed.systemd.units[unitName] : undefined;
  const local = isLocalAgent(agent, observed.hostname);
  const tmuxKnown = observed.tmux.ok && observed.tmux.sockets[agent.socketName] !== undefined;
  const pane = local ? agentPane(observed, agent) : null;
  const socket = observed.tmux.sockets[agent.socketName];
  const sessionExists =
    !local || !tmuxKnown ? null : socket === undefined ? false : hasSession(socket, agent.name);
  const expected = expectedProgram(agent, runtime, observed.programs);
  const heartbeat = local
    ? heartbeatStatus(agent, runtime, observed, pane)
    : { ageSeconds: null, health: 'none' as const, expected: runtime?.heartbeat ?? true };
  const backoffEntry = observed.state.backoff[agent.name];
  const backoff =
    backoffEntry === undefined
      ? null
      : { ...backoffEntry, due: backoffEntry.nextAttemptMs <= observed.nowMs };

  const flags = new Set<HealthFlag>();
  let driftReason: string | null = null;
  let shown: ObservedProcess | null = null;
  // Another host's agent cannot be seen from here: no flag would be true, so none is raised.
  // An agent the manifest wants stopped is not expected to run: being absent is its desired state.
  if (local && agent.enabled) {
    // Missing: tmux answered and the session is not there (a stopped server counts: nothing runs).
    if (sessionExists === false) flags.add('MISSING');
    if (pane !== null && pane.dead) {
      // The program exited and remain-on-exit kept the pane: dead, which says more than "drifted".
      flags.add('DEAD');
    } else if (pane !== null) {
      const d = driftCheck(expected, pane);
      shown = d.shown;
      if (d.drift) {
        flags.add('DRIFT');
        driftReason = d.reason;
      }
    }
    // Boot-enable gap: it runs now but will not come back after a reboot. Only `enabled` survives one
    // (`enabled-runtime` lives in /run and is gone at reboot too).
    if (unit !== undefined && isActive(unit.activeState) && unit.unitFileState !== 'enabled') {
      flags.add('BOOT-ENABLE');
    }
    // Stale only for a live pane whose runtime speaks the protocol and spoke once: a missing or malformed file
    // is shown as such, because respawning cannot make a program that never heartbeat start doing so.
    if (heartbeat.expected && heartbeat.health === 'stale' && pane !== null && !pane.dead) flags.add('STALE');
  }
  // Back-off is reported while it holds and the agent needs a respawn, so the operator sees why nothing is
  // retried; a healthy agent's lingering record (kept until its reset period passes) is no news.
  const needsRespawn = flags.has('DEAD') || flags.has('MISSING') || flags.has('DRIFT') || flags.has('STALE');
  if (backoff !== null && !backoff.due && needsRespawn) flags.add('BACKOFF');

  const nowSec = Math.floor(observed.nowMs / 1000);
  const shownProcess = shown ?? pane?.processes[0] ?? null;
  return {
    agent: agent.name,
    unit: unitName,
    unitActiveState: unit?.activeState ?? '',
    unitSubState: unit?.subState ?? '',
    unitFileState: unit?.unitFileState ?? null,
    socketName: agent.socketName,
    session: agent.name,
    sessionExists,
    paneDead: pane?.dead ?? false,
    paneDeadStatus: pane?.deadStatus ?? null,
    paneDeadSignal: pane?.deadSignal ?? null,
    panePid: pane?.panePid ?? null,
    paneCommand:
      shownProcess !== null
        ? shownProcess.argv.join(' ')
        : pane !== null && pane.currentCommand !== ''
          ? pane.currentCommand
          : null,
    paneStartCommand: pane?.startCommand ?? null,
    idleSeconds: pane?.activity != null ? Math.max(0, nowSec - pane.activity) : null,
    sessionCreated: pane?.created ?? null,
    heartbeat,
    tenantId: agent.tenantId,
    host: agent.host,
    local,
    wanted: agent.enabled,
    expectedProgram: expected.program,
    driftReason,
    state: local && agent.enabled ? stateStatus(runtime, observed, agent, pane, heartbeat) : null,
    backoff,
    flags: FLAG_ORDER.filter((f) => flags.has(f)),
  };
}

function builtinRuntime(name: string, observed: Observed): RuntimeSpec | undefined {
  return builtinRuntimes({
    userHome: '',
    mosaicHome: observed.paths.mosaicHome,
    hostname: observed.hostname,
  })[name];
}

function isActive(state: string): boolean {
  return state === 'active' || state === 'activating' || state === 'reloading';
}

/** Every agent's status, sorted by name, each judged against its own runtime spec. */
export function fleetStatus(desired: DesiredFleet, observed: Observed): AgentStatus[] {
  return desired.agents.map((a) => agentStatus(a, observed, desired.runtimes[a.runtime]));
}

export interface UnmanagedSession {
  socketName: string;
  session: string;
}

/**
 * Sessions on the fleet's sockets that no manifest names (any host's agent on that socket counts as named) and
 * that are not the socket's holder. Shown so an operator notices stray work; never acted on without --prune.
 */
export function unmanagedSessions(desired: DesiredFleet, observed: Observed): UnmanagedSession[] {
  const out: UnmanagedSession[] = [];
  for (const s of desired.sockets) {
    const socket = observed.tmux.sockets[s.socketName];
    if (socket === undefined) continue;
    const named = new Set(desired.agents.filter((a) => a.socketName === s.socketName).map((a) => a.name));
    const holders = new Set(
      desired.sockets.filter((x) => x.socketName === s.socketName).map((x) => x.holderSession),
    );
    for (const session of socket.sessions) {
      if (!named.has(session) && !holders.has(session)) out.push({ socketName: s.socketName, session });
    }
  }
  return out.sort((a, b) =>
    a.socketName < b.socketName ? -1 : a.socketName > b.socketName ? 1 : a.session < b.session ? -1 : 1,
  );
}

export type ProblemKind = 'tmux-unavailable' | 'systemd-unreachable' | 'linger-off' | 'daemon-reload-needed';

export interface Problem {
  kind: ProblemKind;
  message: string;
}

/**
 * Conditions of the machine an operator must know about, beyond any single agent: a tool that cannot be
 * reached (every row is then partly unknown), linger off (user units stop at logout: the fleet dies with the
 * last session; reported, never changed for them), unit files newer than what systemd loaded.
 */
export function machineProblems(
  desired: DesiredFleet,
  observed: Observed,
  user: string | null = null,
): Problem[] {
  const problems: Problem[] = [];
  if (!observed.systemd.ok) {
    problems.push({
      kind: 'systemd-unreachable',
      message: observed.systemd.error ?? 'cannot reach the systemd user manager',
    });
  }
  if (!observed.tmux.ok) {
    problems.push({ kind: 'tmux-unavailable', message: observed.tmux.error ?? 'tmux is not usable' });
  }
  if (observed.systemd.linger === false && desired.agents.some((a) => a.enabled)) {
    const who = user ?? '$USER';
    problems.push({
      kind: 'linger-off',
      message: `linger is off: user units stop when ${user ?? 'the user'} logs out and do not start at boot (run: loginctl enable-linger ${who})`,
    });
  }
  if (observed.systemd.ok && observed.systemd.needDaemonReload) {
    problems.push({
      kind: 'daemon-reload-needed',
      message: 'unit files changed since systemd loaded them (fleet reconcile runs daemon-reload)',
    });
  }
  return problems;
}
