/**
 * The executor's half of session ownership: it records, in the state file, the socket each agent's env file
 * names when it writes it (and a respawn's socket), forgets them once the agent is pruned, and re-checks a
 * session's marker just before ending it (against a real tmux: test/apply/ownership.sandbox.test.ts).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { applyPlan, type ApplyContext } from '../../src/apply/executor.js';
import type { RunResult, Runner } from '../../src/exec.js';
import type { ReconcilerState } from '../../src/model/observed.js';
import { DEFAULT_BACKOFF, type Action } from '../../src/model/plan.js';
import { parseState } from '../../src/observe/files.js';
import { parseOwners, parseSessionMarkers } from '../../src/base/session-markers.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function setup(): { home: string; stateDir: string } {
  const root = mkdtempSync(join(tmpdir(), 'fleet-own-'));
  dirs.push(root);
  const home = join(root, 'home');
  return { home, stateDir: join(home, 'fleet', 'reconciler') };
}

/** A fake tmux/systemctl: `list-sessions` prints `listing`, everything else succeeds; argv recorded. */
function fakeRunner(listing: string): Runner & { calls: string[] } {
  const calls: string[] = [];
  return {
    log: [],
    calls,
    run(argv: readonly string[]): Promise<RunResult> {
      calls.push(argv.join(' '));
      const stdout = argv.includes('list-sessions') ? listing : '';
      return Promise.resolve({ command: argv, exitCode: 0, stdout, stderr: '' });
    },
  };
}

function ctx(stateDir: string, runner: Runner, state?: ReconcilerState): ApplyContext {
  return {
    runner,
    stateDir,
    state: state ?? { version: 1, written: {}, backoff: {} },
    nowMs: 1_800_000_000_000,
    backoff: DEFAULT_BACKOFF,
  };
}

const savedState = (stateDir: string) => parseState(readFileSync(join(stateDir, 'state.json'), 'utf8'));

describe('executor: the sockets an agent used are recorded', () => {
  it('records the socket of each env file it writes, and forgets an agent once its env file is archived', async () => {
    const { home, stateDir } = setup();
    const env = (name: string) => join(home, 'fleet', 'agents', `${name}.env`);
    const write = (name: string, socket: string): Action => ({
      kind: 'write-file',
      role: 'env',
      path: env(name),
      before: null,
      after: `MOSAIC_AGENT_NAME=${name}\nMOSAIC_TMUX_SOCKET=${socket}\n`,
      mode: 0o600,
      backup: false,
      reason: 'test',
      agent: name,
    });
    const runner = fakeRunner('');
    expect((await applyPlan([write('a1', 'fleet-s'), write('b', '')], ctx(stateDir, runner))).ok).toBe(true);
    const first = savedState(stateDir);
    expect(first.sessionSockets).toEqual({ a1: ['fleet-s'], b: [''] });

    // a1 moves to another socket: both are remembered (its old session may still be on the first).
    const moved = {
      ...write('a1', 'other'),
      before: 'MOSAIC_AGENT_NAME=a1\nMOSAIC_TMUX_SOCKET=fleet-s\n',
    } as Action;
    await applyPlan([moved], ctx(stateDir, runner, first));
    const second = savedState(stateDir);
    expect(second.sessionSockets).toEqual({ a1: ['fleet-s', 'other'], b: [''] });

    const archive: Action = {
      kind: 'archive-file',
      agent: 'a1',
      path: env('a1'),
      to: join(home, 'fleet', 'archive', 'a1.1.env'),
      reason: 'test',
    };
    await applyPlan([archive], ctx(stateDir, runner, second));
    expect(savedState(stateDir).sessionSockets).toEqual({ b: [''] });
  });
});

describe('executor: kill-session re-checks the marker just before the kill', () => {
  const kill: Action = {
    kind: 'kill-session',
    agent: 'a1',
    socketName: 'fleet-s',
    session: 'a1',
    reason: 'test',
    owner: '/home/op/.config/mosaic',
  };

  it('kills a session still carrying the marker', async () => {
    const { stateDir } = setup();
    const runner = fakeRunner('.owner|:|a1|:|/home/op/.config/mosaic\n.owner|:|b|:|\n');
    const r = await applyPlan([kill], ctx(stateDir, runner));
    expect(r.ok).toBe(true);
    expect(runner.calls).toEqual([
      expect.stringMatching(/^tmux -L fleet-s list-sessions -F /),
      'tmux -L fleet-s kill-session -t =a1',
    ]);
  });

  it('spares a same-named session that took its place without the marker (the action fails, saying why)', async () => {
    const { stateDir } = setup();
    const runner = fakeRunner('.owner|:|a1|:|\n');
    const r = await applyPlan([kill], ctx(stateDir, runner));
    expect(r.results[0]).toMatchObject({
      outcome: 'failed',
      error: "session a1 on tmux socket 'fleet-s' does not carry this fleet's marker (none); left alone",
    });
    expect(runner.calls.some((c) => c.includes('kill-session'))).toBe(false);
  });

  it('a session already gone is done, with no kill sent', async () => {
    const { stateDir } = setup();
    const runner = fakeRunner('.owner|:|b|:|/home/op/.config/mosaic\n');
    const r = await applyPlan([kill], ctx(stateDir, runner));
    expect(r.ok).toBe(true);
    expect(runner.calls.some((c) => c.includes('kill-session'))).toBe(false);
  });
});

describe('observe: the ownership marker', () => {
  it('reads each session and its marker from the owner lines, ignoring pane lines', () => {
    const out = [
      'a1|:|0|:|0|:|100|:|pi|:|0|:||:||:|1|:|1|:|1|:|/w|:|pi',
      '.owner|:|a1|:|/home/op/.config/mosaic',
      '.owner|:|scratch|:|',
      '',
    ].join('\n');
    expect(parseOwners(out)).toEqual({ a1: '/home/op/.config/mosaic' });
    expect([...parseSessionMarkers(out)]).toEqual([
      ['a1', '/home/op/.config/mosaic'],
      ['scratch', ''],
    ]);
  });

  it('the state file keeps the recorded sockets, and drops what is not a list of names', () => {
    const text = JSON.stringify({
      version: 1,
      written: {},
      backoff: {},
      sessionSockets: { a1: ['s', 3, ''], bad: 'x' },
    });
    expect(parseState(text).sessionSockets).toEqual({ a1: ['s', ''] });
    expect(
      parseState(JSON.stringify({ version: 1, written: {}, backoff: {} })).sessionSockets,
    ).toBeUndefined();
  });
});
