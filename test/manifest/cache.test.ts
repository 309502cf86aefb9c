/**
 * The parsed-manifest cache (src/manifest/cache.ts): used only for exactly the manifests, code and host it was
 * made from; never through a link; off without a build id.
 */
import {
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  desiredCachePath,
  loadDesiredCached,
  rememberDesired,
  setCodeIdentity,
} from '../../src/manifest/cache.js';
import { loadDesired } from '../../src/manifest/load.js';

const roster = (model: string, extra = '') =>
  [
    'version: 1',
    'tmux: {socket_name: cachefleet}',
    'reconcile:',
    '  restart: {policy: when-idle, settle_seconds: 5, max_defer_seconds: 600}',
    'agents:',
    `  - {name: a1, runtime: claude, model_hint: ${model}, working_directory: ~/w/a1}`,
    `  - {name: a2, runtime: stub, model_hint: m, command: "sleep 600 | cat"}`,
    extra,
    '',
  ].join('\n');

describe('the parsed-manifest cache', () => {
  let root: string;
  let dir: string;
  let stateDir: string;
  let home: string;
  const ctx = () => ({ userHome: root, mosaicHome: home, hostname: 'h1' });

  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'fleet-cache-'));
    home = join(root, 'mosaic');
    dir = join(home, 'fleet');
    stateDir = join(dir, 'reconciler');
    mkdirSync(stateDir, { recursive: true });
    writeFileSync(join(dir, 'roster.yaml'), roster('m1'));
    setCodeIdentity('build-1');
  });
  afterEach(() => {
    setCodeIdentity(null);
    rmSync(root, { recursive: true, force: true });
  });

  it('answers from the cache only while the manifests, the code and the host are what it was made from', async () => {
    const first = await loadDesiredCached([dir], ctx(), stateDir);
    expect(first.hit).toBe(false);
    expect(first.desired).toEqual(await loadDesired([dir], ctx()));
    await rememberDesired(stateDir, home, first);
    const again = await loadDesiredCached([dir], ctx(), stateDir);
    expect(again.hit).toBe(true);
    expect(again.desired).toStrictEqual(first.desired);

    // The same size, the old modification time put back: the change time still tells.
    const file = join(dir, 'roster.yaml');
    const before = statSync(file);
    writeFileSync(file, roster('m2'));
    utimesSync(file, before.atime, before.mtime);
    expect(statSync(file).size).toBe(before.size);
    const edited = await loadDesiredCached([dir], ctx(), stateDir);
    expect(edited.hit).toBe(false);
    expect(edited.desired.agents.find((a) => a.name === 'a1')?.modelHint).toBe('m2');
    await rememberDesired(stateDir, home, edited);
    expect((await loadDesiredCached([dir], ctx(), stateDir)).hit).toBe(true);

    // A new manifest in the directory, another host context, another build: each misses.
    writeFileSync(join(dir, 'more.yaml'), 'version: 1\nagents: []\n');
    expect((await loadDesiredCached([dir], ctx(), stateDir)).hit).toBe(false);
    rmSync(join(dir, 'more.yaml'));
    expect((await loadDesiredCached([dir], ctx(), stateDir)).hit).toBe(true);
    expect((await loadDesiredCached([dir], { ...ctx(), hostname: 'h2' }, stateDir)).hit).toBe(false);
    setCodeIdentity('build-2');
    expect((await loadDesiredCached([dir], ctx(), stateDir)).hit).toBe(false);
  });

  it('an invalid manifest is reported as ever, whatever the cache holds', async () => {
    await rememberDesired(stateDir, home, await loadDesiredCached([dir], ctx(), stateDir));
    writeFileSync(join(dir, 'roster.yaml'), roster('m1', '  - {name: a1, runtime: stub}'));
    await expect(loadDesiredCached([dir], ctx(), stateDir)).rejects.toThrow(/duplicate|a1/);
  });

  it('a damaged or foreign cache file is ignored, and a link there is neither read nor written through', async () => {
    writeFileSync(desiredCachePath(stateDir), '{ not json');
    expect((await loadDesiredCached([dir], ctx(), stateDir)).hit).toBe(false);

    const loaded = await loadDesiredCached([dir], ctx(), stateDir);
    await rememberDesired(stateDir, home, loaded);
    const good = readFileSync(desiredCachePath(stateDir), 'utf8');
    rmSync(desiredCachePath(stateDir));
    const elsewhere = join(root, 'elsewhere.json');
    writeFileSync(elsewhere, good);
    symlinkSync(elsewhere, desiredCachePath(stateDir));
    expect((await loadDesiredCached([dir], ctx(), stateDir)).hit).toBe(false);
    writeFileSync(elsewhere, 'untouched');
    await rememberDesired(stateDir, home, loaded);
    expect(readFileSync(elsewhere, 'utf8')).toBe('untouched');
  });

  it('without a build id nothing is cached or read', async () => {
    setCodeIdentity(null);
    const loaded = await loadDesiredCached([dir], ctx(), stateDir);
    expect(loaded.key).toBeNull();
    await rememberDesired(stateDir, home, loaded);
    expect(() => statSync(desiredCachePath(stateDir))).toThrow();
  });
});
