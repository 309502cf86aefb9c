/**
 * Questions to the systemd user manager over D-Bus, in this process: what `systemctl --user list-units`,
 * `list-unit-files`, `show -p NeedDaemonReload` and `show-environment` ask it, without starting systemctl four
 * times (each start costs more than the manager's answer: 6–12 ms of a loaded 2-core machine, and blocks our main
 * thread while it forks). One connection per observation, the same socket systemctl uses: the manager's private
 * socket when it is there and ours, else the user bus (src/observe/unit-events.ts, chooseTransport).
 *
 * Every failure (no socket, refused, an error reply, no answer within the timeout) makes `openManagerBus` or a
 * call reject; the caller then asks systemctl as before, whose own words name the problem to the operator.
 */
import { createConnection, type Socket } from 'node:net';
import { encodeMessage, MESSAGE_TYPE, type DbusMessage, speakDbus, type DbusValue } from './dbus-wire.js';
import { chooseTransport, type UnitEventTransport } from './unit-events.js';

export const MANAGER_PATH = '/org/freedesktop/systemd1';
export const MANAGER_INTERFACE = 'org.freedesktop.systemd1.Manager';
export const UNIT_INTERFACE = 'org.freedesktop.systemd1.Unit';
export const PROPERTIES_INTERFACE = 'org.freedesktop.DBus.Properties';
const SYSTEMD_NAME = 'org.freedesktop.systemd1';
/** systemctl's own default is 25 s; a manager this slow is better asked through systemctl, which says so. */
const TIMEOUT_MS = 5_000;

export interface ManagerBus {
  /** Call a method; resolves with the reply's body, rejects on an error reply, a timeout or a lost socket. */
  call(
    path: string,
    iface: string,
    member: string,
    signature?: string,
    body?: DbusValue[],
  ): Promise<DbusValue[]>;
  /** `Properties.Get`: the property's value (the variant unwrapped). */
  get(path: string, iface: string, property: string): Promise<DbusValue>;
  close(): void;
}

interface Pending {
  member: string;
  resolve: (body: DbusValue[]) => void;
  reject: (error: Error) => void;
}

/** One connection's mutable state, shared by the bus object and the socket's handlers. */
interface Connection {
  readonly socket: Socket;
  readonly transport: UnitEventTransport;
  serial: number;
  failure: Error | null;
  readonly pending: Map<number, Pending>;
}

/** The calls over an open connection; `timer` is the connection's timeout, cleared on close. */
function busOver(c: Connection, timer: ReturnType<typeof setTimeout>): ManagerBus {
  const { socket, transport: t, pending } = c;
  const bus: ManagerBus = {
    call(path, iface, member, signature, body) {
      if (c.failure !== null || socket.destroyed)
        return Promise.reject(c.failure ?? new Error('connection closed'));
      c.serial += 1;
      const serial = c.serial;
      const message = encodeMessage({
        type: MESSAGE_TYPE.METHOD_CALL,
        serial,
        path,
        interface: iface,
        member,
        ...(t.kind === 'user-bus' ? { destination: SYSTEMD_NAME } : {}),
        ...(signature === undefined ? {} : { signature, body: body ?? [] }),
      });
      const done = new Promise<DbusValue[]>((res, rej) =>
        pending.set(serial, { member, resolve: res, reject: rej }),
      );
      socket.write(message);
      return done;
    },
    async get(path, iface, property) {
      const [v] = await bus.call(path, PROPERTIES_INTERFACE, 'Get', 'ss', [iface, property]);
      return typeof v === 'object' && v !== null && !Array.isArray(v) ? v.value : (v ?? '');
    },
    close() {
      clearTimeout(timer);
      socket.destroy();
    },
  };
  return bus;
}

/** A reply (or error) settles the call waiting for it; anything else (signals, unknown serials) is ignored. */
function settleReply(pending: Map<number, Pending>, msg: DbusMessage): void {
  if (msg.type !== MESSAGE_TYPE.METHOD_RETURN && msg.type !== MESSAGE_TYPE.ERROR) return;
  const p = msg.replySerial === undefined ? undefined : pending.get(msg.replySerial);
  if (p === undefined) return;
  pending.delete(msg.replySerial!);
  if (msg.type === MESSAGE_TYPE.ERROR) {
    const detail = typeof msg.body[0] === 'string' ? `: ${msg.body[0]}` : '';
    p.reject(new Error(`${p.member} failed: ${msg.errorName ?? 'error'}${detail}`));
  } else p.resolve(msg.body);
}

/** Connect and authenticate (and `Hello` on a bus); rejects when the manager cannot be reached this way. */
export function openManagerBus(env: NodeJS.ProcessEnv, timeoutMs = TIMEOUT_MS): Promise<ManagerBus> {
  const uid = process.getuid?.();
  if (uid === undefined) return Promise.reject(new Error('no user id on this platform'));
  const t = chooseTransport(env, uid);
  if ('problem' in t) return Promise.reject(new Error(t.problem));
  return new Promise<ManagerBus>((resolve, reject) => {
    let socket: Socket;
    try {
      socket = createConnection(t.socketPath);
    } catch (error) {
      reject(error instanceof Error ? error : new Error(String(error)));
      return;
    }
    const c: Connection = { socket, transport: t, serial: 0, failure: null, pending: new Map() };
    const fail = (error: Error): void => {
      c.failure ??= error;
      socket.destroy();
    };
    // Never keeps the process alive, and never waits longer than the timeout for anything.
    const timer = setTimeout(
      () => fail(new Error(`systemd did not answer within ${timeoutMs} ms`)),
      timeoutMs,
    );
    timer.unref();
    const bus = busOver(c, timer);

    speakDbus(socket, uid, t.socketPath, {
      authenticated: () => {
        if (t.kind === 'user-bus') {
          // A bus wants Hello first; its reply (our unique name) is not needed.
          void bus
            .call('/org/freedesktop/DBus', 'org.freedesktop.DBus', 'Hello')
            .then(() => resolve(bus), fail);
        } else resolve(bus);
      },
      message: (msg) => settleReply(c.pending, msg),
      fail,
    });
    socket.on('error', (error) => {
      c.failure ??= error;
    });
    socket.on('close', () => {
      clearTimeout(timer);
      const why = c.failure ?? new Error('the manager closed the connection');
      reject(why);
      for (const p of c.pending.values()) p.reject(why);
      c.pending.clear();
    });
  });
}
