/**
 * Temp files left by a killed writer: which names are ours (src/base/temp-files.ts), how observation finds them
 * (src/observe/temp-files.ts) and what the sweep removes (src/apply/temp-files.ts) — only our own names, only in
 * our own directories, never through a link, never a write that may still be in progress.
 */
import { spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { removeLeftoverTemps } from '../../src/apply/temp-files.js';
import { findTempFiles } from '../../src/observe/temp-files.js';
import { resolvePaths, type FleetPaths } from '../../src/paths.js';
import { leftoverTemps, tempWriterPid, TEMP_FILE_GRACE_MS } from '../../src/base/temp-files.js';
import { observedBuilder } from '../helpers/builders.js';

/** A pid that is certainly not running: a child that has exited and been reaped. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], {
    encoding: 'utf8',
  });
  return Number(r.stdout);
}

describe('temp file names', () => {
  it.each([
    ['units', '.mosaic-agent@.service.fleet-123-0a1b2c3d.tmp', 123],
    ['units', '.mosaic-tmux-holder.service.fleet-9-ffffffff.tmp', 9],
    ['units', '.notes.service.fleet-123-0a1b2c3d.tmp', null], // not a unit the fleet writes
    ['units', 'mosaic-agent@.service', null],
    ['agents', '.a1.env.fleet-77-00000000.tmp', 77],
    ['agents', '.a1.env.swp', null],
    ['agents', '.a1.txt.fleet-77-00000000.tmp', null],
    ['fleet', '.roster.schema.json.fleet-5-12345678.tmp', 5],
    ['fleet', '.roster.yaml.fleet-5-12345678.tmp', null], // the operator's manifest is never written
    ['reconciler', '.state.json.fleet-5-12345678.tmp', 5],
    ['reconciler', '.lock.fleet-5-12345678.tmp', 5],
    ['backups', '.a.service.20270101T000000Z.bak.fleet-5-12345678.tmp', 5],
    ['tools', '.run-agent.sh.fleet-5-abcdef01.tmp', 5],
    ['tools', '.run-agent.sh.fleet-5-ABCDEF01.tmp', null],
    ['tools', '.run-agent.sh.fleet-0-abcdef01.tmp', null],
    ['run', '.a1.hb.state-4242.tmp', 4242],
    ['run', '.a1.hb.4242', 4242],
    ['run', 'a1.hb', null],
    ['run', '.a1.hb.state-x.tmp', null],
    ['agents', '.a1.hb.4242', null], // heartbeat names only in fleet/run
  ] as const)('%s: %s -> %s', (kind, name, pid) => {
    expect(tempWriterPid(kind, name)).toBe(pid);
  });

  it('a leftover is one whose writer is gone, or that is past the grace period', () => {
    const now = observedBuilder().build().nowMs;
    const o = observedBuilder().build();
    o.tempFiles = [
      { path: '/h/a', pid: 1, writerAlive: false, mtimeMs: now },
      { path: '/h/b', pid: 2, writerAlive: true, mtimeMs: now - TEMP_FILE_GRACE_MS },
      { path: '/h/c', pid: 3, writerAlive: true, mtimeMs: now - TEMP_FILE_GRACE_MS + 1000 },
    ];
    expect(leftoverTemps(o).map((t) => t.path)).toEqual(['/h/a', '/h/b']);
  });
});

describe('finding and removing leftovers on disk', () => {
  let root = '';
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  function setup(): { paths: FleetPaths; outside: string } {
    root = mkdtempSync(join(tmpdir(), 'fleet-temps-'));
    const paths = resolvePaths({ home: join(root, 'home'), unitDir: join(root, 'units') }, { HOME: root });
    for (const d of [
      paths.unitDir,
      paths.agentsDir,
      paths.toolsDir,
      paths.stateDir,
      paths.runDir,
      paths.archiveDir,
    ])
      mkdirSync(d, { recursive: true });
    const outside = join(root, 'outside');
    mkdirSync(outside);
    writeFileSync(join(outside, 'secret'), 'keep me\n');
    return { paths, outside };
  }

  it('removes only our leftovers: not young ones with a live writer, not the operator files, not through a link', async () => {
    const { paths, outside } = setup();
    const dead = deadPid();
    const live = process.pid;
    const put = (path: string, ageMs = 0): string => {
      writeFileSync(path, 'partial');
      if (ageMs > 0) utimesSync(path, new Date(Date.now() - ageMs), new Date(Date.now() - ageMs));
      return path;
    };
    const removed = [
      put(join(paths.agentsDir, `.a1.env.fleet-${dead}-0a1b2c3d.tmp`)),
      put(join(paths.unitDir, `.mosaic-agent@.service.fleet-${dead}-0a1b2c3d.tmp`)),
      put(join(paths.toolsDir, `.run-agent.sh.fleet-${live}-0a1b2c3d.tmp`), 2 * TEMP_FILE_GRACE_MS),
      put(join(paths.stateDir, `.state.json.fleet-${dead}-0a1b2c3d.tmp`)),
      put(join(paths.mosaicHome, 'fleet', `.roster.schema.json.fleet-${dead}-0a1b2c3d.tmp`)),
      put(join(paths.runDir, `.a1.hb.state-${dead}.tmp`)),
      put(join(paths.runDir, `.a2.hb.${dead}`)),
    ];
    const kept = [
      put(join(paths.agentsDir, `.a2.env.fleet-${live}-0a1b2c3d.tmp`)), // a write in progress
      put(join(paths.runDir, `.a3.hb.${live}`)),
      put(join(paths.unitDir, `.notes.fleet-${dead}-0a1b2c3d.tmp`)), // not a unit of ours
      put(join(paths.unitDir, 'other.service')),
      put(join(paths.mosaicHome, 'fleet', `.roster.yaml.fleet-${dead}-0a1b2c3d.tmp`)),
      put(join(paths.agentsDir, 'a1.env')),
      put(join(root, `.a1.env.fleet-${dead}-0a1b2c3d.tmp`)), // not in a directory of ours
    ];
    // A link with one of our temp names, pointing outside: not a file our writers made.
    const linkName = join(paths.agentsDir, `.a9.env.fleet-${dead}-0a1b2c3d.tmp`);
    symlinkSync(join(outside, 'secret'), linkName);

    const found = findTempFiles(paths);
    expect(found.map((t) => t.path).sort()).toEqual([...removed, kept[0], kept[1]].sort());
    const o = observedBuilder().build();
    o.nowMs = Date.now();
    o.tempFiles = found;
    const result = await removeLeftoverTemps(paths, leftoverTemps(o));
    expect(result.map((r) => r.path).sort()).toEqual([...removed].sort());
    expect(result.every((r) => r.error === null)).toBe(true);
    for (const p of removed) expect(existsSync(p), p).toBe(false);
    for (const p of kept) expect(existsSync(p), p).toBe(true);
    expect(existsSync(linkName)).toBe(true);
    expect(readFileSync(join(outside, 'secret'), 'utf8')).toBe('keep me\n');
  });

  it('a directory of ours that is a link is not listed, and nothing behind it is removed', async () => {
    const { paths, outside } = setup();
    const dead = deadPid();
    rmSync(paths.agentsDir, { recursive: true });
    symlinkSync(outside, paths.agentsDir);
    const behind = join(outside, `.a1.env.fleet-${dead}-0a1b2c3d.tmp`);
    writeFileSync(behind, 'x');
    expect(findTempFiles(paths)).toEqual([]);
    // Even if told to (an observation made before the link was planted), the sweep re-checks the way.
    const result = await removeLeftoverTemps(paths, [
      {
        path: join(paths.agentsDir, `.a1.env.fleet-${dead}-0a1b2c3d.tmp`),
        pid: dead,
        writerAlive: false,
        mtimeMs: 0,
      },
    ]);
    expect(result).toEqual([
      {
        path: join(paths.agentsDir, `.a1.env.fleet-${dead}-0a1b2c3d.tmp`),
        error: expect.stringMatching(/link/) as string,
      },
    ]);
    expect(existsSync(behind)).toBe(true);
  });
});
