import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { writeFileAtomic } from '../../src/base/atomic.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('atomic writes', () => {
  it('writes the bytes with exactly the intended mode and leaves no temp file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fleet-atomic-'));
    dirs.push(dir);
    const p = join(dir, 'sub', 'x.sh');
    await writeFileAtomic(p, '#!/bin/sh\necho hi\n', 0o755);
    expect(readFileSync(p, 'utf8')).toBe('#!/bin/sh\necho hi\n');
    expect(statSync(p).mode & 0o777).toBe(0o755);
    writeFileSync(p, 'old');
    await writeFileAtomic(p, 'new\n', 0o600);
    expect(readFileSync(p, 'utf8')).toBe('new\n');
    expect(statSync(p).mode & 0o777).toBe(0o600);
    expect(readdirSync(join(dir, 'sub'))).toEqual(['x.sh']);
  });
});
