/**
 * Learn at once when one of our systemd units changes ActiveState (stopped, failed, started by someone), for
 * watch mode. One socket to the user manager, no child process, no polling:
 *
 * - Preferred: the manager's private socket, `$XDG_RUNTIME_DIR/systemd/private` (what `systemctl --user` itself
 *   talks to; no bus daemon needs to run). systemd sends its unit signals to every connection
 *   on it unconditionally (src/core/dbus.c, bus_foreach_bus), so after authenticating we only listen. It is a
 *   peer-to-peer connection: no bus daemon, so no `Hello`, no match rules.
 * - Otherwise the user bus (`DBUS_SESSION_BUS_ADDRESS`, else `$XDG_RUNTIME_DIR/bus`): `Hello`, a match rule for
 *   systemd's signals, then `Manager.Subscribe()`, without which systemd sends nothing to bus clients.
 *
 * The connection counts as up once systemd has answered a call (a `Peer.Ping` on the private socket, `Subscribe`
 * on the bus): from then on no state change is missed, which is what `onConnected` promises. A socket that is
 * missing, refuses us or drops is reported through `onError` once per streak of failures, and retried with a
 * back-off; watch mode's periodic resync covers the gap.
 */
import { lstatSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { join } from 'node:path';
import {
  encodeMessage,
  MESSAGE_TYPE,
  speakDbus,
  type DbusMessage,
  type DbusValue,
  type Variant,
} from './dbus-wire.js';

export interface UnitEvent {
  /** The unit's name, e.g. `mosaic-agent@alice.service`. */
  unit: string;
  /** The new ActiveState (`inactive`, `failed`, `activating`, `active`, `deactivating`, ...); absent when systemd
   * only said that it changed. */
  activeState?: string;
}

export interface UnitEventTransport {
  kind: 'private' | 'user-bus';
  /** The socket connected to (an abstract socket's name starts with NUL). */
  socketPath: string;
}

export interface UnitEventOptions {
  /**
   * The connection is up and every later change will be reported. Called again after each reconnection: state
   * changes in between were missed, so a caller may want to converge then.
   */
  onConnected?: (transport: UnitEventTransport) => void;
}

export interface UnitEventSource {
  /** The live connection's transport; null while not connected. */
  transport(): UnitEventTransport | null;
  /** Close the socket and cancel retries; resolves when the socket is closed. Idempotent. */
  close(): Promise<void>;
}

const UNIT_PATH_PREFIX = '/org/freedesktop/systemd1/unit/';
const UNIT_INTERFACE = 'org.freedesktop.systemd1.Unit';
const SYSTEMD_NAME = 'org.freedesktop.systemd1';
const RETRY_MIN_MS = 500;
const RETRY_MAX_MS = 30_000;
/** A manager that accepts the connection but says nothing for this long is treated as unreachable. */
const HANDSHAKE_TIMEOUT_MS = 5_000;

/** Our units: agents, the tmux holder, and the reconciler's own (timer, service). */
export function isFleetUnit(name: string): boolean {
  return (
    /^mosaic-agent@[^@/]+\.service$/.test(name) ||
    name === 'mosaic-tmux-holder.service' ||
    name.startsWith('mosaic-fleet-')
  );
}

/**
 * The unit name an object path stands for. systemd escapes every byte that is not a letter or (past the first
 * position) a digit as `_xx` in hex: `mosaic_2dagent_40a_2eservice` is `mosaic-agent@a.service`.
 */
export function unitNameFromPath(path: string): string | null {
  if (!path.startsWith(UNIT_PATH_PREFIX)) return null;
  const label = path.slice(UNIT_PATH_PREFIX.length);
  if (label === '' || label === '_' || label.includes('/')) return null;
  const bytes: number[] = [];
  for (let i = 0; i < label.length; i++) {
    if (label[i] === '_') {
      const hex = label.slice(i + 1, i + 3);
      if (!/^[0-9a-fA-F]{2}$/.test(hex)) return null;
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else bytes.push(label.charCodeAt(i));
  }
  return Buffer.from(bytes).toString('utf8');
}

/** The socket of the first `unix:` entry of a D-Bus address (`unix:path=/run/user/1000/bus,guid=...`). */
export function unixSocketOf(address: string): string | null {
  for (const entry of address.split(';')) {
    const colon = entry.indexOf(':');
    if (colon === -1 || entry.slice(0, colon) !== 'unix') continue;
    const params = new Map<string, string>();
    for (const kv of entry.slice(colon + 1).split(',')) {
      const eq = kv.indexOf('=');
      if (eq === -1) continue;
      // Values are %-escaped; an invalid escape leaves the value as written.
      const raw = kv.slice(eq + 1);
      let value = raw;
      try {
        value = decodeURIComponent(raw);
      } catch {
        // keep raw
      }
      params.set(kv.slice(0, eq), value);
    }
    const path = params.get('path');
    if (path) return path;
    const abstract = params.get('abstract');
    if (abstract) return `\0${abstract}`;
  }
  return null;
}

function ownSocket(path: string, uid: number): boolean {
  try {
    // lstat: a symbolic link planted in the runtime dir is not followed.
    const st = lstatSync(path);
    return st.isSocket() && st.uid === uid;
  } catch {
    return false;
  }
}

/** Where to listen: the private socket when it is there and ours, else the user bus; or why neither works. */
export function chooseTransport(
  env: NodeJS.ProcessEnv,
  uid: number,
): UnitEventTransport | { problem: string } {
  const runtime = env.XDG_RUNTIME_DIR;
  if (runtime) {
    const socketPath = join(runtime, 'systemd', 'private');
    if (ownSocket(socketPath, uid)) return { kind: 'private', socketPath };
  }
  const address = env.DBUS_SESSION_BUS_ADDRESS;
  if (address) {
    const socketPath = unixSocketOf(address);
    if (socketPath !== null) return { kind: 'user-bus', socketPath };
    return { problem: `DBUS_SESSION_BUS_ADDRESS names no unix socket (${address})` };
  }
  if (runtime) {
    const socketPath = join(runtime, 'bus');
    if (ownSocket(socketPath, uid)) return { kind: 'user-bus', socketPath };
    return {
      problem: `no socket of the systemd user manager: neither ${join(runtime, 'systemd', 'private')} nor a user bus (${socketPath}) is there and ours`,
    };
  }
  return { problem: 'XDG_RUNTIME_DIR is not set: cannot find the systemd user manager' };
}

/** The calls that set a connection up; the connection is up when the last one is answered. */
function handshakeCalls(kind: UnitEventTransport['kind']): Array<{ member: string; message: Buffer }> {
  const call = (
    serial: number,
    m: { path: string; interface: string; member: string; destination?: string; body?: string },
  ) => ({
    member: m.member,
    message: encodeMessage({
      type: MESSAGE_TYPE.METHOD_CALL,
      serial,
      path: m.path,
      interface: m.interface,
      member: m.member,
      destination: m.destination,
      ...(m.body === undefined ? {} : { signature: 's', body: [m.body] }),
    }),
  });
  if (kind === 'private') {
    // Nothing to ask for; the answer proves systemd has taken our BEGIN, so its next signal reaches us.
    return [
      call(1, { path: '/org/freedesktop/systemd1', interface: 'org.freedesktop.DBus.Peer', member: 'Ping' }),
    ];
  }
  const dbus = {
    path: '/org/freedesktop/DBus',
    interface: 'org.freedesktop.DBus',
    destination: 'org.freedesktop.DBus',
  };
  return [
    call(1, { ...dbus, member: 'Hello' }),
    call(2, {
      ...dbus,
      member: 'AddMatch',
      body: `type='signal',sender='${SYSTEMD_NAME}',path_namespace='/org/freedesktop/systemd1'`,
    }),
    // systemd leaving or replacing itself on the bus ends our subscription: reconnect then.
    call(3, {
      ...dbus,
      member: 'AddMatch',
      body: `type='signal',sender='org.freedesktop.DBus',member='NameOwnerChanged',arg0='${SYSTEMD_NAME}'`,
    }),
    call(4, {
      path: '/org/freedesktop/systemd1',
      interface: 'org.freedesktop.systemd1.Manager',
      member: 'Subscribe',
      destination: SYSTEMD_NAME,
    }),
  ];
}

/** The ActiveState a `PropertiesChanged` signal reports, null when it is not about ActiveState. */
function activeStateChange(msg: DbusMessage): { activeState?: string } | null {
  if (msg.signature !== 'sa{sv}as' || msg.body[0] !== UNIT_INTERFACE) return null;
  for (const entry of msg.body[1] as DbusValue[]) {
    const [name, variant] = entry as [string, Variant];
    if (name === 'ActiveState' && typeof variant.value === 'string') return { activeState: variant.value };
  }
  if ((msg.body[2] as string[]).includes('ActiveState')) return {};
  return null;
}

class UnitEventWatch implements UnitEventSource {
  private socket: Socket | null = null;
  private live: UnitEventTransport | null = null;
  private closed = false;
  private closing: Promise<void> | null = null;
  private retryMs = RETRY_MIN_MS;
  private retryTimer: NodeJS.Timeout | null = null;
  private problemSaid = false;
  /** Last ActiveState seen per unit on this connection: a signal repeating it is no news. */
  private states = new Map<string, string>();

  constructor(
    private readonly env: NodeJS.ProcessEnv,
    private readonly onEvent: (e: UnitEvent) => void,
    private readonly onError: (err: Error) => void,
    private readonly options: UnitEventOptions,
  ) {
    // Not from the constructor: onError may be called, and the caller's own variables are not assigned yet.
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.connect();
    }, 0);
  }

  transport(): UnitEventTransport | null {
    return this.live;
  }

  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      this.closed = true;
      if (this.retryTimer !== null) clearTimeout(this.retryTimer);
      this.retryTimer = null;
      const socket = this.socket;
      if (socket === null || socket.destroyed) {
        resolve();
        return;
      }
      socket.once('close', () => resolve());
      socket.destroy();
    });
    return this.closing;
  }

  /** Once per streak of failures: a watcher retrying every 30 s must not log every 30 s. */
  private report(err: Error): void {
    if (this.problemSaid || this.closed) return;
    this.problemSaid = true;
    this.onError(err);
  }

  private scheduleRetry(): void {
    if (this.closed || this.retryTimer !== null) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.connect();
    }, this.retryMs);
    this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
  }

  private connect(): void {
    if (this.closed || this.socket !== null) return;
    const uid = process.getuid?.();
    const t = uid === undefined ? { problem: 'no user id on this platform' } : chooseTransport(this.env, uid);
    if ('problem' in t) {
      this.report(new Error(`systemd unit events unavailable: ${t.problem}`));
      this.scheduleRetry();
      return;
    }
    let socket: Socket;
    try {
      socket = createConnection(t.socketPath);
    } catch (error) {
      this.report(new Error(`cannot listen to systemd on ${t.socketPath}: ${String(error)}`));
      this.scheduleRetry();
      return;
    }
    this.socket = socket;
    this.states = new Map();
    let cause: Error | null = null;
    const drop = (err: Error): void => {
      cause ??= err;
      socket.destroy();
    };
    const timer = setTimeout(
      () => drop(new Error(`systemd did not answer within ${HANDSHAKE_TIMEOUT_MS} ms`)),
      HANDSHAKE_TIMEOUT_MS,
    );

    const calls = handshakeCalls(t.kind);
    const awaiting = new Map(calls.map((c, i) => [i + 1, c.member]));

    const onMessage = (msg: DbusMessage): void => {
      if (msg.type === MESSAGE_TYPE.METHOD_RETURN || msg.type === MESSAGE_TYPE.ERROR) {
        const member = msg.replySerial === undefined ? undefined : awaiting.get(msg.replySerial);
        if (member === undefined) return;
        if (msg.type === MESSAGE_TYPE.ERROR) {
          const detail = typeof msg.body[0] === 'string' ? `: ${msg.body[0]}` : '';
          drop(new Error(`${member} failed: ${msg.errorName ?? 'error'}${detail}`));
          return;
        }
        awaiting.delete(msg.replySerial!);
        if (awaiting.size === 0) {
          clearTimeout(timer);
          this.live = t;
          this.retryMs = RETRY_MIN_MS;
          this.problemSaid = false;
          try {
            this.options.onConnected?.(t);
          } catch (error) {
            this.onError(error instanceof Error ? error : new Error(String(error)));
          }
        }
        return;
      }
      // Method calls to us are not answered: nothing has reason to call a listener, and a caller times out.
      if (msg.type !== MESSAGE_TYPE.SIGNAL) return;
      if (msg.member === 'NameOwnerChanged' && msg.interface === 'org.freedesktop.DBus') {
        if (msg.body[0] === SYSTEMD_NAME) drop(new Error('systemd left or rejoined the user bus'));
        return;
      }
      if (msg.member !== 'PropertiesChanged' || msg.interface !== 'org.freedesktop.DBus.Properties') return;
      const unit = unitNameFromPath(msg.path ?? '');
      if (unit === null || !isFleetUnit(unit)) return;
      const change = activeStateChange(msg);
      if (change === null) return;
      // systemd sends ActiveState with every change of any Unit property: report only a different one.
      if (change.activeState !== undefined) {
        if (this.states.get(unit) === change.activeState) return;
        this.states.set(unit, change.activeState);
      } else this.states.delete(unit);
      try {
        this.onEvent({ unit, ...change });
      } catch (error) {
        this.onError(error instanceof Error ? error : new Error(String(error)));
      }
    };

    speakDbus(socket, uid!, t.socketPath, {
      authenticated: () => socket.write(Buffer.concat(calls.map((c) => c.message))),
      message: onMessage,
      fail: drop,
    });
    socket.on('error', (err) => {
      cause ??= err;
    });
    socket.on('close', () => {
      clearTimeout(timer);
      if (this.socket === socket) this.socket = null;
      const wasLive = this.live !== null;
      this.live = null;
      if (this.closed) return;
      const why = cause?.message ?? 'the manager closed the connection';
      this.report(
        new Error(
          wasLive
            ? `lost the connection to systemd on ${t.socketPath} (${why}); reconnecting`
            : `cannot listen to systemd on ${t.socketPath}: ${why}`,
          cause === null ? undefined : { cause },
        ),
      );
      this.scheduleRetry();
    });
  }
}

/**
 * Report every ActiveState change of our units (`isFleetUnit`) as it happens, within milliseconds of systemd's
 * own. Never throws: a missing or unusable socket goes to `onError` (once per failure streak) and is retried.
 * The first signal seen for a unit on a connection is reported even if its state did not change.
 */
export function watchUnitEvents(
  env: NodeJS.ProcessEnv,
  onEvent: (e: UnitEvent) => void,
  onError: (err: Error) => void,
  options: UnitEventOptions = {},
): UnitEventSource {
  return new UnitEventWatch(env, onEvent, onError, options);
}
