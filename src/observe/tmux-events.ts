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
 * The sockets' servers may not run yet (no agents): each client is retried with a back-off, and `poke()` retries
 * at once (after a cycle that may have started a server).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { socketArgs } from '../render/names.js';

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
  /** Follow exactly these sockets from now on (a manifest edit may add or drop one). */
  setSockets(sockets: readonly TmuxSocketSpec[]): void;
  /** Reconnect now every socket whose client is down (a cycle may just have started its server). */
  poke(): void;
  /** Sockets with a live control client, for the log and tests. */
  connected(): string[];
  close(): Promise<void>;
}

export interface TmuxEventOptions {
  mosaicHome: string;
  onEvent: (event: TmuxEvent) => void;
  /** A client that could not start or ended: said once per failure streak, not on every retry. */
  onProblem?: (socketName: string, message: string) => void;
  env?: NodeJS.ProcessEnv;
}

const RETRY_MIN_MS = 1_000;

/** What a command's reply block is for. */
type Reply = 'ignore' | 'sessions' | 'dead-panes';
const RETRY_MAX_MS = 30_000;

/** tmux's command parser: a single-quoted word (no quote can occur in our names, but be exact anyway). */
function quoteWord(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

class SocketWatch {
  private control: ChildProcess | null = null;
  private waiter: ChildProcess | null = null;
  private retryMs = RETRY_MIN_MS;
  private retryTimer: NodeJS.Timeout | null = null;
  private closed = false;
  private live = false;
  private problemSaid = false;
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
  ) {
    this.connect();
  }

  get connected(): boolean {
    return this.live;
  }

  private emit(kind: TmuxEventKind, sessions: string[] = []): void {
    if (!this.closed) this.o.onEvent({ socketName: this.spec.socketName, kind, sessions });
  }

  private problem(message: string): void {
    if (this.problemSaid || this.closed) return;
    this.problemSaid = true;
    this.o.onProblem?.(this.spec.socketName, message);
  }

  private tmux(args: string[]): ChildProcess {
    return spawn('tmux', [...socketArgs(this.spec.socketName), ...args], {
      env: this.env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
  }

  /** Start the control client unless one runs or a retry is already scheduled. */
  connect(): void {
    if (this.closed || this.control !== null) return;
    if (this.retryTimer !== null) {
      clearTimeout(this.retryTimer);
      this.retryTimer = null;
    }
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
      this.control = null;
      this.live = false;
      this.stopWaiter();
      if (this.closed) return;
      if (wasLive) this.emit('server-exit');
      else this.problem(stderr.trim().split('\n')[0] || `tmux control client exited with code ${code}`);
      this.scheduleRetry();
    });
    // The control client reads commands from stdin and ends when it closes: keep it open, never end it.
    child.stdin?.on('error', () => undefined);
  }

  private scheduleRetry(): void {
    if (this.closed || this.retryTimer !== null) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.connect();
    }, this.retryMs);
    this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
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
    this.retryMs = RETRY_MIN_MS;
    this.problemSaid = false;
    this.deadPanes = new Set();
    this.startWaiter();
    this.listSessions();
    this.send(`refresh-client -B ${quoteWord(`${DEAD_PANES_SUBSCRIPTION}::${DEAD_PANES_FORMAT}`)}`, 'ignore');
    this.emit('connected');
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
        // The server went away under the waiter; the control client's exit reconnects both.
        setTimeout(() => this.startWaiter(), RETRY_MIN_MS).unref();
      }
    });
  }

  private stopWaiter(): void {
    const w = this.waiter;
    this.waiter = null;
    if (w !== null && w.exitCode === null && w.signalCode === null) w.kill('SIGTERM');
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
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
            const t = setTimeout(() => c.kill('SIGKILL'), 2_000);
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
    poke() {
      for (const w of watches.values()) w.connect();
    },
    connected() {
      return [...watches.values()].filter((w) => w.connected).map((w) => w.spec.socketName);
    },
    async close() {
      const all = [...watches.values()];
      watches.clear();
      await Promise.all(all.map((w) => w.close()));
    },
  };
}
