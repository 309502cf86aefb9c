/**
 * The little of the D-Bus wire protocol that src/observe/unit-events.ts and systemd-bus.ts need: EXTERNAL
 * authentication, framing of a byte stream into messages, and (un)marshalling of the basic and container types.
 * Written here rather than taken from a library: dbus-next always sends `org.freedesktop.DBus.Hello`, which
 * systemd's peer-to-peer private socket answers with UnknownObject (and dbus-next then leaves a rejected promise
 * unhandled); @homebridge/dbus-native can skip Hello but brings 16 packages and about 10 MB of resident memory
 * (xml2js among them) into the long-running watcher, which needs only this.
 *
 * Spec: https://dbus.freedesktop.org/doc/dbus-specification.html ("Message Protocol", "Authentication Protocol").
 * We write little-endian; we read both byte orders.
 */

import type { Socket } from 'node:net';

export const MESSAGE_TYPE = { METHOD_CALL: 1, METHOD_RETURN: 2, ERROR: 3, SIGNAL: 4 } as const;
/** Header flag: the sender wants no reply. */
export const NO_REPLY_EXPECTED = 0x1;

/** A variant: a value carried with its own signature. */
export interface Variant {
  signature: string;
  value: DbusValue;
}

/**
 * Decoded values: integers as numbers (64-bit ones as bigint), `b` as boolean, strings, object paths and
 * signatures as strings, arrays and structs as arrays, a dict entry as a two-element array [key, value].
 */
export type DbusValue = number | bigint | boolean | string | Variant | DbusValue[];

export interface DbusMessage {
  type: number;
  flags: number;
  serial: number;
  path?: string;
  interface?: string;
  member?: string;
  errorName?: string;
  replySerial?: number;
  destination?: string;
  sender?: string;
  signature: string;
  body: DbusValue[];
}

export class DbusProtocolError extends Error {
  override name = 'DbusProtocolError';
}

/** The spec's limit on a whole message. */
const MAX_MESSAGE_BYTES = 128 * 1024 * 1024;
/** The spec allows 32 nested arrays plus 32 nested structs; variants nest too. Bounds the recursion. */
const MAX_DEPTH = 64;

const FIELD = {
  PATH: 1,
  INTERFACE: 2,
  MEMBER: 3,
  ERROR_NAME: 4,
  REPLY_SERIAL: 5,
  DESTINATION: 6,
  SENDER: 7,
  SIGNATURE: 8,
} as const;

// ---------------------------------------------------------------------------------------------------------
// Signatures

function alignmentOf(code: string): number {
  switch (code) {
    case 'y':
    case 'g':
    case 'v':
      return 1;
    case 'n':
    case 'q':
      return 2;
    case 'b':
    case 'i':
    case 'u':
    case 'h':
    case 's':
    case 'o':
    case 'a':
      return 4;
    case 'x':
    case 't':
    case 'd':
    case '(':
    case '{':
      return 8;
    default:
      throw new DbusProtocolError(`unknown type code '${code}' in a signature`);
  }
}

/** Index just past the single complete type starting at `i` in `sig`. */
function completeTypeEnd(sig: string, i: number): number {
  const c = sig[i];
  if (c === undefined) throw new DbusProtocolError(`signature "${sig}" ends inside a type`);
  if (c === 'a') return completeTypeEnd(sig, i + 1);
  if (c === '(' || c === '{') {
    const close = c === '(' ? ')' : '}';
    let j = i + 1;
    while (sig[j] !== close) {
      if (j >= sig.length) throw new DbusProtocolError(`signature "${sig}" has an unclosed '${c}'`);
      j = completeTypeEnd(sig, j);
    }
    if (j === i + 1) throw new DbusProtocolError(`signature "${sig}" has an empty '${c}${close}'`);
    return j + 1;
  }
  alignmentOf(c); // throws on an unknown code
  return i + 1;
}

/** Split a signature into its complete types ("sa{sv}as" -> ["s", "a{sv}", "as"]). */
export function splitSignature(sig: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < sig.length;) {
    const end = completeTypeEnd(sig, i);
    out.push(sig.slice(i, end));
    i = end;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Reading

class Reader {
  pos: number;
  constructor(
    private readonly buf: Buffer,
    private readonly le: boolean,
    start = 0,
    /** Offsets are aligned relative to the message start, which is `base` in `buf`. */
    private readonly base = 0,
  ) {
    this.pos = start;
  }

  private need(n: number): void {
    if (this.pos + n > this.buf.length) throw new DbusProtocolError('message ends inside a value');
  }

  align(n: number): void {
    const rel = this.pos - this.base;
    const pad = (n - (rel % n)) % n;
    this.need(pad);
    this.pos += pad;
  }

  u8(): number {
    this.need(1);
    return this.buf[this.pos++];
  }

  u32(): number {
    this.align(4);
    this.need(4);
    const v = this.le ? this.buf.readUInt32LE(this.pos) : this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  private text(len: number): string {
    this.need(len + 1);
    if (this.buf[this.pos + len] !== 0) throw new DbusProtocolError('string not NUL-terminated');
    const s = this.buf.toString('utf8', this.pos, this.pos + len);
    this.pos += len + 1;
    return s;
  }

  value(sig: string, depth = 0): DbusValue {
    if (depth > MAX_DEPTH) throw new DbusProtocolError('values nested too deeply');
    const c = sig[0];
    this.align(alignmentOf(c));
    const b = this.buf;
    const le = this.le;
    const at = this.pos;
    const fixed = (n: number): number => {
      this.need(n);
      this.pos += n;
      return at;
    };
    switch (c) {
      case 'y':
        return this.u8();
      case 'b':
        return this.u32() !== 0;
      case 'n':
        return le ? b.readInt16LE(fixed(2)) : b.readInt16BE(fixed(2));
      case 'q':
        return le ? b.readUInt16LE(fixed(2)) : b.readUInt16BE(fixed(2));
      case 'i':
        return le ? b.readInt32LE(fixed(4)) : b.readInt32BE(fixed(4));
      case 'u':
      case 'h':
        return this.u32();
      case 'x':
        return le ? b.readBigInt64LE(fixed(8)) : b.readBigInt64BE(fixed(8));
      case 't':
        return le ? b.readBigUInt64LE(fixed(8)) : b.readBigUInt64BE(fixed(8));
      case 'd':
        return le ? b.readDoubleLE(fixed(8)) : b.readDoubleBE(fixed(8));
      case 's':
      case 'o':
        return this.text(this.u32());
      case 'g':
        return this.text(this.u8());
      case 'v': {
        const signature = this.text(this.u8());
        if (splitSignature(signature).length !== 1) {
          throw new DbusProtocolError(`variant signature "${signature}" is not a single type`);
        }
        return { signature, value: this.value(signature, depth + 1) };
      }
      case 'a': {
        const len = this.u32();
        const elem = sig.slice(1);
        // The padding to the first element is not counted in the length, and is there even when it is empty.
        this.align(alignmentOf(elem[0]));
        const end = this.pos + len;
        if (end > b.length) throw new DbusProtocolError('array runs past the message');
        const out: DbusValue[] = [];
        while (this.pos < end) out.push(this.value(elem, depth + 1));
        if (this.pos !== end) throw new DbusProtocolError('array length does not match its elements');
        return out;
      }
      case '(':
      case '{': {
        const out: DbusValue[] = [];
        for (const t of splitSignature(sig.slice(1, -1))) out.push(this.value(t, depth + 1));
        return out;
      }
      default:
        throw new DbusProtocolError(`unknown type code '${c}'`);
    }
  }
}

/** Decode `count`-less body values of `signature` from `buf` (aligned as if `buf` started a message body). */
export function unmarshal(signature: string, buf: Buffer, littleEndian = true): DbusValue[] {
  const r = new Reader(buf, littleEndian);
  const out = splitSignature(signature).map((t) => r.value(t));
  if (r.pos !== buf.length) throw new DbusProtocolError('trailing bytes after the values');
  return out;
}

/**
 * Total length of the message at the start of `buf`, or null while its fixed header has not all arrived.
 * Throws on bytes that cannot start a message (the stream is then unusable).
 */
function messageLength(buf: Buffer): number | null {
  if (buf.length < 16) return null;
  const order = buf[0];
  if (order !== 0x6c && order !== 0x42)
    throw new DbusProtocolError(`bad byte-order mark 0x${order.toString(16)}`);
  if (buf[3] !== 1) throw new DbusProtocolError(`unsupported protocol version ${buf[3]}`);
  const le = order === 0x6c;
  const bodyLen = le ? buf.readUInt32LE(4) : buf.readUInt32BE(4);
  const fieldsLen = le ? buf.readUInt32LE(12) : buf.readUInt32BE(12);
  const headerLen = 16 + fieldsLen + ((8 - (fieldsLen % 8)) % 8);
  const total = headerLen + bodyLen;
  if (total > MAX_MESSAGE_BYTES) throw new DbusProtocolError(`message of ${total} bytes is over the limit`);
  return total;
}

function decodeMessage(buf: Buffer): DbusMessage {
  const le = buf[0] === 0x6c;
  const r = new Reader(buf, le, 12);
  const fields = r.value('a(yv)') as DbusValue[];
  r.align(8);
  const bodyStart = r.pos;
  const msg: DbusMessage = {
    type: buf[1],
    flags: buf[2],
    serial: le ? buf.readUInt32LE(8) : buf.readUInt32BE(8),
    signature: '',
    body: [],
  };
  for (const f of fields) {
    const [code, v] = f as [number, Variant];
    const str = (): string => {
      if (typeof v.value !== 'string') throw new DbusProtocolError(`header field ${code} is not a string`);
      return v.value;
    };
    switch (code) {
      case FIELD.PATH:
        msg.path = str();
        break;
      case FIELD.INTERFACE:
        msg.interface = str();
        break;
      case FIELD.MEMBER:
        msg.member = str();
        break;
      case FIELD.ERROR_NAME:
        msg.errorName = str();
        break;
      case FIELD.REPLY_SERIAL:
        if (typeof v.value !== 'number') throw new DbusProtocolError('reply serial is not a number');
        msg.replySerial = v.value;
        break;
      case FIELD.DESTINATION:
        msg.destination = str();
        break;
      case FIELD.SENDER:
        msg.sender = str();
        break;
      case FIELD.SIGNATURE:
        msg.signature = str();
        break;
      default:
      // Unknown fields must be ignored (UNIX_FDS among them: we never accept descriptors).
    }
  }
  const body = buf.subarray(bodyStart);
  if (msg.signature !== '') msg.body = unmarshal(msg.signature, body, le);
  else if (body.length > 0) throw new DbusProtocolError('a body without a signature');
  return msg;
}

/** Turns the byte stream after authentication into messages. */
export class MessageFramer {
  private pending: Buffer = Buffer.alloc(0);

  /** Feed bytes; returns the messages completed by them. Throws DbusProtocolError on a corrupt stream. */
  push(chunk: Buffer): DbusMessage[] {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const out: DbusMessage[] = [];
    for (;;) {
      const len = messageLength(this.pending);
      if (len === null || this.pending.length < len) break;
      out.push(decodeMessage(this.pending.subarray(0, len)));
      this.pending = this.pending.subarray(len);
    }
    // Keep no reference to a large chunk for the sake of a small tail.
    if (this.pending.length > 0 && this.pending.length < 4096) this.pending = Buffer.from(this.pending);
    return out;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Writing

class Writer {
  private buf = Buffer.alloc(256);
  len = 0;

  private room(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const next = Buffer.alloc(Math.max(this.buf.length * 2, this.len + n));
    this.buf.copy(next, 0, 0, this.len);
    this.buf = next;
  }

  align(n: number): void {
    const pad = (n - (this.len % n)) % n;
    this.room(pad);
    this.buf.fill(0, this.len, this.len + pad);
    this.len += pad;
  }

  u8(v: number): void {
    this.room(1);
    this.buf[this.len++] = v;
  }

  u32(v: number): void {
    this.align(4);
    this.room(4);
    this.buf.writeUInt32LE(v, this.len);
    this.len += 4;
  }

  u32At(offset: number, v: number): void {
    this.buf.writeUInt32LE(v, offset);
  }

  private text(s: string, lenBytes: 1 | 4): void {
    const bytes = Buffer.from(s, 'utf8');
    if (lenBytes === 1) {
      if (bytes.length > 255) throw new DbusProtocolError('signature longer than 255 bytes');
      this.u8(bytes.length);
    } else this.u32(bytes.length);
    this.room(bytes.length + 1);
    bytes.copy(this.buf, this.len);
    this.len += bytes.length;
    this.buf[this.len++] = 0;
  }

  value(sig: string, v: DbusValue): void {
    const c = sig[0];
    this.align(alignmentOf(c));
    const fixed = (n: number, write: (at: number) => void): void => {
      this.room(n);
      write(this.len);
      this.len += n;
    };
    const bad = (): never => {
      throw new DbusProtocolError(
        `a value of type ${Array.isArray(v) ? 'array' : typeof v} does not fit '${sig}'`,
      );
    };
    switch (c) {
      case 'y':
        return this.u8(typeof v === 'number' ? v : bad());
      case 'b':
        return this.u32(typeof v === 'boolean' ? Number(v) : bad());
      case 'n':
        return fixed(2, (at) => this.buf.writeInt16LE(typeof v === 'number' ? v : bad(), at));
      case 'q':
        return fixed(2, (at) => this.buf.writeUInt16LE(typeof v === 'number' ? v : bad(), at));
      case 'i':
        return fixed(4, (at) => this.buf.writeInt32LE(typeof v === 'number' ? v : bad(), at));
      case 'u':
      case 'h':
        return this.u32(typeof v === 'number' ? v : bad());
      case 'x':
        return fixed(8, (at) => this.buf.writeBigInt64LE(typeof v === 'bigint' ? v : bad(), at));
      case 't':
        return fixed(8, (at) => this.buf.writeBigUInt64LE(typeof v === 'bigint' ? v : bad(), at));
      case 'd':
        return fixed(8, (at) => this.buf.writeDoubleLE(typeof v === 'number' ? v : bad(), at));
      case 's':
      case 'o':
        return this.text(typeof v === 'string' ? v : bad(), 4);
      case 'g':
        return this.text(typeof v === 'string' ? v : bad(), 1);
      case 'v': {
        const variant = typeof v === 'object' && !Array.isArray(v) ? v : bad();
        this.text(variant.signature, 1);
        return this.value(variant.signature, variant.value);
      }
      case 'a': {
        const items = Array.isArray(v) ? v : bad();
        const elem = sig.slice(1);
        this.u32(0);
        const lenAt = this.len - 4;
        this.align(alignmentOf(elem[0]));
        const start = this.len;
        for (const item of items) this.value(elem, item);
        return this.u32At(lenAt, this.len - start);
      }
      case '(':
      case '{': {
        const fields = Array.isArray(v) ? v : bad();
        const types = splitSignature(sig.slice(1, -1));
        if (types.length !== fields.length) bad();
        types.forEach((t, i) => this.value(t, fields[i]));
        return;
      }
      default:
        throw new DbusProtocolError(`unknown type code '${c}'`);
    }
  }

  bytes(): Buffer {
    return this.buf.subarray(0, this.len);
  }
}

/** Encode values of `signature` as a body (little-endian). */
export function marshal(signature: string, values: readonly DbusValue[]): Buffer {
  const types = splitSignature(signature);
  if (types.length !== values.length) {
    throw new DbusProtocolError(`${values.length} values for signature "${signature}"`);
  }
  const w = new Writer();
  types.forEach((t, i) => w.value(t, values[i]));
  return Buffer.from(w.bytes());
}

export interface OutgoingMessage {
  type: number;
  serial: number;
  flags?: number;
  path?: string;
  interface?: string;
  member?: string;
  errorName?: string;
  replySerial?: number;
  destination?: string;
  signature?: string;
  body?: readonly DbusValue[];
}

/** Encode a whole message (little-endian). */
export function encodeMessage(m: OutgoingMessage): Buffer {
  const body = m.signature ? marshal(m.signature, m.body ?? []) : Buffer.alloc(0);
  const fields: DbusValue[] = [];
  const field = (code: number, signature: string, value: DbusValue | undefined): void => {
    if (value !== undefined) fields.push([code, { signature, value }]);
  };
  field(FIELD.PATH, 'o', m.path);
  field(FIELD.INTERFACE, 's', m.interface);
  field(FIELD.MEMBER, 's', m.member);
  field(FIELD.ERROR_NAME, 's', m.errorName);
  field(FIELD.REPLY_SERIAL, 'u', m.replySerial);
  field(FIELD.DESTINATION, 's', m.destination);
  field(FIELD.SIGNATURE, 'g', m.signature || undefined);
  const w = new Writer();
  w.u8(0x6c); // 'l': little-endian
  w.u8(m.type);
  w.u8(m.flags ?? 0);
  w.u8(1); // protocol version
  w.u32(body.length);
  w.u32(m.serial);
  w.value('a(yv)', fields);
  w.align(8);
  return Buffer.concat([w.bytes(), body]);
}

// ---------------------------------------------------------------------------------------------------------
// Authentication

/**
 * The client's opening: the credentials NUL byte, then `AUTH EXTERNAL <uid as hex-encoded decimal>`. The server
 * checks the uid against the socket's peer credentials.
 */
export function authExternal(uid: number): Buffer {
  return Buffer.from(`\0AUTH EXTERNAL ${Buffer.from(String(uid), 'ascii').toString('hex')}\r\n`, 'ascii');
}

export const AUTH_BEGIN = Buffer.from('BEGIN\r\n', 'ascii');

/**
 * The server's reply line to our AUTH, if it has all arrived: `ok` when accepted (the bytes after the line are
 * already message bytes). A server sends nothing after `REJECTED`, so anything else is a refusal.
 */
export function parseAuthReply(buf: Buffer): { ok: boolean; line: string; rest: Buffer } | null {
  const end = buf.indexOf('\r\n');
  if (end === -1) {
    if (buf.length > 16 * 1024) throw new DbusProtocolError('authentication reply too long');
    return null;
  }
  const line = buf.toString('ascii', 0, end);
  return { ok: /^OK [0-9a-fA-F]+$/.test(line), line, rest: buf.subarray(end + 2) };
}

export interface DbusStreamHandlers {
  /** The server accepted us: method calls may be written from now on. */
  authenticated(): void;
  message(msg: DbusMessage): void;
  /** Authentication refused or a corrupt stream: the caller drops the socket. */
  fail(error: Error): void;
}

/**
 * Speak D-Bus on a unix socket as it connects: EXTERNAL authentication as `uid`, then the messages that follow.
 * `label` names the socket in errors.
 */
export function speakDbus(socket: Socket, uid: number, label: string, h: DbusStreamHandlers): void {
  let authReply: Buffer | null = Buffer.alloc(0);
  const framer = new MessageFramer();
  // BEGIN goes with AUTH, as sd-bus's own clients send it, and calls only after OK: sd-bus's server leaves bytes
  // that arrive in the same read as BEGIN unparsed until more arrive, so a call sent with BEGIN would wait.
  socket.on('connect', () => socket.write(Buffer.concat([authExternal(uid), AUTH_BEGIN])));
  socket.on('data', (chunk: Buffer) => {
    if (socket.destroyed) return;
    try {
      if (authReply !== null) {
        authReply = Buffer.concat([authReply, chunk]);
        const reply = parseAuthReply(authReply);
        if (reply === null) return;
        if (!reply.ok) throw new Error(`${label} refused authentication: ${reply.line}`);
        authReply = null;
        chunk = reply.rest;
        h.authenticated();
      }
      for (const msg of framer.push(chunk)) {
        h.message(msg);
        if (socket.destroyed) return;
      }
    } catch (error) {
      h.fail(error instanceof Error ? error : new Error(String(error)));
    }
  });
}
