import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir, hostname } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { acquireLock } from '../../src/apply/lock.js';
import { UserError } from '../../src/errors.js';

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'fleet-lock-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A lock left behind by a reconciler that died: its owner pid is a process that has exited. */
async function writeStaleLock(dir: string): Promise<void> {
  const child = spawn(process.execPath, ['-e', '0']);
  const deadPid = await new Promise<number>((resolve) => child.on('exit', () => resolve(child.pid ?? 0)));
  writeFileSync(
    join(dir, 'lock'),
    JSON.stringify({ pid: deadPid, host: hostname(), command: 'crashed', since: new Date().toISOString() }),
  );
}

describe('reconciler lock', () => {
  it('lets one holder in, makes the second wait, then fail naming the holder', async () => {
    const dir = tempDir();
    const first = await acquireLock(dir, 'fleet reconcile --watch');
    const started = Date.now();
    const second = acquireLock(dir, 'fleet reconcile', 300);
    await expect(second).rejects.toThrow(UserError);
    await expect(acquireLock(dir, 'fleet reconcile', 100)).rejects.toThrow(
      new RegExp(`pid ${process.pid} on ${hostname()} \\(fleet reconcile --watch, since `),
    );
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);
    await first.release();
    const third = await acquireLock(dir, 'fleet reconcile', 100);
    await third.release();
    expect(existsSync(join(dir, 'lock'))).toBe(false);
  });

  it('hands the lock over when the holder releases it while the second waits', async () => {
    const dir = tempDir();
    const first = await acquireLock(dir, 'a');
    setTimeout(() => void first.release(), 150);
    const second = await acquireLock(dir, 'b', 5_000);
    expect(JSON.parse(readFileSync(join(dir, 'lock'), 'utf8'))).toMatchObject({
      command: 'b',
      pid: process.pid,
    });
    await second.release();
  });

  it('treats a lock file that holds no owner record (a torn write, `5`) as garbage, not as pid undefined', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'lock'), '5');
    const lock = await acquireLock(dir, 'after-garbage', 200);
    expect(JSON.parse(readFileSync(join(dir, 'lock'), 'utf8'))).toMatchObject({ command: 'after-garbage' });
    await lock.release();
  });

  it('lets exactly one of many contenders take over a stale lock at a time', async () => {
    const dir = tempDir();
    await writeStaleLock(dir);
    let holders = 0;
    let most = 0;
    await Promise.all(
      [1, 2, 3, 4, 5, 6].map(async (i) => {
        const lock = await acquireLock(dir, `contender ${i}`, 10_000);
        holders++;
        most = Math.max(most, holders);
        await new Promise((r) => setTimeout(r, 30));
        holders--;
        await lock.release();
      }),
    );
    expect(most).toBe(1);
    expect(existsSync(join(dir, 'lock'))).toBe(false);
  });

  it('takes over a lock whose owner process is gone', async () => {
    const dir = tempDir();
    await writeStaleLock(dir);
    const lock = await acquireLock(dir, 'fresh', 200);
    expect(JSON.parse(readFileSync(join(dir, 'lock'), 'utf8'))).toMatchObject({ command: 'fresh' });
    await lock.release();
  });
});
