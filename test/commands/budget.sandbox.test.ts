/**
 * A pausing budget end to end on the real sandbox (systemd user manager + tmux), with a scripted runtime whose
 * reported state the test sets: over the budget while busy, the agent keeps running and `send` is refused; once
 * idle, the next reconcile stops it (its unit's own stop); it stays stopped while over; with the window's spend
 * moved out of the window, the next reconcile starts it again. Each step is in `fleet history`. Beside it, an
 * agent over a `warn` budget is journaled once, however many runs see it over.
 *
 * The spend is written as the ledger's own committed lines (src/spend/store.ts): the scripted runtime records no
 * usage, so metering adds nothing to them. Moving the entries back six hours stands for the window moving past.
 */
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { formatEntry, HOUR_MS, hourOf, type LedgerEntry } from '../../src/spend/ledger.js';
import { emptySpendState, spendDir } from '../../src/spend/store.js';
import { runFleet, type CliResult } from '../helpers/cli.js';
import { uniqueSocket, waitFor } from '../helpers/fleet.js';
import { describeSandbox } from '../sandbox.js';

/** A runtime that reports the state written in $MOSAIC_HOME/ctl-<name> in its heartbeat. */
const FAKE = `#!/usr/bin/env bash
hb="$MOSAIC_HOME/fleet/run/$MOSAIC_AGENT_NAME.hb"
ctl="$MOSAIC_HOME/ctl-$MOSAIC_AGENT_NAME"
mkdir -p "$MOSAIC_HOME/fleet/run"
state=idle; since=$(date +%s)
while true; do
  want=$(cat "$ctl" 2>/dev/null || echo idle)
  [[ "$want" != "$state" ]] && { state=$want; since=$(date +%s); }
  printf 'ts=%s\\nstate=%s\\nsince=%s\\nevent=ctl\\npid=%s\\n' "$(date +%s)" "$state" "$since" "$$" >"$hb.tmp" && mv "$hb.tmp" "$hb"
  sleep 0.5
done
`;

interface Row {
  name: string;
  unit: { active_state: string };
  state: { value: string; for_seconds: number | null } | null;
  session: { pane_pid: number | null };
  budget?: { state: string; used_pct: number; detail: string } | null;
}

describeSandbox('a pausing budget (sandbox, scripted runtime)', (sandbox) => {
  const socket = uniqueSocket('fleet-budget');
  const fleet = (...args: string[]): Promise<CliResult> =>
    runFleet(sandbox().env, args, { logDir: sandbox().root });
  const ctl = (state: string) => writeFileSync(join(sandbox().paths.mosaicHome, 'ctl-a'), `${state}\n`);
  const row = async (): Promise<Row> => {
    const r = await fleet('ps', '--json', 'a');
    expect(r.code, r.stderr).toBe(0);
    return (JSON.parse(r.stdout) as { agents: Row[] }).agents[0];
  };
  const waitRow = (what: string, ok: (r: Row) => boolean, ms = 20_000) => {
    let last: Row | undefined;
    return waitFor(
      what,
      async () => {
        last = await row();
        return ok(last) ? last : undefined;
      },
      ms,
      () => `last row: ${JSON.stringify(last)}`,
    );
  };
  /** The ledger as committed lines: 1,500 tokens for each of `agents` in the hour `hoursAgo` before this one. */
  const spent = (hoursAgo: number, agents = ['a']) => {
    const dir = spendDir(sandbox().paths.stateDir);
    mkdirSync(dir, { recursive: true });
    const entry = (agent: string): LedgerEntry => ({
      agent,
      runtime: 'fake',
      model: 'm',
      at: hourOf(Date.now()) - hoursAgo * HOUR_MS,
      span: 'h',
      tokens: { input: 1000, cache_read: 0, cache_write: 0, output: 500, reasoning: 0 },
    });
    const text = agents.map((a) => `${formatEntry(entry(a))}\n`).join('');
    writeFileSync(join(dir, 'ledger-1.jsonl'), text);
    const state = emptySpendState();
    state.ledger.bytes = Buffer.byteLength(text);
    writeFileSync(join(dir, 'meter.json'), JSON.stringify(state));
  };

  it('sets up an agent with a pausing budget', async () => {
    const sb = sandbox();
    const script = join(sb.root, 'fake-agent.sh');
    writeFileSync(script, FAKE);
    chmodSync(script, 0o755);
    mkdirSync(join(sb.paths.mosaicHome, 'fleet'), { recursive: true });
    writeFileSync(
      join(sb.paths.mosaicHome, 'fleet', 'roster.yaml'),
      [
        'version: 1',
        `tmux: {socket_name: ${socket}}`,
        'reconcile: {restart: {settle_seconds: 1}}',
        'runtimes:',
        `  fake: {command: ${script}, heartbeat: true, model_args: []}`,
        'agents:',
        '  - {name: a, runtime: fake, budget: {window: 5h, tokens: 1000, on_exceed: pause}}',
        // Only warned: journaled once per window, however many runs see it over (never started: not needed).
        '  - {name: w, runtime: fake, enabled: false, budget: {window: 5h, tokens: 1000}}',
        '',
      ].join('\n'),
    );
    ctl('busy');
    const r = await fleet('reconcile');
    expect(r.code, r.stderr).toBe(0);
    await waitRow('a busy', (x) => x.state?.value === 'busy');
  }, 60_000);

  it('over the budget while busy: left running, send refused; once idle: stopped, and kept stopped', async () => {
    spent(0, ['a', 'w']);
    const before = (await row()).session.pane_pid;
    const busy = await fleet('reconcile');
    expect(busy.code, busy.stderr).toBe(0);
    expect(busy.stdout).toContain('pauses at its next idle moment');
    expect((await row()).session.pane_pid).toBe(before);
    expect((await row()).budget?.state).toBe('over');

    const send = await fleet('send', 'a', 'more work');
    expect(send.code).toBe(1);
    expect(send.stderr).toMatch(
      /^fleet: a is paused: over budget \(1,500 of 1,000 tokens in 5h; room again at \d\d:\d\d\); nothing sent/,
    );

    ctl('idle');
    await waitRow(
      'a idle for the settle second',
      (x) => x.state?.value === 'idle' && (x.state.for_seconds ?? 0) >= 2,
    );
    const idle = await fleet('reconcile');
    expect(idle.code, idle.stderr).toBe(0);
    expect(idle.stdout).toMatch(/stop\s+mosaic-agent@a\.service/);
    const stopped = await waitRow(
      'a stopped',
      (x) => x.unit.active_state !== 'active' && x.session.pane_pid === null,
    );
    expect(stopped.budget?.state).toBe('paused');
    expect(stopped.budget?.detail).toMatch(
      /^paused: over budget \(1,500 of 1,000 tokens in 5h; room again at/,
    );
    const table = await fleet('ps');
    expect(table.stdout).toMatch(/PAUSED a: paused: over budget/);
    // Down because paused, said once: not MISSING too.
    expect(table.stdout).toMatch(/^a\s.*\s1\.5k 150%\s+PAUSED$/m);

    const again = await fleet('reconcile');
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).not.toMatch(/start\s+mosaic-agent@a\.service/);
    expect((await row()).session.pane_pid).toBeNull();

    // Three runs saw w over its warn budget: one journal entry, with the figures.
    expect(again.stdout).toContain('w: OVER-BUDGET: over budget (1,500 of 1,000 tokens in 5h');
    const history = await fleet('history', '--json', '-n', '50');
    const warns = (
      JSON.parse(history.stdout) as {
        entries: { command: string; actions: { kind: string; target: string; reason: string }[] }[];
      }
    ).entries.flatMap((e) =>
      e.actions.filter((x) => x.kind === 'budget-warn').map((x) => ({ command: e.command, ...x })),
    );
    expect(warns).toEqual([
      {
        command: 'fleet reconcile (budgets)',
        kind: 'budget-warn',
        target: 'w',
        message: 'w: OVER-BUDGET',
        outcome: 'done',
        reason: expect.stringMatching(
          /^over budget \(1,500 of 1,000 tokens in 5h; room again at \d\d:\d\d\)$/,
        ) as unknown,
      },
    ]);
    const text = await fleet('history', '-n', '50');
    expect(text.stdout).toMatch(
      /^ {4}w: OVER-BUDGET \(over budget \(1,500 of 1,000 tokens in 5h; room again at/m,
    );

    const spend = await fleet('spend', '--json', '--window', '5h');
    expect(spend.code, spend.stderr).toBe(0);
    const doc = JSON.parse(spend.stdout) as { agents: { name: string; budget: Record<string, unknown> }[] };
    expect(doc.agents[0]?.budget).toMatchObject({
      window: '5h',
      tokens: 1000,
      usd: null,
      used_pct: 150,
      state: 'paused',
    });
  }, 90_000);

  it('the window has room again: started, and every step is in the history', async () => {
    spent(6);
    const r = await fleet('reconcile');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/start\s+mosaic-agent@a\.service/);
    await waitRow('a running again', (x) => x.session.pane_pid !== null && x.unit.active_state === 'active');
    expect((await row()).budget?.state).toBe('ok');
    const h = await fleet('history', '-n', '5');
    expect(h.stdout).toContain('(paused: over budget (1,500 of 1,000 tokens in 5h; room again at');
    expect(h.stdout).toContain('budget has room: 0 of 1,000 tokens in 5h');
  }, 60_000);
});
