/**
 * No write through a link (src/base/safe-path.ts and its users): the atomic writer, the state file, the journal,
 * the lock, the executor's backups and archives, and observation's reads. Each attack plants a link where a file
 * or directory of the fleet belongs, pointing outside the home; each must be refused with an error naming the
 * link, with nothing outside changed and nothing outside read.
 */
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { writeFileAtomic } from '../../src/base/atomic.js';
import { applyPlan, type ApplyContext } from '../../src/apply/executor.js';
import { appendJournal, readJournal, type JournalEntry } from '../../src/apply/journal.js';
import { acquireLock } from '../../src/apply/lock.js';
import {
  findLink,
  LinkRefusedError,
  mkdirNoFollow,
  readNoFollow,
  rootFor,
} from '../../src/base/safe-path.js';
import { writeState } from '../../src/apply/state.js';
import type { Runner } from '../../src/exec.js';
import { DEFAULT_BACKOFF, type Action, type WriteFileAction } from '../../src/model/plan.js';
import {
  readDirFiles,
  readHeartbeats,
  readObservedFile,
  readState,
  readTree,
} from '../../src/observe/files.js';
import { snapshotTree } from '../helpers/snapshot.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const SECRET = 'TOKEN=outside-secret-7f3a\n';

/** A home, a unit dir and an "outside" tree with a secret file and a directory of its own. */
function world() {
  const root = mkdtempSync(join(tmpdir(), 'fleet-links-'));
  dirs.push(root);
  const home = join(root, 'home');
  const units = join(root, 'units');
  const outside = join(root, 'outside');
  mkdirSync(join(home, 'fleet', 'agents'), { recursive: true });
  mkdirSync(units, { recursive: true });
  mkdirSync(join(outside, 'dir'), { recursive: true });
  writeFileSync(join(outside, 'secret'), SECRET, { mode: 0o600 });
  writeFileSync(join(outside, 'dir', 'a.env'), SECRET);
  return { root, home, units, outside, stateDir: join(home, 'fleet', 'reconciler') };
}

const noRunner: Runner = {
  log: [],
  run: () => Promise.reject(new Error('no command expected')),
};

function ctxFor(stateDir: string, runner: Runner = noRunner): ApplyContext {
  return {
    runner,
    stateDir,
    state: { version: 1, written: {}, backoff: {} },
    nowMs: 1_800_000_000_000,
    backoff: DEFAULT_BACKOFF,
  };
}

function write(path: string, after: string, over: Partial<WriteFileAction> = {}): WriteFileAction {
  return {
    kind: 'write-file',
    role: 'env',
    path,
    before: null,
    after,
    mode: 0o600,
    backup: false,
    reason: 'test',
    agent: 'a',
    ...over,
  };
}

/** Everything under the home: no file there may hold the outside secret. */
function homeHoldsSecret(home: string): boolean {
  return Object.values(snapshotTree(home)).some((v) =>
    Buffer.from(v.split(':').slice(1).join(':'), 'base64').toString('utf8').includes('outside-secret'),
  );
}

describe('safe-path: finding links', () => {
  it('finds a link at the file, at a directory on the way, or none; the root itself may be a link', async () => {
    const w = world();
    expect(await findLink(w.home, join(w.home, 'fleet', 'agents', 'a.env'))).toBeNull();
    symlinkSync(join(w.outside, 'secret'), join(w.home, 'fleet', 'agents', 'a.env'));
    expect(await findLink(w.home, join(w.home, 'fleet', 'agents', 'a.env'))).toEqual({
      path: join(w.home, 'fleet', 'agents', 'a.env'),
      target: join(w.outside, 'secret'),
    });
    symlinkSync(join(w.outside, 'dir'), join(w.home, 'tools'));
    expect((await findLink(w.home, join(w.home, 'tools', 'fleet', 'x.sh')))?.path).toBe(
      join(w.home, 'tools'),
    );
    // A home that is itself a link (the operator's choice of where it lives) is fine.
    const linkedHome = join(w.root, 'home-link');
    symlinkSync(w.home, linkedHome);
    expect(await findLink(linkedHome, join(linkedHome, 'fleet', 'run'))).toBeNull();
    expect(rootFor(join(w.units, 'mosaic-agent@.service'), [w.home])).toBe(w.units);
    expect(rootFor(join(w.home, 'fleet', 'x'), [w.home])).toBe(w.home);
  });

  it('reads without following a link, and reports a dangling one as a link', async () => {
    const w = world();
    const p = join(w.home, 'fleet', 'agents', 'a.env');
    symlinkSync(join(w.outside, 'missing'), p);
    expect(await readNoFollow(p)).toEqual({
      kind: 'link',
      link: { path: p, target: join(w.outside, 'missing') },
    });
    expect(await readNoFollow(join(w.home, 'nope'))).toEqual({ kind: 'missing' });
    expect(await readNoFollow(join(w.home, 'fleet'))).toEqual({ kind: 'other' });
  });

  it('creates directories one by one and refuses a link among them', async () => {
    const w = world();
    await mkdirNoFollow(w.home, join(w.home, 'fleet', 'archive'));
    expect(statSync(join(w.home, 'fleet', 'archive')).isDirectory()).toBe(true);
    symlinkSync(join(w.outside, 'dir'), join(w.home, 'fleet', 'reconciler'));
    await expect(mkdirNoFollow(w.home, join(w.home, 'fleet', 'reconciler', 'backups'))).rejects.toThrow(
      LinkRefusedError,
    );
    expect(readdirSync(join(w.outside, 'dir'))).toEqual(['a.env']);
  });
});

describe('safe-path: every writer refuses a link', () => {
  it('atomic write: a file link, a dangling link and a directory link are refused, naming the link', async () => {
    const w = world();
    const before = snapshotTree(w.outside);
    const env = join(w.home, 'fleet', 'agents', 'a.env');
    symlinkSync(join(w.outside, 'secret'), env);
    await expect(writeFileAtomic(env, 'X=1\n', 0o600, w.home)).rejects.toThrow(
      `refusing to follow a link: ${env} -> ${join(w.outside, 'secret')}`,
    );
    rmSync(env);
    symlinkSync(join(w.outside, 'nothing-here'), env);
    await expect(writeFileAtomic(env, 'X=1\n', 0o600, w.home)).rejects.toThrow(env);
    rmSync(join(w.home, 'fleet', 'agents'), { recursive: true });
    symlinkSync(join(w.outside, 'dir'), join(w.home, 'fleet', 'agents'));
    await expect(writeFileAtomic(env, 'X=1\n', 0o600, w.home)).rejects.toThrow(
      join(w.home, 'fleet', 'agents'),
    );
    expect(snapshotTree(w.outside)).toEqual(before);
  });

  it('state file, journal and lock: refused through fleet/reconciler/ as a link, and as links themselves', async () => {
    const w = world();
    const before = snapshotTree(w.outside);
    symlinkSync(join(w.outside, 'dir'), w.stateDir);
    await expect(writeState(w.stateDir, { version: 1, written: {}, backoff: {} })).rejects.toThrow(
      w.stateDir,
    );
    const entry = { format_version: 1, actions: [] } as unknown as JournalEntry;
    await expect(appendJournal(w.stateDir, entry)).rejects.toThrow(w.stateDir);
    await expect(acquireLock(w.stateDir, 'test', 0)).rejects.toThrow(LinkRefusedError);
    expect(snapshotTree(w.outside)).toEqual(before);

    rmSync(w.stateDir);
    mkdirSync(w.stateDir);
    symlinkSync(join(w.outside, 'secret'), join(w.stateDir, 'state.json'));
    symlinkSync(join(w.outside, 'secret'), join(w.stateDir, 'journal.jsonl'));
    symlinkSync(join(w.outside, 'secret'), join(w.stateDir, 'lock'));
    await expect(writeState(w.stateDir, { version: 1, written: {}, backoff: {} })).rejects.toThrow(
      join(w.stateDir, 'state.json'),
    );
    await expect(appendJournal(w.stateDir, entry)).rejects.toThrow(join(w.stateDir, 'journal.jsonl'));
    await expect(readJournal(w.stateDir)).rejects.toThrow(join(w.stateDir, 'journal.jsonl'));
    await expect(acquireLock(w.stateDir, 'test', 0)).rejects.toThrow(join(w.stateDir, 'lock'));
    // Observation reads no state through the link: no memory, not the outside file.
    expect(await readState(w.stateDir)).toEqual({ version: 1, written: {}, backoff: {} });
    expect(snapshotTree(w.outside)).toEqual(before);
  });

  it('executor: a link anywhere the plan writes, archives or backs up is refused before the first action', async () => {
    const w = world();
    const before = snapshotTree(w.outside);
    const good = join(w.home, 'fleet', 'agents', 'good.env');
    const archived = join(w.home, 'fleet', 'agents', 'old.env');
    writeFileSync(archived, 'MOSAIC_AGENT_NAME=old\n');
    symlinkSync(join(w.outside, 'dir'), join(w.home, 'fleet', 'archive'));
    const actions: Action[] = [
      write(good, 'MOSAIC_AGENT_NAME=good\n', { agent: 'good' }),
      {
        kind: 'archive-file',
        agent: 'old',
        path: archived,
        to: join(w.home, 'fleet', 'archive', 'old.1.env'),
        reason: 'test',
      },
    ];
    await expect(applyPlan(actions, ctxFor(w.stateDir))).rejects.toThrow(join(w.home, 'fleet', 'archive'));
    // Nothing was written: not the first action's file, not the state file.
    expect(readdirSync(join(w.home, 'fleet', 'agents'))).toEqual(['old.env']);
    expect(readdirSync(join(w.home, 'fleet'))).not.toContain('reconciler');
    expect(snapshotTree(w.outside)).toEqual(before);
  });

  it('executor: a unit file that is a link is refused (never replaced, never backed up through)', async () => {
    const w = world();
    const before = snapshotTree(w.outside);
    const unit = join(w.units, 'mosaic-agent@.service');
    symlinkSync(join(w.outside, 'secret'), unit);
    const action = write(unit, '[Service]\n', {
      role: 'unit',
      mode: 0o644,
      agent: null,
      before: SECRET,
      backup: true,
    });
    await expect(applyPlan([action], ctxFor(w.stateDir))).rejects.toThrow(
      `${unit} -> ${join(w.outside, 'secret')}`,
    );
    expect(homeHoldsSecret(w.home)).toBe(false);
    expect(snapshotTree(w.outside)).toEqual(before);
  });

  it('executor: backups are written from the bytes read, mode 0600, in a checked directory', async () => {
    const w = world();
    const unit = join(w.units, 'mosaic-tmux-holder.service');
    writeFileSync(unit, 'operator edit\n', { mode: 0o644 });
    const r = await applyPlan(
      [
        write(unit, 'rendered\n', {
          role: 'unit',
          mode: 0o644,
          agent: null,
          before: 'operator edit\n',
          backup: true,
        }),
      ],
      ctxFor(w.stateDir),
    );
    expect(r.ok).toBe(true);
    const backup = r.results[0]?.backupPath ?? '';
    expect(readFileSync(backup, 'utf8')).toBe('operator edit\n');
    expect(statSync(backup).mode & 0o777).toBe(0o600);
    expect(readFileSync(unit, 'utf8')).toBe('rendered\n');
  });
});

describe('safe-path: observation reads no link', () => {
  it('reports a link (its target unread) instead of reading through it', async () => {
    const w = world();
    const agents = join(w.home, 'fleet', 'agents');
    writeFileSync(join(agents, 'ok.env'), 'A=1\n');
    symlinkSync(join(w.outside, 'secret'), join(agents, 'linked.env'));
    symlinkSync(join(w.outside, 'gone'), join(agents, 'dangling.env'));
    const files = await readDirFiles(agents, (n) => n.endsWith('.env'), w.home);
    expect(files).toEqual([
      { path: join(agents, 'dangling.env'), content: null, mode: null, link: join(w.outside, 'gone') },
      { path: join(agents, 'linked.env'), content: null, mode: null, link: join(w.outside, 'secret') },
      { path: join(agents, 'ok.env'), content: 'A=1\n', mode: expect.any(Number) as number },
    ]);

    // The directory itself a link: reported alone, the directory behind it not listed.
    rmSync(agents, { recursive: true });
    symlinkSync(join(w.outside, 'dir'), agents);
    expect(await readDirFiles(agents, () => true, w.home)).toEqual([
      { path: agents, content: null, mode: null, link: join(w.outside, 'dir') },
    ]);

    const tools = join(w.home, 'tools', 'fleet');
    mkdirSync(tools, { recursive: true });
    symlinkSync(join(w.outside, 'secret'), join(tools, 'start-agent-session.sh'));
    symlinkSync(join(w.outside, 'dir'), join(tools, 'sub'));
    expect(JSON.stringify(await readTree(tools, w.home))).not.toContain('outside-secret');
    expect((await readTree(tools, w.home)).map((f) => f.link)).toEqual([
      join(w.outside, 'secret'),
      join(w.outside, 'dir'),
    ]);
    expect(await readObservedFile(join(agents, 'a.env'), w.home)).toMatchObject({
      content: null,
      path: agents,
    });
  });

  it('a heartbeat that is a link is unknown health, its target never parsed', async () => {
    const w = world();
    const run = join(w.home, 'fleet', 'run');
    mkdirSync(run);
    writeFileSync(join(w.outside, 'hb'), 'ts=1799999990\nsecret=outside-secret\n');
    symlinkSync(join(w.outside, 'hb'), join(run, 'a.hb'));
    const hb = await readHeartbeats(run, 1_800_000_000_000);
    expect(hb.a).toMatchObject({ exists: true, malformed: true, keys: {} });
  });
});
