/**
 * Issue 21's budget acceptance with real Claude Code against the model server (docs/spend.md, "The ladder"):
 *   - pause: an agent crosses its budget during a turn the server holds for 10 s (the tool call's first model call
 *     is in its transcript, metered, over the budget; the follow-up call is held). The reconciles meanwhile leave
 *     its pane alone; once the turn has ended, the next one stops it by its unit's stop, which types its exit keys
 *     (its SessionEnd hook fires). `ps` says paused with the reason, `send` is refused unless --force. With the
 *     window moved past (the ledger's hours aged, as test/commands/budget.sandbox.test.ts does), the next reconcile
 *     starts it, and its next model request carries the earlier messages.
 *   - downgrade: an agent crossing the same way is restarted on `fallback_model` once idle (when-idle), never
 *     mid-turn; its next request names the fallback model and carries the earlier messages.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { formatEntry, HOUR_MS } from '../../src/spend/ledger.js';
import { readLedger, readSpendState, spendDir } from '../../src/spend/store.js';
import type { RecordedRequest } from '../fixtures/model-server.js';
import { waitFor } from '../helpers/fleet.js';
import { describeRuntimes, type Bed } from './bed.js';

const MODEL = 'claude-sonnet-4-5';
const FALLBACK = 'claude-haiku-4-5';
const AGENTS = [
  { name: 'ccp', runtime: 'claude' as const, model: MODEL },
  { name: 'ccd', runtime: 'claude' as const, model: MODEL },
];
// Every model call the server answers reports more than 4,000 tokens: the first call of a turn crosses 1,000.
const YAML = ['reconcile:', '  restart: {policy: when-idle, settle_seconds: 1, max_unavailable: 2}'].join(
  '\n',
);
const BUDGETS: Record<string, string> = {
  ccp: '{window: 5h, tokens: 1000, on_exceed: pause}',
  ccd: `{window: 5h, tokens: 1000, on_exceed: downgrade, fallback_model: ${FALLBACK}}`,
};
const HOLD_MS = 10_000;

/** The roster bed.setup writes, with each agent's budget added under its name. */
function addBudgets(b: Bed): void {
  const roster = join(b.sb.paths.mosaicHome, 'fleet', 'roster.yaml');
  const lines = readFileSync(roster, 'utf8').split('\n');
  const out: string[] = [];
  for (const line of lines) {
    out.push(line);
    const m = /^ {2}- name: (\w+)$/.exec(line);
    if (m !== null && BUDGETS[m[1] ?? ''] !== undefined) out.push(`    budget: ${BUDGETS[m[1] ?? '']}`);
  }
  writeFileSync(roster, out.join('\n'));
}

/** A model request of this agent's conversation (its prompts carry its name). */
function ofAgent(r: RecordedRequest, agent: string): boolean {
  return r.path.startsWith('/v1/messages') && JSON.stringify(r.body).includes(`budget-${agent}-`);
}

function modelOf(r: RecordedRequest): unknown {
  return (r.body as { model?: unknown } | null)?.model;
}

function messagesOf(r: RecordedRequest): string {
  return JSON.stringify((r.body as { messages?: unknown } | null)?.messages ?? null);
}

interface BudgetRow {
  state: string;
  detail: string;
}

async function budgetOf(b: Bed, agent: string): Promise<BudgetRow | null> {
  const r = await b.fleet('ps', '--json', agent);
  expect(r.code, r.stderr).toBe(0);
  const row = (JSON.parse(r.stdout) as { agents: { budget?: BudgetRow | null }[] }).agents[0];
  return row?.budget ?? null;
}

/**
 * The window moved past: the agent's committed ledger hours moved six hours back (out of a 5h window), the
 * cursors kept, so nothing is metered again. No reconcile runs meanwhile (the test runs them all).
 */
function ageLedger(b: Bed, agent: string): void {
  const stateDir = b.sb.paths.stateDir;
  const state = readSpendState(stateDir);
  const entries = readLedger(stateDir, state).map((e) =>
    e.agent === agent ? { ...e, at: e.at - 6 * HOUR_MS } : e,
  );
  const text = entries.map((e) => `${formatEntry(e)}\n`).join('');
  writeFileSync(join(spendDir(stateDir), state.ledger.file), text);
  writeFileSync(
    join(spendDir(stateDir), 'meter.json'),
    `${JSON.stringify({ ...state, ledger: { ...state.ledger, bytes: Buffer.byteLength(text) } })}\n`,
  );
}

/** Type a prompt and wait for the server to receive it; the request. */
async function prompt(b: Bed, agent: string, text: string): Promise<RecordedRequest> {
  const since = Date.now();
  await b.type(agent, text);
  return b.server.waitFor((r) => r.atMs >= since && r.text.includes(text), 30_000);
}

describeRuntimes('budgets with real Claude Code: pause at an idle boundary, downgrade', ['claude'], (bed) => {
  const pids: Record<string, number | null> = {};

  it('crossed during a held turn: the sessions are left alone until the turn ends', async () => {
    const b = bed();
    await b.setup(AGENTS, YAML);
    addBudgets(b);
    for (const a of AGENTS) writeFileSync(join(b.workDir(a.name), 'note.txt'), `budget-note-${a.name}\n`);
    const r = await b.fleet('reconcile');
    expect(r.code, r.stderr).toBe(0);
    for (const a of AGENTS) {
      await b.waitState(a.name, 'idle', 90_000);
      pids[a.name] = (await b.ps(a.name)).session.pane_pid;
      expect(pids[a.name], a.name).not.toBeNull();
      // Nothing spent yet: under the budget before the turn.
      expect((await budgetOf(b, a.name))?.state, a.name).toBe('ok');
    }
    // The first call answers with a tool call (Read, which asks no permission); the follow-up call, whose last
    // user message is the tool's result (the note), is held HOLD_MS, and past that until the mid-turn checks are
    // done (a loaded machine must not let the turn end under them).
    let checked: () => void = () => undefined;
    const checksDone = new Promise<void>((r) => (checked = r));
    for (const a of AGENTS) {
      b.server.on({
        match: `budget-${a.name}-first`,
        toolCall: { name: 'Read', input: { file_path: join(b.workDir(a.name), 'note.txt') } },
        withTools: true,
      });
      b.server.on({ match: `budget-note-${a.name}`, holdMs: HOLD_MS, holdUntil: checksDone, text: 'noted' });
    }
    for (const a of AGENTS) await prompt(b, a.name, `budget-${a.name}-first: read note.txt`);
    const held = await Promise.all(
      AGENTS.map((a) => b.server.waitFor((r) => r.text.includes(`budget-note-${a.name}`), 30_000)),
    );

    // Mid-turn: the first call is in the transcript and metered, over the budget; the agents are busy.
    const during = await b.fleet('reconcile');
    expect(during.code, during.stderr).toBe(0);
    expect(during.stdout).toMatch(
      /ccp: OVER-BUDGET: over budget \([\d,]+ of 1,000 tokens in 5h; room again at \d\d:\d\d\); pauses at its next idle moment \(busy for \d+s; stops once idle for 1s\)$/m,
    );
    expect(during.stdout).toMatch(/ccd: .*not now: busy/);
    expect(during.stdout).toContain(`ccd: OVER-BUDGET: over budget`);
    // A send to the agent its budget pauses is refused, even before it is stopped.
    const send = await b.fleet('send', 'ccp', 'more work');
    expect(send.code).toBe(1);
    expect(send.stderr).toMatch(/^fleet: ccp is paused: over budget \(.*\); nothing sent \(use --force/);
    // A second run mid-turn: still nothing done to either agent.
    const again = await b.fleet('reconcile');
    expect(again.code, again.stderr).toBe(0);
    for (const x of [during, again])
      expect(x.mutating.filter((c) => c.argv.some((y) => y.startsWith('mosaic-agent@')))).toEqual([]);
    for (const a of AGENTS) {
      const row = await b.ps(a.name);
      expect([row.state?.value, row.session.pane_pid], a.name).toEqual(['busy', pids[a.name]]);
    }
    // Every check above ran mid-turn: neither held call was cut (an interrupted turn closes its request).
    for (const h of held) expect(h.endedAtMs, 'held call ended before the checks were done').toBeUndefined();
    checked();

    // The turn ends (the held reply arrives); the panes are the same ones.
    for (const a of AGENTS) {
      await b.waitState(a.name, 'idle', 60_000);
      expect((await b.ps(a.name)).session.pane_pid, a.name).toBe(pids[a.name]);
    }
  }, 180_000);

  it('once idle: the pausing agent is stopped by its exit keys, the downgrading one restarted on its fallback model', async () => {
    const b = bed();
    // Idle for the settle second, as the heartbeat tells.
    await waitFor(
      'both idle past the settle second',
      async () => {
        const rows = await Promise.all(AGENTS.map((a) => b.ps(a.name)));
        return rows.every((x) => x.state?.value === 'idle' && (x.state.for_seconds ?? 0) >= 2)
          ? true
          : undefined;
      },
      60_000,
    );
    const r = await b.fleet('reconcile');
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout).toMatch(/stop\s+mosaic-agent@ccp\.service/);
    expect(r.stdout).toMatch(/restart\s+mosaic-agent@ccd\.service/);

    // The stop was the unit's own (its ExecStop types /exit): Claude Code's SessionEnd hook fired.
    const hb = await waitFor(
      'ccp exited its own way',
      () => {
        const x = b.heartbeat('ccp');
        return x.state === 'exited' ? x : undefined;
      },
      60_000,
    );
    expect(hb.event).toBe('SessionEnd');
    const h = await b.fleet('history', '--json', '-n', '1');
    const entry = (
      JSON.parse(h.stdout) as {
        entries: { actions: { kind: string; target: string; reason: string; outcome: string }[] }[];
      }
    ).entries[0];
    const ccpActions = entry?.actions.filter((a) => a.target.includes('ccp')) ?? [];
    expect(ccpActions.map((a) => [a.kind, a.target, a.outcome])).toEqual([
      ['stop', 'mosaic-agent@ccp.service', 'done'],
    ]);
    expect(ccpActions[0]?.reason).toMatch(
      /^paused: over budget \([\d,]+ of 1,000 tokens in 5h; room again at \d\d:\d\d\)$/,
    );
    const ccdRestart = entry?.actions.find((a) => a.target === 'mosaic-agent@ccd.service');
    expect(ccdRestart?.kind).toBe('restart');
    expect(ccdRestart?.reason).toContain(`downgraded from ${MODEL} to ${FALLBACK}`);

    // ps: paused, with the reason; send refused, and --force gets past the budget (to the stopped pane).
    const row = await b.ps('ccp');
    expect(row.session.pane_pid).toBeNull();
    const budget = await budgetOf(b, 'ccp');
    expect(budget?.state).toBe('paused');
    expect(budget?.detail).toMatch(
      /^paused: over budget \([\d,]+ of 1,000 tokens in 5h; room again at \d\d:\d\d\)$/,
    );
    const table = await b.fleet('ps');
    expect(table.stdout).toMatch(/PAUSED ccp: paused: over budget/);
    const send = await b.fleet('send', 'ccp', 'more work');
    expect(send.code).toBe(1);
    expect(send.stderr).toContain('fleet: ccp is paused: over budget');
    const forced = await b.fleet('send', '--force', 'ccp', 'more work');
    expect(forced.code).toBe(1);
    expect(forced.stderr).not.toContain('paused');

    // The downgraded agent: a new pane, and its next request names the fallback model, with the earlier messages.
    await waitFor(
      'ccd restarted',
      async () => {
        const x = await b.ps('ccd');
        return x.session.pane_pid !== null && x.session.pane_pid !== pids.ccd ? x : undefined;
      },
      60_000,
    );
    await b.waitState('ccd', 'idle', 60_000);
    const req = await prompt(b, 'ccd', 'budget-ccd-second: and now?');
    expect(modelOf(req)).toBe(FALLBACK);
    expect(messagesOf(req)).toContain('budget-ccd-first');
    // Every request before the restart asked for the manifest's model.
    const before = b.server.requests.filter((x) => ofAgent(x, 'ccd') && x.atMs < req.atMs);
    expect(before.length).toBeGreaterThanOrEqual(2);
    expect(new Set(before.map(modelOf))).toEqual(new Set([MODEL]));
  }, 120_000);

  it('with the window moved past, the next reconcile starts the paused agent and its conversation resumes', async () => {
    const b = bed();
    const still = await b.fleet('reconcile');
    expect(still.code, still.stderr).toBe(0);
    expect(still.stdout).not.toMatch(/start\s+mosaic-agent@ccp\.service/);
    ageLedger(b, 'ccp');
    const r = await b.fleet('reconcile');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/start\s+mosaic-agent@ccp\.service/);
    await b.waitState('ccp', 'idle', 60_000);
    const req = await prompt(b, 'ccp', 'budget-ccp-second: and now?');
    expect(modelOf(req)).toBe(MODEL);
    expect(messagesOf(req)).toContain('budget-ccp-first');
    const h = await b.fleet('history', '-n', '1');
    expect(h.stdout).toContain('budget has room: 0 of 1,000 tokens in 5h');
  }, 120_000);
});
