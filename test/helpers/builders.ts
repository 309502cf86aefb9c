/**
 * In-memory builders for Desired and Observed, for pure tests (health, planner, renderers).
 *
 *   const a = agent('coder0', { runtime: 'pi' });
 *   const o = observedBuilder().healthyAgent(a, { argv: ['pi', '--model', 'x'] }).build();
 *
 * Defaults describe a quiet machine: systemd and tmux reachable, nothing running, no files, empty state.
 */
import { plainRuntime } from '../../src/runtimes/index.js';
import type { DesiredAgent, DesiredFleet, RuntimeSpec } from '../../src/model/desired.js';
import type {
  BackoffEntry,
  Observed,
  ObservedFile,
  ObservedPane,
  ObservedProcess,
  ObservedSocket,
  ObservedUnit,
} from '../../src/model/observed.js';
import { parseHeartbeat } from '../../src/observe/files.js';
import { agentUnitName } from '../../src/base/names.js';

/** A fixed "now" (2027-01-15T08:00:00Z), so ages in tests are exact. */
export const NOW_MS = 1_800_000_000_000;
export const NOW_SEC = NOW_MS / 1000;
export const HOME = '/home/op/.config/mosaic';
export const UNIT_DIR = '/home/op/xdg-config/systemd/user';
export const HOSTNAME = 'testhost';
export const SOCKET = 'mosaic-fleet';

export function runtime(name: string, over: Partial<RuntimeSpec> = {}): RuntimeSpec {
  return { ...plainRuntime(name), heartbeat: true, ...over };
}

export function agent(name: string, over: Partial<DesiredAgent> = {}): DesiredAgent {
  return {
    name,
    runtime: 'pi',
    class: null,
    modelHint: null,
    workingDirectory: '/home/op/work',
    command: null,
    host: null,
    enabled: true,
    socketName: SOCKET,
    holderSession: '_holder',
    tenantId: null,
    heartbeat: { staleAfterSeconds: 60, graceSeconds: 30, respawnOnStale: true },
    resume: null,
    source: { file: `${HOME}/fleet/roster.yaml`, line: 1, col: 1 },
    ...over,
  };
}

/** A fleet of `agents`: runtimes default to a plain spec per runtime name used; sockets derived from the agents. */
export function fleet(agents: DesiredAgent[], over: Partial<DesiredFleet> = {}): DesiredFleet {
  const runtimes: Record<string, RuntimeSpec> = {};
  for (const a of agents) runtimes[a.runtime] ??= runtime(a.runtime);
  const sockets = new Map<string, string>();
  for (const a of agents) if (!sockets.has(a.socketName)) sockets.set(a.socketName, a.holderSession);
  return {
    sources: [`${HOME}/fleet/roster.yaml`],
    tenantId: null,
    runtimes: { ...runtimes, ...over.runtimes },
    agents: [...agents].sort((x, y) => (x.name < y.name ? -1 : 1)),
    sockets: [...sockets]
      .sort(([x], [y]) => (x < y ? -1 : 1))
      .map(([socketName, holderSession]) => ({ socketName, holderSession })),
    reconcile: { mode: 'none', intervalSeconds: 120 },
    ...over,
  };
}

export interface PaneSpec {
  /** Argv of the pane process, then of each descendant (each a child of the previous one). */
  argv?: string[];
  descendants?: string[][];
  pid?: number;
  dead?: boolean;
  deadStatus?: number | null;
  /** Seconds before NOW the session was created (default 3600). */
  createdAgo?: number;
  /** Seconds before NOW the pane last printed (default 5). */
  idle?: number;
  startCommand?: string;
  currentCommand?: string;
  window?: number;
  pane?: number;
  /**
   * The session's fleet marker (`@mosaic-fleet-home`): default HOME, as the start script sets it; null for a
   * session someone else started (no marker), or another home's path.
   */
  owner?: string | null;
}

export interface UnitSpec {
  active?: string;
  sub?: string;
  load?: string;
  /** enabled | disabled | ... ; null = no unit file. Default 'enabled'. */
  fileState?: string | null;
}

let nextPid = 1000;

export class ObservedBuilder {
  readonly o: Observed;

  constructor(base?: Observed) {
    // From a base observation (e.g. a converged one) so a test can change one thing on top of it.
    this.o =
      base !== undefined
        ? structuredClone(base)
        : {
            nowMs: NOW_MS,
            hostname: HOSTNAME,
            paths: { mosaicHome: HOME, unitDir: UNIT_DIR },
            systemd: { ok: true, error: null, units: {}, needDaemonReload: false, linger: true },
            tmux: { ok: true, error: null, sockets: {} },
            heartbeats: {},
            files: {},
            envFileAgents: [],
            state: { version: 1, written: {}, backoff: {} },
          };
  }

  unit(name: string, spec: UnitSpec = {}): this {
    const unit: ObservedUnit = {
      name,
      loadState: spec.load ?? 'loaded',
      activeState: spec.active ?? 'active',
      subState: spec.sub ?? (spec.active === undefined || spec.active === 'active' ? 'exited' : 'dead'),
      unitFileState: spec.fileState === undefined ? 'enabled' : spec.fileState,
    };
    this.o.systemd.units[name] = unit;
    return this;
  }

  /** A tmux server on `socketName` (running, no sessions yet). */
  socket(socketName: string): ObservedSocket {
    let s = this.o.tmux.sockets[socketName];
    if (s === undefined) {
      s = { socketName, serverRunning: true, sessions: [], panes: [] };
      this.o.tmux.sockets[socketName] = s;
    }
    return s;
  }

  /** Socket observed with no server on it. */
  noServer(socketName: string): this {
    this.o.tmux.sockets[socketName] = { socketName, serverRunning: false, sessions: [], panes: [] };
    return this;
  }

  session(socketName: string, name: string, spec: PaneSpec = {}): this {
    const s = this.socket(socketName);
    const pid = spec.pid ?? nextPid++;
    const processes: ObservedProcess[] = [];
    if (!spec.dead) {
      const chain = [spec.argv ?? ['bash'], ...(spec.descendants ?? [])];
      let parent = 1;
      let p = pid;
      for (const argv of chain) {
        processes.push({ pid: p, ppid: parent, argv });
        parent = p;
        p = nextPid++;
      }
    }
    const pane: ObservedPane = {
      session: name,
      window: spec.window ?? 0,
      pane: spec.pane ?? 0,
      panePid: pid,
      currentCommand: spec.currentCommand ?? (spec.argv?.[0] ?? 'bash').split('/').pop() ?? '',
      dead: spec.dead ?? false,
      deadStatus: spec.dead ? (spec.deadStatus ?? 1) : null,
      startCommand: spec.startCommand ?? (spec.argv ?? ['bash']).join(' '),
      activity: NOW_SEC - (spec.idle ?? 5),
      created: NOW_SEC - (spec.createdAgo ?? 3600),
      path: '/home/op/work',
      processes,
    };
    if (!s.sessions.includes(name)) s.sessions.push(name);
    s.sessions.sort();
    s.panes.push(pane);
    const owner = spec.owner === undefined ? HOME : spec.owner;
    s.owners ??= {};
    if (owner === null) delete s.owners[name];
    else s.owners[name] = owner;
    return this;
  }

  /** Remove a session (and its panes) from a socket: "the session is missing". */
  withoutSession(socketName: string, name: string): this {
    const s = this.o.tmux.sockets[socketName];
    if (s !== undefined) {
      s.sessions = s.sessions.filter((x) => x !== name);
      s.panes = s.panes.filter((p) => p.session !== name);
      if (s.owners) delete s.owners[name];
    }
    return this;
  }

  /** Remove a file (and, for an env file, the agent from `envFileAgents`). */
  withoutFile(path: string): this {
    delete this.o.files[path];
    const m = /\/fleet\/agents\/([^/]+)\.env$/.exec(path);
    if (m) this.o.envFileAgents = this.o.envFileAgents.filter((a) => a !== m[1]);
    return this;
  }

  linger(on: boolean | null): this {
    this.o.systemd.linger = on;
    return this;
  }

  needDaemonReload(on = true): this {
    this.o.systemd.needDaemonReload = on;
    return this;
  }

  /** Record that the reconciler last wrote `content` to `path` (state file), so edits can be told apart. */
  written(path: string, sha: string): this {
    this.o.state.written[path] = sha;
    return this;
  }

  /** A heartbeat file with raw content. */
  heartbeatRaw(agentName: string, content: string): this {
    this.o.heartbeats[agentName] = parseHeartbeat(
      agentName,
      `${HOME}/fleet/run/${agentName}.hb`,
      content,
      NOW_MS,
    );
    return this;
  }

  /** A well-formed heartbeat written `ageSeconds` ago. */
  heartbeat(agentName: string, ageSeconds: number): this {
    return this.heartbeatRaw(agentName, `ts=${NOW_SEC - ageSeconds}\npid=42\n`);
  }

  backoff(agentName: string, entry: Partial<BackoffEntry> = {}): this {
    this.o.state.backoff[agentName] = {
      attempts: 1,
      lastAttemptMs: NOW_MS - 10_000,
      nextAttemptMs: NOW_MS + 20_000,
      ...entry,
    };
    return this;
  }

  file(path: string, content: string | null, mode = 0o644): this {
    const f: ObservedFile = { path, content, mode: content === null ? null : mode };
    this.o.files[path] = f;
    return this;
  }

  envFile(agentName: string, content: string): this {
    this.file(`${HOME}/fleet/agents/${agentName}.env`, content);
    if (!this.o.envFileAgents.includes(agentName)) this.o.envFileAgents.push(agentName);
    this.o.envFileAgents.sort();
    return this;
  }

  /** A running, enabled unit + live session + fresh heartbeat for `a`. The pane runs `argv` (default: runtime name). */
  healthyAgent(a: DesiredAgent, spec: PaneSpec = {}): this {
    this.unit(agentUnitName(a.name));
    this.session(a.socketName, a.name, { argv: [a.runtime], ...spec });
    this.heartbeat(a.name, 3);
    return this;
  }

  systemdDown(error = 'cannot reach the systemd user manager: Failed to connect to bus'): this {
    this.o.systemd = { ...this.o.systemd, ok: false, error, units: {} };
    return this;
  }

  tmuxMissing(error = 'tmux not found on PATH'): this {
    this.o.tmux = { ok: false, error, sockets: {} };
    return this;
  }

  build(): Observed {
    return structuredClone(this.o);
  }
}

export function observedBuilder(base?: Observed): ObservedBuilder {
  return new ObservedBuilder(base);
}
