/**
 * unit-events against a scripted peer on a temp socket: which signals become events (our units only, a real
 * change only), how a refusal or a dropped connection is reported (once) and retried, and which socket is chosen.
 * The same behaviour against the real systemd is in unit-events.sandbox.test.ts.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  encodeMessage,
  MESSAGE_TYPE,
  MessageFramer,
  type DbusMessage,
  type DbusValue,
} from '../../src/observe/dbus-wire.js';
import {
  chooseTransport,
  isFleetUnit,
  unitNameFromPath,
  unixSocketOf,
  watchUnitEvents,
  type UnitEvent,
  type UnitEventSource,
  type UnitEventTransport,
} from '../../src/observe/unit-events.js';

const UID = process.getuid?.() ?? 0;
const SYSTEMD_STOP = readFileSync(join(import.meta.dirname, '../fixtures/dbus/mosaic-agent-stop.bin'));

interface FakePeer {
  server: Server;
  conns: Set<Socket>;
  /** Calls received, in order. */
  calls: DbusMessage[];
  /** Write to every connection, one byte per write when `trickle` is set. */
  send(bytes: Buffer, trickle?: boolean): Promise<void>;
  close(): Promise<void>;
}

/**
 * A peer speaking just enough D-Bus: accepts (or rejects) EXTERNAL, answers every call (or fails the one named in
 * `failCall`), and sends what the test tells it to.
 */
async function fakePeer(
  path: string,
  opts: { rejectAuth?: boolean; failCall?: string } = {},
): Promise<FakePeer> {
  const conns = new Set<Socket>();
  const calls: DbusMessage[] = [];
  let serial = 1000;
  const server = createServer((conn) => {
    conns.add(conn);
    conn.on('close', () => conns.delete(conn));
    conn.on('error', () => undefined);
    let authed = false;
    let text = '';
    const framer = new MessageFramer();
    conn.on('data', (chunk: Buffer) => {
      if (!authed) {
        text += chunk.toString('latin1');
        if (!text.includes('AUTH EXTERNAL')) return;
        if (opts.rejectAuth) {
          conn.write('REJECTED EXTERNAL\r\n');
          return;
        }
        if (!text.includes('BEGIN\r\n')) return;
        conn.write('OK 0123456789abcdef0123456789abcdef\r\n');
        authed = true;
        return; // our client sends calls only after OK
      }
      for (const m of framer.push(chunk)) {
        calls.push(m);
        const failed = m.member === opts.failCall;
        conn.write(
          encodeMessage({
            type: failed ? MESSAGE_TYPE.ERROR : MESSAGE_TYPE.METHOD_RETURN,
            serial: serial++,
            replySerial: m.serial,
            ...(failed
              ? {
                  errorName: 'org.freedesktop.DBus.Error.ServiceUnknown',
                  signature: 's',
                  body: ['The name is not activatable'],
                }
              : m.member === 'Hello'
                ? { signature: 's', body: [':1.42'] }
                : {}),
          }),
        );
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return {
    server,
    conns,
    calls,
    async send(bytes, trickle = false) {
      for (const c of conns) {
        if (!trickle) c.write(bytes);
        else for (let i = 0; i < bytes.length; i++) c.write(bytes.subarray(i, i + 1));
      }
      await new Promise((r) => setTimeout(r, 20));
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of conns) c.destroy();
        server.close(() => resolve());
      }),
  };
}

function propertiesChanged(
  unit: string,
  props: Array<[string, string]>,
  invalidated: string[] = [],
  iface = 'org.freedesktop.systemd1.Unit',
): Buffer {
  const label = [...Buffer.from(unit)]
    .map((b, i) => {
      const c = String.fromCharCode(b);
      return /[A-Za-z]/.test(c) || (i > 0 && /[0-9]/.test(c)) ? c : `_${b.toString(16).padStart(2, '0')}`;
    })
    .join('');
  const dict: DbusValue[] = props.map(([k, v]) => [k, { signature: 's', value: v }]);
  return encodeMessage({
    type: MESSAGE_TYPE.SIGNAL,
    serial: 1,
    path: `/org/freedesktop/systemd1/unit/${label}`,
    interface: 'org.freedesktop.DBus.Properties',
    member: 'PropertiesChanged',
    signature: 'sa{sv}as',
    body: [iface, dict, invalidated],
  });
}

interface Listener {
  source: UnitEventSource;
  events: UnitEvent[];
  errors: Error[];
  connected: UnitEventTransport[];
  until(what: string, pred: () => boolean, ms?: number): Promise<void>;
}

function listen(env: NodeJS.ProcessEnv): Listener {
  const events: UnitEvent[] = [];
  const errors: Error[] = [];
  const connected: UnitEventTransport[] = [];
  let wake: () => void = () => undefined;
  const poke = (): void => wake();
  const source = watchUnitEvents(
    env,
    (e) => {
      events.push(e);
      poke();
    },
    (e) => {
      errors.push(e);
      poke();
    },
    {
      onConnected: (t) => {
        connected.push(t);
        poke();
      },
    },
  );
  const until = async (what: string, pred: () => boolean, ms = 3_000): Promise<void> => {
    const deadline = Date.now() + ms;
    while (!pred()) {
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(
          `timed out waiting for ${what}; events ${JSON.stringify(events)}; errors ${JSON.stringify(errors.map((e) => e.message))}`,
        );
      }
      await new Promise<void>((resolve) => {
        // Woken by a callback, or a short while later for conditions no callback signals (a peer's state).
        const t = setTimeout(resolve, Math.min(left, 50));
        wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  };
  return { source, events, errors, connected, until };
}

let dir: string;
const cleanups: Array<() => Promise<void>> = [];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'fleet-ue-'));
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  rmSync(dir, { recursive: true, force: true });
});

async function privatePeer(opts: Parameters<typeof fakePeer>[1] = {}): Promise<FakePeer> {
  mkdirSync(join(dir, 'systemd'));
  const peer = await fakePeer(join(dir, 'systemd', 'private'), opts);
  cleanups.push(() => peer.close());
  return peer;
}

function listenHere(env: NodeJS.ProcessEnv): Listener {
  const l = listen(env);
  cleanups.push(() => l.source.close());
  return l;
}

describe('watchUnitEvents against a scripted peer', () => {
  it('reports ActiveState changes of our units only, once per change, however the bytes arrive', async () => {
    const peer = await privatePeer();
    const l = listenHere({ XDG_RUNTIME_DIR: dir });
    await l.until('connected', () => l.connected.length === 1);
    expect(l.connected[0]).toEqual({ kind: 'private', socketPath: join(dir, 'systemd', 'private') });
    expect(l.source.transport()?.kind).toBe('private');
    // On the peer-to-peer socket the only call is the Ping that proves systemd reads us.
    expect(peer.calls.map((c) => c.member)).toEqual(['Ping']);

    const a = 'mosaic-agent@a.service';
    await peer.send(
      Buffer.concat([
        propertiesChanged(a, [['ActiveState', 'active']]),
        propertiesChanged(a, [
          ['ActiveState', 'active'],
          ['SubState', 'exited'],
        ]), // same state again: no news
        propertiesChanged('unrelated.service', [['ActiveState', 'failed']]),
        propertiesChanged('mosaic-agent@.service', [['ActiveState', 'failed']]), // the template itself
        propertiesChanged(a, [['Result', 'exit-code']], [], 'org.freedesktop.systemd1.Service'),
        propertiesChanged(a, [['SubState', 'dead']]), // no ActiveState in it
      ]),
      true,
    );
    await peer.send(
      Buffer.concat([
        propertiesChanged(a, [['ActiveState', 'failed']]),
        propertiesChanged('mosaic-tmux-holder.service', [['ActiveState', 'inactive']]),
        propertiesChanged('mosaic-fleet-reconcile.timer', [], ['ActiveState']),
      ]),
    );
    await l.until('four events', () => l.events.length >= 4);
    expect(l.events).toEqual([
      { unit: a, activeState: 'active' },
      { unit: a, activeState: 'failed' },
      { unit: 'mosaic-tmux-holder.service', activeState: 'inactive' },
      { unit: 'mosaic-fleet-reconcile.timer' },
    ]);
    expect(l.errors).toEqual([]);
  });

  it("turns systemd's real signals for a stop into events", async () => {
    const peer = await privatePeer();
    const l = listenHere({ XDG_RUNTIME_DIR: dir });
    await l.until('connected', () => l.connected.length === 1);
    await peer.send(SYSTEMD_STOP, true);
    await l.until('the stop', () => l.events.some((e) => e.activeState === 'inactive'));
    expect(l.events).toEqual([
      { unit: 'mosaic-agent@t1.service', activeState: 'active' },
      { unit: 'mosaic-agent@t1.service', activeState: 'inactive' },
    ]);
  });

  it('on a user bus: Hello, match rules, Subscribe; a failed Subscribe is reported once, and retried', async () => {
    const peer = await fakePeer(join(dir, 'bus'), { failCall: 'Subscribe' });
    cleanups.push(() => peer.close());
    const l = listenHere({ DBUS_SESSION_BUS_ADDRESS: `unix:path=${join(dir, 'bus')},guid=0123` });
    await l.until('the error', () => l.errors.length === 1);
    expect(l.errors[0]?.message).toMatch(
      /cannot listen to systemd on .*bus: Subscribe failed: org\.freedesktop\.DBus\.Error\.ServiceUnknown: The name/,
    );
    expect(peer.calls.map((c) => c.member)).toEqual(['Hello', 'AddMatch', 'AddMatch', 'Subscribe']);
    expect(peer.calls[1]?.body[0]).toContain("sender='org.freedesktop.systemd1'");
    expect(peer.calls[3]).toMatchObject({
      destination: 'org.freedesktop.systemd1',
      interface: 'org.freedesktop.systemd1.Manager',
    });
    // It tries again (after the back-off) without saying so again.
    await l.until('a retry', () => peer.calls.filter((c) => c.member === 'Subscribe').length >= 2);
    expect(l.errors).toHaveLength(1);
    expect(l.connected).toEqual([]);
  });

  it('a refused authentication is an error, not an exception', async () => {
    await privatePeer({ rejectAuth: true });
    const l = listenHere({ XDG_RUNTIME_DIR: dir });
    await l.until('the error', () => l.errors.length === 1);
    expect(l.errors[0]?.message).toMatch(/refused authentication: REJECTED EXTERNAL/);
    expect(l.source.transport()).toBeNull();
  });

  it('a dropped connection is reported once, then it reconnects and reports again', async () => {
    const peer = await privatePeer();
    const l = listenHere({ XDG_RUNTIME_DIR: dir });
    await l.until('connected', () => l.connected.length === 1);
    for (const c of peer.conns) c.destroy();
    await l.until('the error', () => l.errors.length === 1);
    expect(l.errors[0]?.message).toMatch(/lost the connection to systemd/);
    await l.until('connected again', () => l.connected.length === 2);
    await peer.send(propertiesChanged('mosaic-agent@b.service', [['ActiveState', 'inactive']]));
    await l.until('an event', () => l.events.length === 1);
    expect(l.errors).toHaveLength(1);
  });

  it('close() resolves once the socket is closed, even mid-handshake, and stops retrying', async () => {
    const peer = await privatePeer();
    const l = listen({ XDG_RUNTIME_DIR: dir });
    await l.until('the client', () => peer.conns.size === 1);
    await l.source.close();
    await l.source.close(); // idempotent
    await new Promise((r) => setTimeout(r, 50));
    expect(peer.conns.size).toBe(0);
    expect(l.errors).toEqual([]);
  });
});

function problemOf(t: ReturnType<typeof chooseTransport>): string | undefined {
  return 'problem' in t ? t.problem : undefined;
}

describe('choosing the socket', () => {
  it('prefers our private socket, then DBUS_SESSION_BUS_ADDRESS, then $XDG_RUNTIME_DIR/bus', async () => {
    expect(problemOf(chooseTransport({ XDG_RUNTIME_DIR: dir }, UID))).toMatch(/no socket/);
    const bus = await fakePeer(join(dir, 'bus'));
    cleanups.push(() => bus.close());
    expect(chooseTransport({ XDG_RUNTIME_DIR: dir }, UID)).toEqual({
      kind: 'user-bus',
      socketPath: join(dir, 'bus'),
    });
    expect(
      chooseTransport({ XDG_RUNTIME_DIR: dir, DBUS_SESSION_BUS_ADDRESS: 'unix:path=/x/y' }, UID),
    ).toEqual({
      kind: 'user-bus',
      socketPath: '/x/y',
    });
    await privatePeer();
    expect(
      chooseTransport({ XDG_RUNTIME_DIR: dir, DBUS_SESSION_BUS_ADDRESS: 'unix:path=/x/y' }, UID),
    ).toEqual({
      kind: 'private',
      socketPath: join(dir, 'systemd', 'private'),
    });
    // Not ours: another uid's sockets are passed over.
    expect(problemOf(chooseTransport({ XDG_RUNTIME_DIR: dir }, UID + 1))).toMatch(/no socket/);
  });

  it('follows no symbolic link planted in the runtime directory', async () => {
    const elsewhere = mkdtempSync(join(tmpdir(), 'fleet-ue-other-'));
    cleanups.push(() => {
      rmSync(elsewhere, { recursive: true, force: true });
      return Promise.resolve();
    });
    const peer = await fakePeer(join(elsewhere, 'private'));
    cleanups.push(() => peer.close());
    mkdirSync(join(dir, 'systemd'));
    symlinkSync(join(elsewhere, 'private'), join(dir, 'systemd', 'private'));
    expect(problemOf(chooseTransport({ XDG_RUNTIME_DIR: dir }, UID))).toMatch(/no socket/);
  });

  it('says why when there is nothing to connect to', () => {
    expect(problemOf(chooseTransport({}, UID))).toMatch(/XDG_RUNTIME_DIR is not set/);
    expect(
      problemOf(chooseTransport({ DBUS_SESSION_BUS_ADDRESS: 'tcp:host=localhost,port=1' }, UID)),
    ).toMatch(/names no unix socket/);
  });
});

describe('names', () => {
  it("reads systemd's escaped object paths", () => {
    expect(unitNameFromPath('/org/freedesktop/systemd1/unit/mosaic_2dagent_40t1_2eservice')).toBe(
      'mosaic-agent@t1.service',
    );
    expect(unitNameFromPath('/org/freedesktop/systemd1/unit/mosaic_2dtmux_2dholder_2eservice')).toBe(
      'mosaic-tmux-holder.service',
    );
    expect(unitNameFromPath('/org/freedesktop/systemd1/unit/app_2dmosaic_5cx2dagent_2eslice')).toBe(
      'app-mosaic\\x2dagent.slice',
    );
    expect(unitNameFromPath('/org/freedesktop/systemd1/unit/_31a_2eservice')).toBe('1a.service');
    expect(unitNameFromPath('/org/freedesktop/systemd1/job/12')).toBeNull();
    expect(unitNameFromPath('/org/freedesktop/systemd1/unit/bad_zz')).toBeNull();
    expect(unitNameFromPath('/org/freedesktop/systemd1/unit/a/b')).toBeNull();
  });

  it('knows our units from the rest', () => {
    for (const n of [
      'mosaic-agent@alice.service',
      'mosaic-tmux-holder.service',
      'mosaic-fleet-reconcile.timer',
    ]) {
      expect(isFleetUnit(n)).toBe(true);
    }
    for (const n of [
      'mosaic-agent@.service',
      'mosaic-agent@a.timer',
      'mosaic-agent@a@b.service',
      'dbus.service',
    ]) {
      expect(isFleetUnit(n)).toBe(false);
    }
  });

  it('reads unix socket addresses, escapes included', () => {
    expect(unixSocketOf('unix:path=/run/user/1000/bus')).toBe('/run/user/1000/bus');
    expect(unixSocketOf('tcp:host=x,port=1;unix:path=/tmp/a%20b,guid=12')).toBe('/tmp/a b');
    expect(unixSocketOf('unix:abstract=/tmp/dbus-XYZ,guid=1')).toBe('\0/tmp/dbus-XYZ');
    expect(unixSocketOf('tcp:host=x,port=1')).toBeNull();
  });
});
