/**
 * `when-idle` with the real runtimes, through `fleet reconcile`: a real change (model_hint) to a claude and a
 * codex agent that are busy (the model server holds their turn) is deferred, the sessions keep running; once
 * they are idle for the settle period the next reconcile restarts them, and their conversation is resumed (the
 * first model request after the restart carries the earlier messages).
 */
import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import type { RecordedRequest } from '../fixtures/model-server.js';
import { waitFor } from '../helpers/fleet.js';
import { describeRuntimes, type Bed, type RuntimeName } from './bed.js';

const POLICY = 'reconcile:\n  restart: {policy: when-idle, settle_seconds: 2, max_unavailable: 2}';

const AGENTS: { name: string; runtime: RuntimeName; model: string }[] = [
  { name: 'cc1', runtime: 'claude', model: 'claude-sonnet-4-5' },
  { name: 'cx1', runtime: 'codex', model: 'm' },
];

function argvOf(pid: number): string[] {
  return readFileSync(`/proc/${pid}/cmdline`, 'utf8')
    .split('\0')
    .filter((x) => x !== '');
}

/** Every argv in the process tree under `pid` (codex's native child carries the resume arguments too). */
async function treeArgv(b: Bed, pid: number): Promise<string> {
  const r = await b.sb.run(['ps', '-e', '-o', 'pid=,ppid=,args='], { reject: false });
  const rows = r.stdout
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((w) => w.length >= 3);
  const inTree = new Set([pid]);
  for (let changed = true; changed;) {
    changed = false;
    for (const [p, pp] of rows) {
      if (inTree.has(Number(pp)) && !inTree.has(Number(p))) {
        inTree.add(Number(p));
        changed = true;
      }
    }
  }
  return [
    argvOf(pid).join(' '),
    ...rows.filter(([p]) => inTree.has(Number(p))).map((w) => w.slice(2).join(' ')),
  ].join('\n');
}

async function turn(b: Bed, agent: string, prompt: string): Promise<RecordedRequest> {
  const startedAt = Date.now();
  await b.type(agent, prompt);
  const req = await b.server.waitFor((r) => r.text.includes(prompt) && r.atMs >= startedAt, 30_000);
  await b.waitState(agent, 'idle', 60_000);
  return req;
}

describeRuntimes('when-idle restarts with real runtimes (claude, codex)', ['claude', 'codex'], (bed) => {
  const pids: Record<string, number> = {};
  const sessions: Record<string, string> = {};

  it('installs both and gives each a first real turn', async () => {
    const b = bed();
    await b.setup(AGENTS, POLICY);
    const r = await b.fleet('reconcile');
    expect(r.code, r.stderr).toBe(0);
    for (const a of AGENTS) {
      await b.waitState(a.name, 'idle', 90_000);
      await turn(b, a.name, `when-idle-first-${a.name}: remember the word heron`);
      const row = await b.ps(a.name);
      pids[a.name] = row.session.pane_pid ?? 0;
      sessions[a.name] = row.state?.session ?? '';
      expect(sessions[a.name], a.name).not.toBe('');
    }
  }, 240_000);

  it('a real change while they are busy is deferred: the sessions keep running, the plan says why and stays pending', async () => {
    const b = bed();
    for (const a of AGENTS) {
      b.server.on({ match: `when-idle-hold-${a.name}`, holdMs: 15_000, text: 'held' });
      await b.type(a.name, `when-idle-hold-${a.name}: think long`);
      await b.waitState(a.name, 'busy', 30_000);
    }
    await b.setup(
      AGENTS.map((a) => ({ ...a, model: `${a.model}-next` })),
      POLICY,
    );
    const r = await b.fleet('reconcile');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('Restarts deferred');
    for (const a of AGENTS) expect(r.stdout).toMatch(new RegExp(`${a.name}: .*not now: busy`));
    expect(
      r.mutating.filter(
        (c) => c.argv.includes('restart') && c.argv.some((x) => x.startsWith('mosaic-agent@')),
      ),
    ).toEqual([]);
    for (const a of AGENTS) expect((await b.ps(a.name)).session.pane_pid, a.name).toBe(pids[a.name]);
    const dry = await b.fleet('reconcile', '--dry-run', '--detailed-exitcode');
    expect(dry.code).toBe(2);
  }, 120_000);

  it('once idle for the settle period, the next reconcile restarts them, and each resumes its conversation', async () => {
    const b = bed();
    for (const a of AGENTS) await b.waitState(a.name, 'idle', 60_000);
    await new Promise((r) => setTimeout(r, 2500));
    const r = await b.fleet('reconcile');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('2 running agents will be restarted.');
    for (const a of AGENTS) {
      const row = await waitFor(
        `${a.name} restarted`,
        async () => {
          const x = await b.ps(a.name);
          return x.session.pane_pid !== null && x.session.pane_pid !== pids[a.name] && x.flags.length === 0
            ? x
            : undefined;
        },
        60_000,
      );
      const argv = await treeArgv(b, row.session.pane_pid ?? 0);
      expect(argv, a.name).toContain(sessions[a.name]);
      expect(argv, a.name).toContain(`${a.model}-next`);
      await b.waitState(a.name, a.runtime === 'codex' ? 'idle' : 'idle', 90_000);
      const req = await turn(b, a.name, `when-idle-after-${a.name}: which bird?`);
      expect(JSON.stringify(req.body), a.name).toContain(`when-idle-first-${a.name}`);
    }
    const dry = await b.fleet('reconcile', '--dry-run', '--detailed-exitcode');
    expect(dry.code, dry.stdout).toBe(0);
  }, 240_000);
});
