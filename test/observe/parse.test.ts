/**
 * The parsers under observe(): heartbeats, the state file, /proc, tmux's pane listing, wants symlinks.
 * (The same behaviours are exercised against the real machine in observe.sandbox.test.ts.)
 */
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseHeartbeat, parseState } from '../../src/observe/files.js';
import { parseStat, processTree, readProcessTable } from '../../src/observe/proc.js';
import { enabledBySymlink, templateOf } from '../../src/observe/systemd.js';
import { PANE_FORMAT, parsePanes } from '../../src/observe/tmux.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fleet-parse-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('parseHeartbeat', () => {
  const now = 1_800_000_000_000;
  it('reads ts and the other key=value lines', () => {
    const hb = parseHeartbeat('a', '/r/a.hb', 'ts=1799999990\npid=42\nmodel=opus\n', now);
    expect(hb).toEqual({
      agent: 'a',
      path: '/r/a.hb',
      exists: true,
      ts: 1799999990,
      ageSeconds: 10,
      malformed: false,
      keys: { ts: '1799999990', pid: '42', model: 'opus' },
    });
  });
  it.each([['ts=x\n'], [''], ['pid=3\n'], ['ts=\n'], ['ts=12abc'], ['garbage without equals']])(
    'calls %j malformed, never throws',
    (content) => {
      const hb = parseHeartbeat('a', '/r/a.hb', content, now);
      expect(hb).toMatchObject({ exists: true, ts: null, ageSeconds: null, malformed: true });
    },
  );
  it('a missing file is missing, not malformed; a clock ahead of ours reads as age 0', () => {
    expect(parseHeartbeat('a', '/r/a.hb', null, now)).toMatchObject({ exists: false, malformed: false });
    expect(parseHeartbeat('a', '/r/a.hb', 'ts=1800000100', now).ageSeconds).toBe(0);
  });
});

describe('parseState', () => {
  it('keeps valid entries and drops malformed ones', () => {
    const s = parseState(
      JSON.stringify({
        version: 1,
        written: { '/a': 'h1', '/b': 3 },
        backoff: { x: { attempts: 2, lastAttemptMs: 1, nextAttemptMs: 2 }, y: { attempts: 'no' } },
        budgetWarned: { a1: 1_800_000_000_000, a2: 'soon', a3: null },
      }),
    );
    expect(s).toEqual({
      version: 1,
      written: { '/a': 'h1' },
      backoff: { x: { attempts: 2, lastAttemptMs: 1, nextAttemptMs: 2 } },
      budgetWarned: { a1: 1_800_000_000_000 },
    });
    expect(parseState('{"version":1,"written":{},"budgetWarned":{"a":"x"}}')).toEqual({
      version: 1,
      written: {},
      backoff: {},
    });
  });
  it.each([[null], ['{'], ['[]'], ['{"version":2,"written":{}}'], ['null']])(
    'treats %j as empty state',
    (text) => {
      expect(parseState(text)).toEqual({ version: 1, written: {}, backoff: {} });
    },
  );
});

describe('/proc', () => {
  it('parses stat lines whose comm holds spaces and parentheses', () => {
    expect(parseStat('123 (tmux: server) S 1 123 123 0 -1')).toEqual({
      pid: 123,
      ppid: 1,
      comm: 'tmux: server',
    });
    expect(parseStat('77 (a) b)) R 5 1')).toEqual({ pid: 77, ppid: 5, comm: 'a) b)' });
    expect(parseStat('garbage')).toBeNull();
  });

  it('builds a pane tree from a process table, falling back to comm for an empty cmdline', async () => {
    const proc = join(dir, 'proc');
    const add = async (pid: number, ppid: number, comm: string, cmdline: string): Promise<void> => {
      await mkdir(join(proc, String(pid)), { recursive: true });
      await writeFile(join(proc, String(pid), 'stat'), `${pid} (${comm}) S ${ppid} 0 0`);
      await writeFile(join(proc, String(pid), 'cmdline'), cmdline);
    };
    await add(10, 1, 'bash', 'bash\0/x/stub-agent.sh\0--model\0m\0');
    await add(12, 10, 'sleep', 'sleep\x005\0');
    await add(11, 10, 'zombie', '');
    await add(20, 1, 'other', 'other\0');
    await mkdir(join(proc, 'self'), { recursive: true });
    const table = readProcessTable(proc);
    expect(processTree(table, 10)).toEqual([
      { pid: 10, ppid: 1, argv: ['bash', '/x/stub-agent.sh', '--model', 'm'], exe: null },
      { pid: 11, ppid: 10, argv: ['zombie'], exe: null },
      { pid: 12, ppid: 10, argv: ['sleep', '5'], exe: null },
    ]);
    expect(processTree(table, 999)).toEqual([]);
  });
});

describe('parsePanes', () => {
  const line = (fields: string[]): string => fields.join('|:|');
  it('reads the fields PANE_FORMAT asks for, in order, and keeps separators inside the start command', () => {
    expect(PANE_FORMAT.split('|:|')).toHaveLength(13);
    const out = [
      line(['b', '0', '0', '200', 'bash', '1', '', '9', '100', '90', '50', '/w', 'bash']),
      line(['a', '0', '0', '100', 'pi', '0', '', '', '100', '90', '50', '/w', 'bash -lc "x |:| y"']),
      'short|:|line',
      '',
    ].join('\n');
    const panes = parsePanes(out);
    expect(panes.map((p) => p.session)).toEqual(['a', 'b']);
    expect(panes[0]).toMatchObject({
      panePid: 100,
      currentCommand: 'pi',
      dead: false,
      deadStatus: null,
      activity: 100,
      created: 50,
      startCommand: 'bash -lc "x |:| y"',
    });
    expect(panes[1]).toMatchObject({ dead: true, deadStatus: null, deadSignal: 9 });
  });
});

describe('unit files', () => {
  it('names the template of an instance', () => {
    expect(templateOf('mosaic-agent@coder0.service')).toBe('mosaic-agent@.service');
    expect(templateOf('mosaic-agent@.service')).toBeNull();
    expect(templateOf('mosaic-tmux-holder.service')).toBeNull();
  });

  it('finds instances enabled through wants/requires symlinks, and only mosaic ones', async () => {
    const unitDir = join(dir, 'units');
    await mkdir(join(unitDir, 'default.target.wants'), { recursive: true });
    await mkdir(join(unitDir, 'timers.target.wants'), { recursive: true });
    await symlink('/x', join(unitDir, 'default.target.wants', 'mosaic-agent@a.service'));
    await symlink('/x', join(unitDir, 'default.target.wants', 'other.service'));
    await symlink('/x', join(unitDir, 'timers.target.wants', 'mosaic-reconcile.timer'));
    expect([...(await enabledBySymlink(unitDir))].sort()).toEqual([
      'mosaic-agent@a.service',
      'mosaic-reconcile.timer',
    ]);
    expect(await enabledBySymlink(join(dir, 'nope'))).toEqual(new Set());
  });
});
