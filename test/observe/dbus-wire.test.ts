/**
 * The D-Bus wire codec behind unit-events: round trips of every type we read, alignment (the classic mistakes:
 * padding before the first array element, 8-aligned structs), both byte orders, framing of a stream that arrives
 * in arbitrary pieces, and real messages captured from systemd 252.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  authExternal,
  DbusProtocolError,
  encodeMessage,
  marshal,
  MESSAGE_TYPE,
  MessageFramer,
  parseAuthReply,
  splitSignature,
  unmarshal,
  type DbusMessage,
  type DbusValue,
  type Variant,
} from '../../src/observe/dbus-wire.js';

/** Signals systemd 252 sent on its private socket while `systemctl --user stop mosaic-agent@t1.service` ran. */
const SYSTEMD_STOP = readFileSync(join(import.meta.dirname, '../fixtures/dbus/mosaic-agent-stop.bin'));

function roundTrip(signature: string, values: DbusValue[]): DbusValue[] {
  return unmarshal(signature, marshal(signature, values));
}

describe('marshal / unmarshal', () => {
  it('round-trips every basic type', () => {
    const values: DbusValue[] = [
      255,
      true,
      -32768,
      65535,
      -2147483648,
      4294967295,
      -(2n ** 63n),
      2n ** 64n - 1n,
      -0.5,
      'hé',
      '/org/x',
      'a{sv}',
      3,
    ];
    expect(roundTrip('ybnqiuxtdsogh', values)).toEqual(values);
  });

  it('round-trips containers: dicts of variants, structs, nested and empty arrays', () => {
    const dict: DbusValue[] = [
      ['ActiveState', { signature: 's', value: 'failed' }],
      ['Timestamp', { signature: 't', value: 1234567890123n }],
      ['Deps', { signature: 'as', value: ['a.service', 'b.service'] }],
      ['Nested', { signature: 'v', value: { signature: 'y', value: 7 } }],
    ];
    const values: DbusValue[] = [1, dict, [5, ['x', 'y']], [], [], [[1n, 2n]], [[], [1]]];
    expect(roundTrip('ya{sv}(ias)ata(tt)a(tt)aai', values)).toEqual(values);
  });

  it('pads to the first element of an empty array of 8-aligned elements (and does not count it)', () => {
    // y, then u32 length 0 at offset 4, then padding to offset 8 for the (absent) struct, then y at 8.
    const buf = marshal('ya(tt)y', [1, [], 2]);
    expect([...buf]).toEqual([1, 0, 0, 0, 0, 0, 0, 0, 2]);
    expect(unmarshal('ya(tt)y', buf)).toEqual([1, [], 2]);
  });

  it('reads big-endian values', () => {
    const be = Buffer.from([0, 0, 0, 7, 0, 0, 0, 2, 0x68, 0x69, 0]);
    expect(unmarshal('us', be, false)).toEqual([7, 'hi']);
  });

  it('rejects what is not well-formed instead of guessing', () => {
    expect(() => unmarshal('s', Buffer.from([5, 0, 0, 0, 0x61, 0]))).toThrow(DbusProtocolError);
    expect(() => unmarshal('s', Buffer.from([1, 0, 0, 0, 0x61, 1]))).toThrow(/NUL/);
    expect(() => unmarshal('u', Buffer.from([1, 0, 0, 0, 9]))).toThrow(/trailing/);
    // An array whose length ends inside an element.
    expect(() => unmarshal('au', Buffer.from([6, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0]))).toThrow(
      DbusProtocolError,
    );
    expect(() => splitSignature('a{sv')).toThrow(/unclosed/);
    expect(() => splitSignature('()')).toThrow(/empty/);
    expect(() => splitSignature('z')).toThrow(/unknown type/);
    let deep: Variant = { signature: 'y', value: 1 };
    for (let i = 0; i < 70; i++) deep = { signature: 'v', value: deep };
    expect(() => unmarshal('v', marshal('v', [deep]))).toThrow(/too deeply/);
  });
});

describe('messages and framing', () => {
  const call = encodeMessage({
    type: MESSAGE_TYPE.METHOD_CALL,
    serial: 7,
    path: '/org/freedesktop/DBus',
    interface: 'org.freedesktop.DBus',
    member: 'AddMatch',
    destination: 'org.freedesktop.DBus',
    signature: 's',
    body: ["type='signal'"],
  });
  const signal = encodeMessage({
    type: MESSAGE_TYPE.SIGNAL,
    serial: 8,
    path: '/org/freedesktop/systemd1/unit/x',
    interface: 'org.freedesktop.DBus.Properties',
    member: 'PropertiesChanged',
    signature: 'sa{sv}as',
    body: ['org.freedesktop.systemd1.Unit', [['ActiveState', { signature: 's', value: 'inactive' }]], []],
  });

  it('decodes what it encodes, header fields and body', () => {
    const [m] = new MessageFramer().push(call);
    expect(m).toEqual({
      type: MESSAGE_TYPE.METHOD_CALL,
      flags: 0,
      serial: 7,
      path: '/org/freedesktop/DBus',
      interface: 'org.freedesktop.DBus',
      member: 'AddMatch',
      destination: 'org.freedesktop.DBus',
      signature: 's',
      body: ["type='signal'"],
    });
    // The header is padded to 8 even with no body.
    const bare = encodeMessage({ type: MESSAGE_TYPE.METHOD_CALL, serial: 1, path: '/', member: 'Ping' });
    expect(bare.length % 8).toBe(0);
    expect(new MessageFramer().push(bare)[0]?.member).toBe('Ping');
  });

  it('frames a stream however it is cut: one byte at a time, or several messages in one piece', () => {
    const stream = Buffer.concat([call, signal, call]);
    const framer = new MessageFramer();
    const got: DbusMessage[] = [];
    for (let i = 0; i < stream.length; i++) got.push(...framer.push(stream.subarray(i, i + 1)));
    expect(got.map((m) => m.serial)).toEqual([7, 8, 7]);
    expect(new MessageFramer().push(stream).map((m) => m.member)).toEqual([
      'AddMatch',
      'PropertiesChanged',
      'AddMatch',
    ]);
  });

  it('refuses a stream that does not start a message', () => {
    expect(() => new MessageFramer().push(Buffer.from('OK 1234\r\n0123456789'))).toThrow(/byte-order/);
    const huge = Buffer.from(call);
    huge.writeUInt32LE(200 * 1024 * 1024, 4);
    expect(() => new MessageFramer().push(huge)).toThrow(/over the limit/);
  });

  it("decodes systemd's own signals, with every property type the Unit and Service interfaces carry", () => {
    const msgs = new MessageFramer().push(SYSTEMD_STOP);
    expect(msgs.map((m) => `${m.member}:${String(m.body[0] as string | number)}`)).toEqual([
      'PropertiesChanged:org.freedesktop.systemd1.Service',
      'PropertiesChanged:org.freedesktop.systemd1.Unit',
      'JobNew:231',
      'PropertiesChanged:org.freedesktop.systemd1.Service',
      'PropertiesChanged:org.freedesktop.systemd1.Unit',
      'PropertiesChanged:org.freedesktop.systemd1.Service',
      'PropertiesChanged:org.freedesktop.systemd1.Unit',
    ]);
    const last = msgs[6];
    expect(last.path).toBe('/org/freedesktop/systemd1/unit/mosaic_2dagent_40t1_2eservice');
    expect(last.sender).toBe('org.freedesktop.systemd1');
    const props = new Map((last.body[1] as [string, Variant][]).map(([k, v]) => [k, v]));
    expect(props.get('ActiveState')).toEqual({ signature: 's', value: 'inactive' });
    expect(props.get('SubState')).toEqual({ signature: 's', value: 'dead' });
    expect(typeof props.get('StateChangeTimestamp')?.value).toBe('bigint');
  });
});

describe('authentication', () => {
  it('sends the credentials byte and the uid as hex-encoded decimal', () => {
    expect(authExternal(1000).toString('latin1')).toBe('\0AUTH EXTERNAL 31303030\r\n');
    expect(authExternal(0).toString('latin1')).toBe('\0AUTH EXTERNAL 30\r\n');
  });

  it('waits for a whole line, and keeps the bytes after OK as message bytes', () => {
    expect(parseAuthReply(Buffer.from('OK 12ab'))).toBeNull();
    const r = parseAuthReply(Buffer.concat([Buffer.from('OK 12ab\r\n'), Buffer.from([0x6c, 4])]));
    expect(r?.ok).toBe(true);
    expect([...r!.rest]).toEqual([0x6c, 4]);
    expect(parseAuthReply(Buffer.from('REJECTED EXTERNAL\r\n'))).toMatchObject({
      ok: false,
      line: 'REJECTED EXTERNAL',
    });
  });
});
