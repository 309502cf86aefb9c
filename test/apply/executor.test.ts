/**
 * The executor against a recording runner (argv in order; any command can be told to fail) and real temp
 * directories for files. Counting and ordering commands is what this layer is for; the same behaviours against a
 * real systemd + tmux are in test/commands/reconcile.sandbox.test.ts.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { applyPlan, type ApplyContext, type ApplyResult } from '../../src/apply/executor.js';
import { CommandError } from '../../src/errors.js';
import type { RecordedCommand, RunOptions, RunResult, Runner } from '../../src/exec.js';
import type { ReconcilerState } from '../../src/model/observed.js';
import {
  DEFAULT_BACKOFF,
  type Action,
  type ArchiveFileAction,
  type UnitAction,
  type WriteFileAction,
} from '../../src/model/plan.js';

const NOW_MS = Date.UTC(2027, 0, 15, 8, 0, 0);

interface RecordingRunner extends Runner {
  /** Every argv, joined with spaces, in order. */
  readonly calls: string[];
}

/** Records argv; a command for which `fails(argv)` is true exits 1 like systemctl would. */
function recordingRunner(fails: (argv: readonly string[]) => boolean = () => false): RecordingRunner {
  const log: RecordedCommand[] = [];
  const calls: string[] = [];
  return {
    log,
    calls,
    run(
      argv: readonly string[],
      options: RunOptions & { kind?: 'read' | 'mutate' } = {},
    ): Promise<RunResult> {
      const failed = fails(argv);
      log.push({ argv, kind: options.kind ?? 'read', exitCode: failed ? 1 : 0 });
      calls.push(argv.join(' '));
      const stderr = failed ? `Failed: ${argv.join(' ')}: unit broken` : '';
      if (failed && options.reject !== false) {
        return Promise.reject(
          new CommandError(`Command failed with exit code 1: ${argv.join(' ')}\n${stderr}`, argv, 1, stderr),
        );
      }
      return Promise.resolve({ command: argv, exitCode: failed ? 1 : 0, stdout: '', stderr });
    },
  };
}

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempRoot(): { root: string; stateDir: string } {
  const root = mkdtempSync(join(tmpdir(), 'fleet-exec-'));
  dirs.push(root);
  return { root, stateDir: join(root, 'home', 'fleet', 'reconciler') };
}

function emptyState(): ReconcilerState {
  return { version: 1, written: {}, backoff: {} };
}

function run(
  actions: Action[],
  runner: Runner,
  stateDir: string,
  state = emptyState(),
): Promise<ApplyResult> {
  const ctx: ApplyContext = { runner, stateDir, state, nowMs: NOW_MS, backoff: DEFAULT_BACKOFF };
  return applyPlan(actions, ctx);
}

const unit = (kind: UnitAction['kind'], name: string, agent: string | null = name): UnitAction => ({
  kind,
  unit: name === 'holder' ? 'mosaic-tmux-holder.service' : `mosaic-agent@${name}.service`,
  agent: name === 'holder' ? null : agent,
  reason: 'test',
});

function write(path: string, after: string, over: Partial<WriteFileAction> = {}): WriteFileAction {
  return {
    kind: 'write-file',
    role: 'unit',
    path,
    before: null,
    after,
    mode: 0o644,
    backup: false,
    reason: 'test',
    agent: null,
    ...over,
  };
}

const outcomes = (r: ApplyResult) => r.results.map((x) => `${x.outcome}: ${x.message}`);
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

describe('executor: the watch service restarting itself', () => {
  it('queues a stop/restart of mosaic-fleet-watch.service with --no-block, on its own, not batched', async () => {
    const { stateDir } = tempRoot();
    const runner = recordingRunner();
    const result = await run(
      [
        unit('restart', 'a'),
        { ...unit('restart', 'holder'), unit: 'mosaic-fleet-watch.service' },
        unit('restart', 'b'),
      ],
      runner,
      stateDir,
    );
    expect(result.ok).toBe(true);
    expect(runner.calls).toEqual([
      'systemctl --user restart mosaic-agent@a.service',
      'systemctl --user --no-block restart mosaic-fleet-watch.service',
      'systemctl --user restart mosaic-agent@b.service',
    ]);
  });
});

describe('executor: batching', () => {
  it('sends consecutive enables, starts, restarts and respawns to systemd in one call each', async () => {
    const { stateDir } = tempRoot();
    const runner = recordingRunner();
    const result = await run(
      [
        { kind: 'daemon-reload', reason: 'unit files changed' },
        unit('enable', 'holder'),
        unit('enable', 'a'),
        unit('enable', 'b'),
        unit('start', 'holder'),
        unit('start', 'a'),
        unit('start', 'b'),
        unit('restart', 'c'),
        unit('restart', 'd'),
        {
          kind: 'respawn',
          agent: 'e',
          unit: 'mosaic-agent@e.service',
          socketName: 'fleet',
          session: 'e',
          reason: 'pane of e is dead',
          attempt: 1,
        },
        {
          kind: 'respawn',
          agent: 'f',
          unit: 'mosaic-agent@f.service',
          socketName: 'fleet',
          session: 'f',
          reason: 'session f is missing',
          attempt: 1,
        },
      ],
      runner,
      stateDir,
    );
    expect(runner.calls).toEqual([
      'systemctl --user daemon-reload',
      'systemctl --user enable mosaic-tmux-holder.service mosaic-agent@a.service mosaic-agent@b.service',
      'systemctl --user start mosaic-tmux-holder.service mosaic-agent@a.service mosaic-agent@b.service',
      'systemctl --user restart mosaic-agent@c.service mosaic-agent@d.service',
      // A respawn is a restart of the agent's unit: its ExecStop kills exactly the session, ExecStart recreates it.
      'systemctl --user restart mosaic-agent@e.service mosaic-agent@f.service',
    ]);
    expect(runner.log.every((c) => c.kind === 'mutate')).toBe(true);
    expect(result.ok).toBe(true);
    expect(outcomes(result)).toEqual([
      'done: reloaded systemd unit files',
      'done: enabled mosaic-tmux-holder.service',
      'done: enabled mosaic-agent@a.service',
      'done: enabled mosaic-agent@b.service',
      'done: started mosaic-tmux-holder.service',
      'done: started mosaic-agent@a.service',
      'done: started mosaic-agent@b.service',
      'done: restarted mosaic-agent@c.service',
      'done: restarted mosaic-agent@d.service',
      'done: respawned e (pane of e is dead)',
      'done: respawned f (session f is missing)',
    ]);
  });

  it('an empty plan issues no command at all', async () => {
    const { stateDir } = tempRoot();
    const runner = recordingRunner();
    const result = await run([], runner, stateDir);
    expect(runner.calls).toEqual([]);
    expect(result).toEqual({ ok: true, results: [] });
  });
});

describe('executor: failures', () => {
  it('retries a failed batch unit by unit to name the failing unit; the others still run', async () => {
    const { stateDir } = tempRoot();
    const runner = recordingRunner(
      (argv) => argv.includes('start') && argv.includes('mosaic-agent@b.service'),
    );
    const result = await run([unit('start', 'a'), unit('start', 'b'), unit('start', 'c')], runner, stateDir);
    expect(runner.calls).toEqual([
      'systemctl --user start mosaic-agent@a.service mosaic-agent@b.service mosaic-agent@c.service',
      'systemctl --user start mosaic-agent@a.service',
      'systemctl --user start mosaic-agent@b.service',
      'systemctl --user start mosaic-agent@c.service',
    ]);
    expect(result.ok).toBe(false);
    expect(outcomes(result)).toEqual([
      'done: started mosaic-agent@a.service',
      'failed: failed: start mosaic-agent@b.service',
      'done: started mosaic-agent@c.service',
    ]);
    expect(result.results[1]?.error).toBe(
      'Command failed with exit code 1: systemctl --user start mosaic-agent@b.service\nFailed: systemctl --user start mosaic-agent@b.service: unit broken',
    );
  });

  it("a failed agent action blocks only that agent's later actions", async () => {
    const { stateDir } = tempRoot();
    const runner = recordingRunner(
      (argv) => argv.includes('enable') && argv.includes('mosaic-agent@b.service'),
    );
    const result = await run(
      [
        unit('enable', 'a'),
        unit('enable', 'b'),
        unit('start', 'a'),
        unit('start', 'b'),
        unit('restart', 'c'),
      ],
      runner,
      stateDir,
    );
    expect(outcomes(result)).toEqual([
      'done: enabled mosaic-agent@a.service',
      'failed: failed: enable mosaic-agent@b.service',
      'not-run: not run: started mosaic-agent@b.service (an earlier action failed)',
      'done: started mosaic-agent@a.service',
      'done: restarted mosaic-agent@c.service',
    ]);
    // b's start was never sent to systemd.
    expect(runner.calls.filter((c) => c.includes('start') && c.includes('@b.'))).toEqual([]);
  });

  it('a failed unit-file write marks every later action not-run and sends no command', async () => {
    const { root, stateDir } = tempRoot();
    // A regular file where a directory should be: the write cannot succeed.
    writeFileSync(join(root, 'blocker'), 'x');
    const runner = recordingRunner();
    const result = await run(
      [
        write(join(root, 'blocker', 'mosaic-agent@.service'), '[Service]\n'),
        write(join(root, 'units', 'mosaic-tmux-holder.service'), '[Service]\n'),
        { kind: 'daemon-reload', reason: 'unit files changed' },
        unit('enable', 'a'),
        unit('start', 'a'),
      ],
      runner,
      stateDir,
    );
    expect(runner.calls).toEqual([]);
    expect(result.results.map((r) => r.outcome)).toEqual([
      'failed',
      'not-run',
      'not-run',
      'not-run',
      'not-run',
    ]);
    expect(result.results[0]?.message).toBe(
      `failed: create ${join(root, 'blocker', 'mosaic-agent@.service')}`,
    );
    expect(result.results[0]?.error).toMatch(/ENOTDIR|EEXIST/);
    expect(readdirSync(root)).not.toContain('units');
  });

  it('a failed daemon-reload stops everything after it', async () => {
    const { stateDir } = tempRoot();
    const runner = recordingRunner((argv) => argv.includes('daemon-reload'));
    const result = await run(
      [{ kind: 'daemon-reload', reason: 'unit files changed' }, unit('enable', 'holder'), unit('start', 'a')],
      runner,
      stateDir,
    );
    expect(runner.calls).toEqual(['systemctl --user daemon-reload']);
    expect(outcomes(result)).toEqual([
      'failed: failed: daemon-reload systemd --user',
      'not-run: not run: enabled mosaic-tmux-holder.service (an earlier action failed)',
      'not-run: not run: started mosaic-agent@a.service (an earlier action failed)',
    ]);
  });

  it('a failed holder start is global: no agent is started without its tmux server', async () => {
    const { stateDir } = tempRoot();
    const runner = recordingRunner((argv) => argv.includes('mosaic-tmux-holder.service'));
    const result = await run(
      [unit('start', 'holder'), unit('restart', 'a'), unit('stop', 'b')],
      runner,
      stateDir,
    );
    // (A failed batch of one is retried once more on its own before it is called failed.)
    expect(runner.calls.every((c) => c === 'systemctl --user start mosaic-tmux-holder.service')).toBe(true);
    expect(result.results.map((r) => r.outcome)).toEqual(['failed', 'not-run', 'not-run']);
  });

  it('a holder failing inside a batched start still blocks the agents batched after it', async () => {
    // The planner puts `start holder` and the agents' starts next to each other: one `systemctl start` call.
    const { stateDir } = tempRoot();
    const runner = recordingRunner((argv) => argv.includes('mosaic-tmux-holder.service'));
    const result = await run(
      [unit('start', 'holder'), unit('start', 'a'), unit('start', 'b')],
      runner,
      stateDir,
    );
    expect(result.results.map((r) => r.outcome)).toEqual(['failed', 'not-run', 'not-run']);
    // The unit-by-unit retry (to name the failing unit) stops at the global failure.
    expect(runner.calls).toEqual([
      'systemctl --user start mosaic-tmux-holder.service mosaic-agent@a.service mosaic-agent@b.service',
      'systemctl --user start mosaic-tmux-holder.service',
    ]);
  });

  it('kill-session targets the exact session on the right socket, and "already gone" is success', async () => {
    const { stateDir } = tempRoot();
    // Any tmux failure other than "already gone" (this fake's stderr says "unit broken").
    const runner = recordingRunner(() => true);
    const gone: Action[] = [
      { kind: 'kill-session', agent: 'old', socketName: 'mosaic-fleet', session: 'old', reason: 'test' },
      { kind: 'kill-session', agent: 'x', socketName: '', session: 'x', reason: 'test' },
    ];
    const failing = recordingRunner(() => true);
    // Teach the fake the one stderr that means "already gone".
    const tmuxGone: Runner = {
      log: failing.log,
      run: async (argv, options) => {
        const r = await failing.run(argv, { ...options, reject: false });
        return { ...r, stderr: "can't find session: old\n" };
      },
    };
    const result = await run(gone, tmuxGone, stateDir);
    expect(failing.calls).toEqual(['tmux -L mosaic-fleet kill-session -t =old', 'tmux kill-session -t =x']);
    expect(result.ok).toBe(true);
    // Any other tmux failure is a failure of that agent's action.
    const other = await run(gone.slice(0, 1), runner, stateDir);
    expect(other.results[0]?.outcome).toBe('failed');
    expect(other.results[0]?.error).toMatch(/^tmux kill-session failed: /);
  });
});

describe('executor: files', () => {
  it('writes atomically with the planned mode and records the sha256 of what it wrote in the state file', async () => {
    const { root, stateDir } = tempRoot();
    const env = join(root, 'home', 'fleet', 'agents', 'a.env');
    const script = join(root, 'home', 'tools', 'fleet', 'start-agent-session.sh');
    const result = await run(
      [
        write(script, '#!/bin/sh\n', { role: 'framework', mode: 0o755 }),
        write(env, 'MOSAIC_AGENT_NAME=a\n', { role: 'env', mode: 0o600, agent: 'a' }),
      ],
      recordingRunner(),
      stateDir,
    );
    expect(outcomes(result)).toEqual([`done: created ${script}`, `done: created ${env}`]);
    expect(readFileSync(env, 'utf8')).toBe('MOSAIC_AGENT_NAME=a\n');
    expect(statSync(env).mode & 0o777).toBe(0o600);
    expect(statSync(script).mode & 0o777).toBe(0o755);
    expect(readdirSync(join(root, 'home', 'fleet', 'agents'))).toEqual(['a.env']); // no temp file left
    const state = JSON.parse(readFileSync(join(stateDir, 'state.json'), 'utf8')) as ReconcilerState;
    expect(state.written).toEqual({
      [script]: sha256('#!/bin/sh\n'),
      [env]: sha256('MOSAIC_AGENT_NAME=a\n'),
    });
  });

  it('refuses to overwrite a file changed since the plan was made (and leaves it as the operator left it)', async () => {
    const { root, stateDir } = tempRoot();
    const path = join(root, 'units', 'mosaic-tmux-holder.service');
    mkdirSync(join(root, 'units'));
    writeFileSync(path, 'edited after the plan\n');
    const created = join(root, 'units', 'mosaic-agent@.service');
    writeFileSync(created, 'appeared after the plan\n');
    const result = await run(
      [
        write(path, 'rendered\n', { before: 'what the plan saw\n' }),
        write(created, 'rendered\n', { before: null }),
      ],
      recordingRunner(),
      stateDir,
    );
    expect(result.results[0]).toMatchObject({
      outcome: 'failed',
      error: `${path} changed since the plan was made; run reconcile again`,
    });
    expect(readFileSync(path, 'utf8')).toBe('edited after the plan\n');
    // The first failure is global (a unit file), so the second write does not run either.
    expect(result.results[1]?.outcome).toBe('not-run');
    expect(readFileSync(created, 'utf8')).toBe('appeared after the plan\n');
  });

  it("backs up the operator's version once into <stateDir>/backups/ before replacing it", async () => {
    const { root, stateDir } = tempRoot();
    mkdirSync(join(root, 'units'));
    const path = join(root, 'units', 'mosaic-tmux-holder.service');
    writeFileSync(path, 'operator edit\n');
    const result = await run(
      [write(path, 'rendered\n', { before: 'operator edit\n', backup: true })],
      recordingRunner(),
      stateDir,
    );
    const backups = readdirSync(join(stateDir, 'backups'));
    expect(backups).toEqual(['mosaic-tmux-holder.service.2027-01-15T08-00-00-000Z.bak']);
    expect(readFileSync(join(stateDir, 'backups', backups[0] ?? ''), 'utf8')).toBe('operator edit\n');
    expect(result.results[0]?.backupPath).toBe(join(stateDir, 'backups', backups[0] ?? ''));
    expect(readFileSync(path, 'utf8')).toBe('rendered\n');

    // An update of the reconciler's own write (backup: false) copies nothing.
    await run([write(path, 'rendered v2\n', { before: 'rendered\n' })], recordingRunner(), stateDir);
    expect(readdirSync(join(stateDir, 'backups'))).toHaveLength(1);
    expect(readFileSync(path, 'utf8')).toBe('rendered v2\n');
  });

  it('archives by moving the file (never deleting it) and forgets its hash', async () => {
    const { root, stateDir } = tempRoot();
    const env = join(root, 'home', 'fleet', 'agents', 'old.env');
    mkdirSync(join(root, 'home', 'fleet', 'agents'), { recursive: true });
    writeFileSync(env, 'MOSAIC_AGENT_NAME=old\n# operator notes\n');
    const to = join(root, 'home', 'fleet', 'archive', 'old.STAMP.env');
    const archive: ArchiveFileAction = {
      kind: 'archive-file',
      agent: 'old',
      path: env,
      to,
      reason: 'no manifest names this agent',
    };
    const state = emptyState();
    state.written[env] = sha256('MOSAIC_AGENT_NAME=old\n');
    const result = await run([archive], recordingRunner(), stateDir, state);
    expect(outcomes(result)).toEqual([`done: archived ${env} to ${to}`]);
    expect(readdirSync(join(root, 'home', 'fleet', 'agents'))).toEqual([]);
    expect(readFileSync(to, 'utf8')).toBe('MOSAIC_AGENT_NAME=old\n# operator notes\n');
    const saved = JSON.parse(readFileSync(join(stateDir, 'state.json'), 'utf8')) as ReconcilerState;
    expect(saved.written).toEqual({});

    // Already archived (a rerun after a crash): nothing to move, and nothing fails.
    const again = await run([archive], recordingRunner(), stateDir);
    expect(again.ok).toBe(true);
    expect(readFileSync(to, 'utf8')).toBe('MOSAIC_AGENT_NAME=old\n# operator notes\n');
  });
});
