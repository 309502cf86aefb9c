/**
 * The one rule for a drifted pane (docs/lifecycle.md, "A drifted pane"), on the real sandbox: a pane running a
 * program other than the one the fleet started there holds none of the agent's conversation, so it is respawned
 * at once, with or without a restart also pending for the agent. The restart policy here would defer any
 * restart of a running agent for ten minutes, so a respawn that waited for it would show.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readMosaicEnviron } from '../../src/observe/proc.js';
import { expect, it } from 'vitest';
import { runFleet, type CliResult } from '../helpers/cli.js';
import { uniqueSocket, waitFor } from '../helpers/fleet.js';
import { describeSandbox, type Sandbox } from '../sandbox.js';

interface Row {
  name: string;
  flags: string[];
  session: { pane_pid: number | null };
}

function fleet(sb: Sandbox, args: string[]): Promise<CliResult> {
  return runFleet(sb.env, args, { logDir: sb.root });
}

function writeRoster(sb: Sandbox, socket: string, model: string): void {
  const text = [
    'version: 1',
    `tmux: {socket_name: ${socket}}`,
    // A running agent's restart waits for ten minutes of quiet: only the drift rule can end its pane now.
    'reconcile: {restart: {policy: when-idle, settle_seconds: 600, max_unavailable: 1}}',
    `defaults: {working_directory: ${sb.root}}`,
    'agents:',
    ...['d1', 'd2'].flatMap((a) => [`  - name: ${a}`, '    runtime: stub', `    model_hint: ${model}`]),
    '',
  ].join('\n');
  mkdirSync(join(sb.paths.mosaicHome, 'fleet'), { recursive: true });
  writeFileSync(join(sb.paths.mosaicHome, 'fleet', 'roster.yaml'), text);
}

async function rows(sb: Sandbox): Promise<Record<string, Row>> {
  const r = await fleet(sb, ['ps', '--json']);
  expect(r.code, r.stderr).toBe(0);
  return Object.fromEntries((JSON.parse(r.stdout) as { agents: Row[] }).agents.map((a) => [a.name, a]));
}

async function healthy(sb: Sandbox, name: string): Promise<Row> {
  return waitFor(
    `${name} healthy`,
    async () => {
      const row = (await rows(sb))[name];
      return row !== undefined && row.flags.length === 0 && row.session.pane_pid !== null ? row : undefined;
    },
    30_000,
  );
}

/** Put another program in the agent's pane, as an operator's `respawn-pane` would. */
async function drift(sb: Sandbox, socket: string, name: string): Promise<void> {
  await sb.run(['tmux', '-L', socket, 'respawn-pane', '-k', '-t', `=${name}:0.0`, 'sleep 3600']);
  await waitFor(
    `${name} drifted`,
    async () => ((await rows(sb))[name]?.flags.includes('DRIFT') ? true : undefined),
    10_000,
  );
}

describeSandbox('the drift rule: a drifted pane is respawned at once, restart pending or not', (sandbox) => {
  const socket = uniqueSocket('fleet-drift');

  it('installs two agents', async () => {
    const sb = sandbox();
    writeRoster(sb, socket, 'm1');
    const r = await fleet(sb, ['reconcile']);
    expect(r.code, r.stderr).toBe(0);
    await healthy(sb, 'd1');
    await healthy(sb, 'd2');
  });

  it('drift alone: one reconcile respawns the pane', async () => {
    const sb = sandbox();
    await drift(sb, socket, 'd1');
    const dry = await fleet(sb, ['reconcile', '--dry-run']);
    expect(dry.stdout).toMatch(/! respawn [^\n]*:d1\s+# pane runs 'sleep 3600'/);
    expect(dry.stdout).not.toContain('Restarts deferred');
    const r = await fleet(sb, ['reconcile']);
    expect(r.code, r.stderr).toBe(0);
    const after = await healthy(sb, 'd1');
    expect(readMosaicEnviron('/proc', after.session.pane_pid ?? 0)?.MOSAIC_AGENT_MODEL).toBe('m1');
    expect((await fleet(sb, ['reconcile', '--dry-run', '--detailed-exitcode'])).code).toBe(0);
  });

  it('drift with a restart pending: the same, at once, and the pane then has the new environment', async () => {
    const sb = sandbox();
    await drift(sb, socket, 'd2');
    // d2's env file changes too: a restart is pending for it (and for d1, whose pane is its own: deferred).
    writeRoster(sb, socket, 'm2');
    const dry = await fleet(sb, ['reconcile', '--dry-run']);
    expect(dry.stdout).toMatch(/! respawn [^\n]*:d2\s+# pane runs 'sleep 3600'/);
    expect(dry.stdout).not.toMatch(/d2: running agent/);
    const r = await fleet(sb, ['reconcile']);
    expect(r.code, r.stderr).toBe(0);
    const after = await healthy(sb, 'd2');
    expect(readMosaicEnviron('/proc', after.session.pane_pid ?? 0)?.MOSAIC_AGENT_MODEL).toBe('m2');
    // The running d1, whose pane is its own, is not ended for the same change: its restart waits for the policy.
    expect(r.stdout).toMatch(/d1: running agent: its environment differs/);
  });
});
