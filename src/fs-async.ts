/**
 * The promise forms of the file functions fleet uses, made from node:fs's callback functions.
 *
 * Why not node:fs/promises: loading it costs a `fleet` run ≈ 15 ms of CPU (it brings node's streams with it,
 * measured with --cpu-prof: docs/benchmarks.md), which is 5 % of a whole no-op, while node:fs is loaded before
 * any code of ours runs. Same functions, same arguments, same errors (they are the same libuv calls); `open`
 * gives a small file handle with just the methods fleet calls, over the descriptor.
 */
import * as fs from 'node:fs';
import type * as fsp from 'node:fs/promises';
import { promisify } from 'node:util';

export const constants = fs.constants;

/** `f`'s promise form, typed as node:fs/promises types its namesake (promisify cannot pick among overloads). */
function promised<T>(f: (...args: never[]) => void): T {
  return promisify(f) as T;
}

export const access = promised<typeof fsp.access>(fs.access);
export const chmod = promised<typeof fsp.chmod>(fs.chmod);
export const link = promised<typeof fsp.link>(fs.link);
export const lstat = promised<typeof fsp.lstat>(fs.lstat);
export const mkdir = promised<typeof fsp.mkdir>(fs.mkdir);
export const mkdtemp = promised<typeof fsp.mkdtemp>(fs.mkdtemp);
export const readdir = promised<typeof fsp.readdir>(fs.readdir);
export const readFile = promised<typeof fsp.readFile>(fs.readFile);
export const readlink = promised<typeof fsp.readlink>(fs.readlink);
/** The system's realpath(3), as node:fs/promises' is (fs.realpath without .native resolves in JavaScript). */
export const realpath = promised<typeof fsp.realpath>(fs.realpath.native);
export const rename = promised<typeof fsp.rename>(fs.rename);
export const rm = promised<typeof fsp.rm>(fs.rm);
export const rmdir = promised<typeof fsp.rmdir>(fs.rmdir);
export const stat = promised<typeof fsp.stat>(fs.stat);
export const unlink = promised<typeof fsp.unlink>(fs.unlink);
export const writeFile = promised<typeof fsp.writeFile>(fs.writeFile);

const fchmod = promisify(fs.fchmod);
const fstat = promisify(fs.fstat);
const fsync = promisify(fs.fsync);
const close = promisify(fs.close);
const ftruncate = promisify(fs.ftruncate);
const openFd = promisify(fs.open);
const writeFd = promisify(fs.writeFile);
const readFd = promisify(fs.readFile);

/** An open file: the methods of node:fs/promises' FileHandle that fleet uses. */
export interface FileHandle {
  readonly fd: number;
  writeFile(data: string, encoding?: BufferEncoding): Promise<void>;
  readFile(encoding: BufferEncoding): Promise<string>;
  chmod(mode: number): Promise<void>;
  stat(): Promise<fs.Stats>;
  sync(): Promise<void>;
  truncate(len: number): Promise<void>;
  close(): Promise<void>;
}

export async function open(path: string, flags: number | string, mode?: number): Promise<FileHandle> {
  const fd = await openFd(path, flags, mode);
  return {
    fd,
    writeFile: (data, encoding = 'utf8') => writeFd(fd, data, encoding),
    readFile: (encoding) => readFd(fd, encoding),
    chmod: (m) => fchmod(fd, m),
    stat: () => fstat(fd),
    sync: () => fsync(fd),
    truncate: (len) => ftruncate(fd, len),
    close: () => close(fd),
  };
}
