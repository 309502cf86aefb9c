/**
 * The process table, read from /proc directly: one pass over `stat` files (pid, ppid, comm) instead of a
 * `ps` spawn, and `cmdline` only for the processes under a tmux pane, which are the ones anyone asks about.
 */
import { closeSync, openSync, readSync, readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { ObservedProcess } from '../model/observed.js';

export interface ProcEntry {
  pid: number;
  ppid: number;
  comm: string;
}

export interface ProcessTable {
  byPid: Map<number, ProcEntry>;
  children: Map<number, number[]>;
  root: string;
}

const STAT_PPID = /^\s*\S+\s+(\S+)/;

/** Parse /proc/<pid>/stat: `pid (comm) state ppid ...`; comm may hold spaces and parentheses. */
export function parseStat(text: string): ProcEntry | null {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) return null;
  const pid = Number(text.slice(0, open).trim());
  // The second field after the name (state, then ppid): matched, not split, since every process on the machine
  // is parsed on every observation and the other fifty fields are never used.
  const ppid = Number(STAT_PPID.exec(text.slice(close + 2))?.[1]);
  if (!Number.isInteger(pid) || !Number.isInteger(ppid)) return null;
  return { pid, ppid, comm: text.slice(open + 1, close) };
}

const statBuffer = Buffer.alloc(4096);

/**
 * A /proc file's text: open, read into one reused buffer, close. Every process on the machine has its `stat` read
 * on every observation, and each pane process its `cmdline` and `environ`; readFileSync would also stat each one,
 * allocate for each, and read once more for the end. A read shorter than the buffer is the whole file (procfs
 * answers these reads at once, up to the buffer).
 */
function readSmall(path: string): string {
  const fd = openSync(path, 'r');
  try {
    const n = readSync(fd, statBuffer, 0, statBuffer.length, null);
    if (n < statBuffer.length) return statBuffer.toString('utf8', 0, n);
    // Longer than the buffer (a large environment): the bytes are decoded once, so no character is cut in two.
    const chunks = [Buffer.from(statBuffer)];
    for (;;) {
      const chunk = Buffer.allocUnsafe(statBuffer.length);
      const m = readSync(fd, chunk, 0, chunk.length, null);
      chunks.push(chunk.subarray(0, m));
      if (m < chunk.length) return Buffer.concat(chunks).toString('utf8');
    }
  } finally {
    closeSync(fd);
  }
}

export function readProcessTable(root = '/proc'): ProcessTable {
  const byPid = new Map<number, ProcEntry>();
  const children = new Map<number, number[]>();
  let names: string[];
  try {
    names = readdirSync(root);
  } catch {
    return { byPid, children, root };
  }
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue;
    let entry: ProcEntry | null;
    try {
      entry = parseStat(readSmall(join(root, name, 'stat')));
    } catch {
      continue; // exited between readdir and read
    }
    if (entry === null) continue;
    byPid.set(entry.pid, entry);
    const siblings = children.get(entry.ppid);
    if (siblings === undefined) children.set(entry.ppid, [entry.pid]);
    else siblings.push(entry.pid);
  }
  for (const list of children.values()) list.sort((a, b) => a - b);
  return { byPid, children, root };
}

function argvOf(table: ProcessTable, entry: ProcEntry): string[] {
  try {
    const raw = readSmall(join(table.root, String(entry.pid), 'cmdline'));
    const argv = raw.split('\0');
    if (argv.at(-1) === '') argv.pop();
    // Kernel threads and zombies have an empty cmdline; their name is all there is.
    if (argv.length > 0) return argv;
  } catch {
    // exited since the table was read
  }
  return [entry.comm];
}

/** The process's executable, links resolved by the kernel; null for kernel threads, zombies, or another user's. */
function exeOf(table: ProcessTable, entry: ProcEntry): string | null {
  try {
    return readlinkSync(join(table.root, String(entry.pid), 'exe'));
  } catch {
    return null;
  }
}

/** The process `pid` and its descendants, parent before children, siblings by pid. Empty if it is gone. */
export function processTree(table: ProcessTable, pid: number): ObservedProcess[] {
  const out: ObservedProcess[] = [];
  const first = table.byPid.get(pid);
  if (first === undefined) return out;
  const queue: ProcEntry[] = [first];
  const seen = new Set<number>();
  while (queue.length > 0) {
    const entry = queue.shift() as ProcEntry;
    if (seen.has(entry.pid)) continue;
    seen.add(entry.pid);
    out.push({ pid: entry.pid, ppid: entry.ppid, argv: argvOf(table, entry), exe: exeOf(table, entry) });
    for (const child of table.children.get(entry.pid) ?? []) {
      const c = table.byPid.get(child);
      if (c !== undefined) queue.push(c);
    }
  }
  return out;
}

/**
 * The `MOSAIC_*` part of a process's initial environment (/proc/PID/environ): only the fleet's own keys are kept,
 * so an observation never carries the operator's secrets around. null when it cannot be read.
 */
export function readMosaicEnviron(root: string, pid: number): Record<string, string> | null {
  let raw: string;
  try {
    raw = readSmall(join(root, String(pid), 'environ'));
  } catch {
    return null;
  }
  const out: Record<string, string> = {};
  // Entry by entry without splitting: only the few MOSAIC_ ones are sliced out of the whole environment.
  for (let pos = 0; pos <= raw.length;) {
    let end = raw.indexOf('\0', pos);
    if (end < 0) end = raw.length;
    if (raw.startsWith('MOSAIC_', pos)) {
      const eq = raw.indexOf('=', pos);
      if (eq > pos && eq < end) out[raw.slice(pos, eq)] = raw.slice(eq + 1, end);
    }
    pos = end + 1;
  }
  return out;
}
