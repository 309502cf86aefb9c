/**
 * Learn of tmux deaths as they happen, for watch mode: one control-mode client per fleet socket, attached
 * read-only to the fleet's own holder session, and one `wait-for` client per socket that a `pane-died` hook on
 * each of our sessions wakes. Nothing polls; nothing touches a session that is not ours or the server's global
 * options (docs/convergence.md, "What wakes watch mode").
 *
 * - A closed or killed session, a killed window: the control client's `%sessions-changed` / `%window-close`
 *   notifications, which tmux sends to every control client at once.
 * - A pane whose program died (remain-on-exit keeps it, dead): the session's `pane-died` hook runs
 *   `wait-for -S CHANNEL`, which ends our waiting `tmux wait-for CHANNEL` client. A signal with nobody waiting is
 *   remembered by tmux, so a death between two waits is not lost. The hook is a session option set only on
 *   sessions carrying this home's `@mosaic-fleet-home` marker, through the control client, when they appear.
 * - A death the hook missed (tmux now and then skips it): a control-mode subscription to the server's dead panes,
 *   which tmux re-evaluates every second.
 * - The server gone (killed, crashed): the control client exits.
 *
 * When a control client connects is the caller's choice, and must be while no session is created or closed on
 * the server: tmux up to 3.5 crashes (the whole server, every agent with it) when a session appears or goes
 * while a control client is still identifying itself, or when such a client goes away before it is identified
 * (tmux pull requests 4980 and 5004; seen here as `segfault at 20` in `control_write`). So nothing here
 * connects on its own or on a timer: the watcher calls `connect()` at the end of each cycle, under the fleet
 * lock that every session-making command of ours holds, and waits until the client is in; a client still
 * identifying is never killed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { socketArgs } from '../base/names.js';

/** The `wait-for` channel the `pane-died` hooks signal (one per server; every waiter on it wakes). */
export const PANE_DIED_CHANNEL = 'mosaic-fleet-pane-died';
/** Session option marking a session whose hook is set, so it is set once per session. */
const HOOKED_OPTION = '@mosaic-fleet-events';
/**
 * The backstop for a lost hook: tmux 3.3 now and then does not run `pane-died` (2 of 40 deaths in a loop here),
 * so the control client also subscribes to the list of dead panes of the server. tmux re-evaluates a subscription
 * once a second and says when it changed: a death the hook missed is seen within a second.
 */
const DEAD_PANES_SUBSCRIPTION = 'mosaic-fleet-dead-panes';
const DEAD_PANES_FORMAT = '#{S:#{W:#{P:#{?pane_dead,#{session_id}#{pane_id} ,}}}}';

export interface TmuxSocketSpec {
  /** '' = the default socket. */
  socketName: string;
  holderSession: string;
}

export type TmuxEventKind = 'session-closed' | 'pane-died' | 'dead-pane-seen' | 'server-exit' | 'connected';

export interface TmuxEvent {
  socketName: string;
  kind: TmuxEventKind;
  /** The sessions concerned: those that closed, or whose pane is dead (empty for server-exit and connected). */
  sessions: string[];
}

export interface TmuxEventSource {
  /** Follow exactly these sockets from now on (a manifest edit may add or drop one); connects nothing. */
  setSockets(sockets: readonly TmuxSocketSpec[]): void;
  /**
   * Connect every socket whose client is down, and settle when each is in or has failed (a server that does not
   * run yet fails: the next call tries again), or after 10 s at the most. Call it only while holding the fleet
   * lock (see above).
   */
  connect(): Promise<void>;
  close(): Promise<void>;
}

export interface TmuxEventOptions {
  mosaicHome: string;
  onEvent: (event: TmuxEvent) => void;
  /** A client that could not connect: said when the reason changes, not on every attempt. */
  onProblem?: (socketName: string, message: string) => void;
  env?: NodeJS.ProcessEnv;
}

/** The `wait-for` client (a plain command client, safe to restart any time) is restarted this long after failing. */
const WAITER_RETRY_MS = 1_000;
/** How long `connect()` waits for the clients to get in (they normally do within milliseconds). */
const CONNECT_WAIT_MS = 10_000;
/** A client that is in gets this long to leave after its stdin closes before it is killed. */
const CLOSE_GRACE_MS = 2_000;

/** What a command's reply block is for. */
type Reply = 'ignore' | 'sessions' | 'dead-panes';

/** Wait for `p` (which never rejects here), or `ms` at the most. */
async function settledWithin(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([p, new Promise((r) => (timer = setTimeout(r, ms)))]);
  clearTimeout(timer);
}

/** tmux's command parser: a single-quoted word (no quote can occur in our names, but be exact anyway). */
function quoteWord(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

class SocketWatch {
  private control: ChildProcess | null = null;
  /** Settles when the client connecting now is in or has exited. */
  private connecting: Promise<void> | null = null;
  private settleConnect: (() => void) | null = null;
  private waiter: ChildProcess | null = null;
  private closed = false;
  private live = false;
  /** The last problem said (a repeat of it is not said again until a connection succeeds). */
  private lastProblem: string | null = null;
  /** Replies still due from the control client, in order: what each one is for. */
  private pending: Reply[] = [];
  private block: string[] | null = null;
  /** The dead panes the subscription last reported (`$S%P` words). */
  private deadPanes = new Set<string>();
  /** The sessions of the last listing (id -> name): a session missing from the next one closed. */
  private sessions: Map<string, string> | null = null;

  constructor(
    readonly spec: TmuxSocketSpec,
    private readonly o: TmuxEventOptions,
    private readonly env: NodeJS.ProcessEnv,
  ) {}

  private emit(kind: TmuxEventKind, sessions: string[] = []): void {
    if (!this.closed) this.o.onEvent({ socketName: this.spec.socketName, kind, sessions });
  }

  private problem(message: string): void {
    if (message === this.lastProblem || this.closed) return;
    this.lastProblem = message;
    this.o.onProblem?.(this.spec.socketName, message);
  }

  private tmux(args: string[]): ChildProcess {
    return spawn('tmux', [...socketArgs(this.spec.socketName), ...args], {
      env: this.env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
  }

  /** Start the control client unless one runs; settles when it is in or has exited (never rejects). */
  connect(): Promise<void> {
    if (this.closed) return Promise.resolve();
    if (this.connecting !== null) return this.connecting;
    if (this.control !== null) return Promise.resolve();
    this.connecting = new Promise<void>((resolve) => {
      this.settleConnect = () => {
        this.connecting = null;
        this.settleConnect = null;
        resolve();
      };
    });
    const settled = this.connecting;
    const child = this.tmux([
      '-C',
      'attach-session',
      '-t',
      `=${this.spec.holderSession}`,
      '-f',
      'read-only,ignore-size,no-output',
    ]);
    this.control = child;
    this.pending = ['ignore']; // the attach command's own reply
    this.sessions = null;
    this.block = null;
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', (error) => this.problem(`cannot run tmux: ${error.message}`));
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (line) => this.onLine(line));
    child.on('close', (code) => {
      const wasLive = this.live;
      if (this.control === child) this.control = null;
      this.live = false;
      this.stopWaiter();
      this.settleConnect?.();
      if (this.closed) return;
      // No retry of its own: the server-exit event brings a cycle, whose end connects again.
      if (wasLive) this.emit('server-exit');
      else this.problem(stderr.trim().split('\n')[0] || `tmux control client exited with code ${code}`);
    });
    // The control client reads commands from stdin and ends when it closes: keep it open, never end it.
    child.stdin?.on('error', () => undefined);
    return settled;
  }

  private send(command: string, reply: Reply): void {
    if (this.control?.stdin?.writable !== true) return;
    this.pending.push(reply);
    this.control.stdin.write(`${command}\n`);
  }

  private onLine(line: string): void {
    if (this.block !== null) {
      if (/^%(end|error) /.test(line)) {
        const what = this.pending.shift();
        const body = this.block;
        this.block = null;
        if (!line.startsWith('%end ')) return;
        if (what === 'sessions') this.onSessions(body);
        else if (what === 'dead-panes') this.onDeadPaneList(body);
      } else {
        this.block.push(line);
      }
      return;
    }
    if (line.startsWith('%begin ')) {
      this.block = [];
      return;
    }
    if (line.startsWith('%sessions-changed')) {
      // Which one: the listing says (a session gone from it closed; a new one is no news, but gets its hook).
      this.listSessions();
    } else if (line.startsWith(`%subscription-changed ${DEAD_PANES_SUBSCRIPTION} `)) {
      this.onDeadPanes(line.slice(line.indexOf(' : ') + 3));
    } else if (line.startsWith('%exit')) {
      // The server ends or our holder session went: the process exits next, and 'close' handles it.
      return;
    }
    // The first notification after attaching (`%session-changed` to the holder) says the client is in.
    if (!this.live && line.startsWith('%session-changed')) this.onConnected();
  }

  private onConnected(): void {
    this.live = true;
    this.lastProblem = null;
    this.deadPanes = new Set();
    this.startWaiter();
    this.listSessions();
    this.send(`refresh-client -B ${quoteWord(`${DEAD_PANES_SUBSCRIPTION}::${DEAD_PANES_FORMAT}`)}`, 'ignore');
    this.emit('connected');
    this.settleConnect?.();
  }

  /** A pane dead now that was not at the last report is news (a respawned one leaving the list is not). */
  private onDeadPanes(value: string): void {
    const now = new Set(value.split(' ').filter((w) => w !== ''));
    const fresh = [...now].filter((w) => !this.deadPanes.has(w));
    this.deadPanes = now;
    if (fresh.length === 0) return;
    const names = fresh.map((w) => {
      const id = /^\$\d+/.exec(w)?.[0] ?? '';
      return this.sessions?.get(id) ?? id;
    });
    this.emit('dead-pane-seen', [...new Set(names)]);
  }

  /** The hook fired: which sessions have a dead pane now (none left: already respawned, nothing to say). */
  private onDeadPaneList(lines: string[]): void {
    const names = [...new Set(lines.filter((l) => l !== ''))];
    if (names.length > 0) this.emit('pane-died', names);
  }

  private listSessions(): void {
    // Session id, whether hooked, whether ours, then the name (the rest of the line).
    // tmux prints control characters as '_', so no tab separators.
    // Whether the marker names our home is asked of tmux itself, so a name may hold anything (spaces included).
    const home = this.o.mosaicHome.replace(/[#,}]/g, '#$&');
    this.send(
      `list-sessions -F ${quoteWord(
        `#{session_id} #{?${HOOKED_OPTION},1,0} #{?#{==:#{@mosaic-fleet-home},${home}},1,0} #{session_name}`,
      )}`,
      'sessions',
    );
  }

  /** Say which sessions closed since the last listing, and hook each of ours that has no hook yet. */
  private onSessions(lines: string[]): void {
    const now = new Map<string, string>();
    const rows = lines.flatMap((line) => {
      const m = /^(\$\d+) ([01]) ([01]) (.*)$/.exec(line);
      if (m === null) return [];
      const [, id = '', hooked, ours, name = ''] = m;
      now.set(id, name);
      return [{ id, hooked: hooked === '1', ours: ours === '1' }];
    });
    const before = this.sessions;
    this.sessions = now;
    if (before !== null) {
      const closed = [...before].filter(([id]) => !now.has(id)).map(([, name]) => name);
      if (closed.length > 0) this.emit('session-closed', closed);
    }
    for (const m of rows) {
      if (m.hooked || !m.ours) continue;
      // `$ID:` (the colon): set-hook's target is a pane, so the bare session form would not resolve.
      // A session that ended since the listing makes its commands fail, which is harmless.
      const target = quoteWord(`${m.id}:`);
      this.send(`set-hook -t ${target} pane-died ${quoteWord(`wait-for -S ${PANE_DIED_CHANNEL}`)}`, 'ignore');
      this.send(`set-option -t ${target} ${HOOKED_OPTION} 1`, 'ignore');
    }
  }

  private startWaiter(): void {
    if (this.closed || this.waiter !== null || !this.live) return;
    const child = this.tmux(['wait-for', PANE_DIED_CHANNEL]);
    this.waiter = child;
    child.stdin?.end();
    child.on('error', () => undefined);
    child.on('close', (code) => {
      if (this.waiter !== child) return;
      this.waiter = null;
      if (this.closed || !this.live) return;
      if (code === 0) {
        this.send(`list-panes -a -F ${quoteWord('#{?pane_dead,#{session_name},}')}`, 'dead-panes');
        this.startWaiter();
      } else {
        // The server went away under the waiter (the control client's exit says so), or tmux hiccuped.
        setTimeout(() => this.startWaiter(), WAITER_RETRY_MS).unref();
      }
    });
  }

  private stopWaiter(): void {
    const w = this.waiter;
    this.waiter = null;
    if (w !== null && w.exitCode === null && w.signalCode === null) w.kill('SIGTERM');
  }

  async close(): Promise<void> {
    // A client still identifying itself must not go away (tmux would crash): let it get in first (a tmux client
    // stuck for longer than connect() waits is broken anyway).
    if (this.connecting !== null) await settledWithin(this.connecting, CONNECT_WAIT_MS);
    this.closed = true;
    const children = [this.control, this.waiter].filter((c): c is ChildProcess => c !== null);
    this.stopWaiter();
    const control = this.control;
    this.control = null;
    // Closing stdin detaches a control client cleanly; a kill is the fallback.
    control?.stdin?.end();
    await Promise.all(
      children.map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.exitCode !== null || c.signalCode !== null) return resolve();
            const t = setTimeout(() => c.kill('SIGKILL'), CLOSE_GRACE_MS);
            c.once('close', () => {
              clearTimeout(t);
              resolve();
            });
          }),
      ),
    );
  }
}

export function watchTmuxEvents(o: TmuxEventOptions): TmuxEventSource {
  // The socket rule alone picks the server: a $TMUX inherited from an enclosing pane must not.
  const env: NodeJS.ProcessEnv = { ...(o.env ?? process.env) };
  delete env.TMUX;
  const watches = new Map<string, SocketWatch>();
  const key = (s: TmuxSocketSpec): string => `${s.socketName}\0${s.holderSession}`;
  return {
    setSockets(sockets) {
      const wanted = new Map(sockets.map((s) => [key(s), s]));
      for (const [k, w] of watches) {
        if (!wanted.has(k)) {
          watches.delete(k);
          void w.close();
        }
      }
      for (const [k, s] of wanted) if (!watches.has(k)) watches.set(k, new SocketWatch(s, o, env));
    },
    async connect() {
      // A tmux that neither lets a client in nor ends it is broken: the caller's lock is not held for it forever.
      await settledWithin(Promise.all([...watches.values()].map((w) => w.connect())), CONNECT_WAIT_MS);
    },
    async close() {
      const all = [...watches.values()];
      watches.clear();
      await Promise.all(all.map((w) => w.close()));
    },
  };
}
