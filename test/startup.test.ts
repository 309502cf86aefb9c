/**
 * Start-up economy (docs/benchmarks.md, issue 14's third pass): what a `fleet` run loads, and the promise forms
 * of node:fs that replace node:fs/promises (src/fs-async.ts).
 *
 * - The built CLI, through bin/fleet.js exactly as an operator runs it, with a preloaded hook that prints node's
 *   list of loaded built-in modules at exit (`process.moduleLoadList`, which Node 20 and 22 both have): `--version`
 *   and `validate` of a stub fleet load neither node:crypto (≈ 13 ms) nor node:fs/promises (≈ 15 ms), and the
 *   entry point is not run through the ES module loader. `fleet ps` skips node:crypto too; a sandbox would be
 *   needed to run it, and it shares these modules' import graph up to the observation.
 * - fs-async against node:fs/promises on the same files: the same results and the same error codes.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as fa from '../src/fs-async.js';
import { assertFreshBuild, FLEET_BIN } from './manifest/helpers.js';

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(join(tmpdir(), 'fleet-startup-test-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** The built-in modules a `fleet ARGS` process had loaded when it exited, and its outcome. */
function loadedBy(args: string[]): { code: number | null; stdout: string; modules: string[] } {
  const hook = join(dir, 'loaded-hook.cjs');
  const out = join(dir, 'loaded.json');
  fs.rmSync(out, { force: true });
  fs.writeFileSync(
    hook,
    `process.on('exit', () => require('node:fs').writeFileSync(${JSON.stringify(out)}, JSON.stringify(process.moduleLoadList)));\n`,
  );
  const r = spawnSync(process.execPath, ['--require', hook, FLEET_BIN, ...args], {
    cwd: dir,
    encoding: 'utf8',
    timeout: 60_000,
    env: { PATH: process.env.PATH, HOME: dir, MOSAIC_HOME: join(dir, 'no-such-home'), NO_COLOR: '1' },
  });
  const modules = JSON.parse(fs.readFileSync(out, 'utf8')) as unknown;
  if (!Array.isArray(modules) || modules.length === 0) throw new Error('no module list was written');
  return { code: r.status, stdout: r.stdout, modules: modules as string[] };
}

const has = (modules: string[], name: string) => modules.includes(`NativeModule ${name}`);

describe('what a fleet run loads (the built CLI)', () => {
  beforeAll(() => assertFreshBuild());

  it('--version loads neither node:crypto nor node:fs/promises, and no ES module job runs the entry point', () => {
    const r = loadedBy(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
    // The hook sees node's own bootstrap too: the list is real (node:fs is always there).
    expect(has(r.modules, 'fs')).toBe(true);
    expect(has(r.modules, 'crypto')).toBe(false);
    expect(has(r.modules, 'fs/promises')).toBe(false);
    expect(has(r.modules, 'internal/fs/promises')).toBe(false);
    expect(has(r.modules, 'internal/modules/esm/module_job')).toBe(false);
  });

  it('validate of a stub fleet loads neither node:crypto nor node:fs/promises', () => {
    const roster = join(dir, 'roster.yaml');
    fs.writeFileSync(
      roster,
      'version: 1\ntmux: {socket_name: t}\nagents:\n  - name: a1\n    runtime: stub\n    model_hint: m1\n',
    );
    const r = loadedBy(['validate', roster]);
    expect(r.code).toBe(0);
    expect(has(r.modules, 'crypto')).toBe(false);
    expect(has(r.modules, 'internal/fs/promises')).toBe(false);
  });
});

describe('src/fs-async.ts behaves as node:fs/promises', () => {
  /** Both ways' outcome: the value, or the error's code. */
  async function both<T>(a: () => Promise<T>, b: () => Promise<T>): Promise<[unknown, unknown]> {
    const settle = (p: () => Promise<T>) =>
      p().then(
        (v) => ({ ok: v }),
        (e: NodeJS.ErrnoException) => ({ code: e.code, syscall: e.syscall }),
      );
    return [await settle(a), await settle(b)];
  }

  it('gives the same results and the same error codes', async () => {
    const file = join(dir, 'f.txt');
    const link = join(dir, 'link');
    fs.writeFileSync(file, 'héllo\n');
    fs.symlinkSync(file, link);
    const missing = join(dir, 'missing', 'x');
    const cases: [() => Promise<unknown>, () => Promise<unknown>][] = [
      [() => fa.readFile(file, 'utf8'), () => fsp.readFile(file, 'utf8')],
      [() => fa.readFile(missing, 'utf8'), () => fsp.readFile(missing, 'utf8')],
      [() => fa.readdir(dir).then((x) => x.sort()), () => fsp.readdir(dir).then((x) => x.sort())],
      [() => fa.stat(file).then((s) => s.size), () => fsp.stat(file).then((s) => s.size)],
      [() => fa.stat(missing), () => fsp.stat(missing)],
      [
        () => fa.lstat(link).then((s) => s.isSymbolicLink()),
        () => fsp.lstat(link).then((s) => s.isSymbolicLink()),
      ],
      [() => fa.readlink(link), () => fsp.readlink(link)],
      [() => fa.realpath(link), () => fsp.realpath(link)],
      [() => fa.access(missing), () => fsp.access(missing)],
      [() => fa.rm(missing, { force: true }), () => fsp.rm(missing, { force: true })],
      [() => fa.rm(missing), () => fsp.rm(missing)],
    ];
    for (const [a, b] of cases) {
      const [x, y] = await both(a, b);
      expect(x).toEqual(y);
    }
    // mkdir -p answers with the first directory it made (each way makes its own here), or undefined.
    expect(await fa.mkdir(join(dir, 'a', 'b'), { recursive: true })).toBe(join(dir, 'a'));
    expect(await fsp.mkdir(join(dir, 'c', 'd'), { recursive: true })).toBe(join(dir, 'c'));
    expect(await fa.mkdir(join(dir, 'a', 'b'), { recursive: true })).toBeUndefined();
  });

  it('open gives a handle that writes, sets the mode, syncs, stats, reads and closes; O_NOFOLLOW refuses a link', async () => {
    const path = join(dir, 'handle.txt');
    const { O_CREAT, O_EXCL, O_WRONLY, O_RDONLY, O_NOFOLLOW } = fa.constants;
    const w = await fa.open(path, O_WRONLY | O_CREAT | O_EXCL, 0o600);
    await w.writeFile('one\ntwo\n');
    await w.chmod(0o640);
    await w.sync();
    expect((await w.stat()).size).toBe(8);
    await w.close();
    expect(fs.statSync(path).mode & 0o777).toBe(0o640);
    const r = await fa.open(path, O_RDONLY | O_NOFOLLOW);
    expect(await r.readFile('utf8')).toBe('one\ntwo\n');
    await r.close();
    // A second O_EXCL create fails as node:fs/promises' does.
    const [x, y] = await both(
      () => fa.open(path, O_WRONLY | O_CREAT | O_EXCL, 0o600),
      () => fsp.open(path, O_WRONLY | O_CREAT | O_EXCL, 0o600),
    );
    expect(x).toEqual({ code: 'EEXIST', syscall: 'open' });
    expect(y).toEqual(x);
    fs.symlinkSync(path, join(dir, 'handle-link'));
    const [l1, l2] = await both(
      () => fa.open(join(dir, 'handle-link'), O_RDONLY | O_NOFOLLOW),
      () => fsp.open(join(dir, 'handle-link'), O_RDONLY | O_NOFOLLOW),
    );
    expect(l1).toEqual({ code: 'ELOOP', syscall: 'open' });
    expect(l2).toEqual(l1);
  });
});
