/**
 * A start known to fail fails the run (docs/plan-format.md, "Exit codes"), on the real sandbox: a fresh agent
 * whose working directory is missing, or whose runtime program is not on the user manager's PATH, is not
 * running after `fleet reconcile`, so the run exits 1 naming the agent and the cause, after doing everything
 * else (the other agent starts). Fixed, the next run starts it and exits 0.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { runFleet, type CliResult } from '../helpers/cli.js';
import { uniqueSocket, waitFor } from '../helpers/fleet.js';
import { describeSandbox, type Sandbox } from '../sandbox.js';

function fleet(sb: Sandbox, args: string[]): Promise<CliResult> {
  return runFleet(sb.env, args, { logDir: sb.root });
}

function writeRoster(sb: Sandbox, socket: string, h1: string, runtime = 'stub'): void {
  const text = [
    'version: 1',
    `tmux: {socket_name: ${socket}}`,
    'runtimes:',
    '  ghost: {command: ghost-agent-not-installed}',
    'agents:',
    `  - {name: h1, runtime: ${runtime}, working_directory: ${h1}}`,
    `  - {name: h2, runtime: stub, working_directory: ${sb.root}}`,
    '',
  ].join('\n');
  mkdirSync(join(sb.paths.mosaicHome, 'fleet'), { recursive: true });
  writeFileSync(join(sb.paths.mosaicHome, 'fleet', 'roster.yaml'), text);
}

async function running(sb: Sandbox, name: string): Promise<boolean> {
  const r = await fleet(sb, ['ps', '--json']);
  const rows = (JSON.parse(r.stdout) as { agents: { name: string; flags: string[] }[] }).agents;
  return rows.find((a) => a.name === name)?.flags.length === 0;
}

describeSandbox('a held start fails the run', (sandbox) => {
  const socket = uniqueSocket('fleet-held');

  it('missing working directory: exit 1 naming the agent and the cause; the other agent starts; fixed, exit 0', async () => {
    const sb = sandbox();
    const dir = join(sb.root, 'not-yet');
    writeRoster(sb, socket, dir);
    const r = await fleet(sb, ['reconcile']);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stdout).toMatch(/Held back[^\n]*\n\s+h1: start \(unit is not running\): working directory/);
    expect(r.stderr).toContain(
      `fleet: h1 is not running: its start is held: working directory ${dir} does not exist`,
    );
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    await waitFor('h2 running', async () => ((await running(sb, 'h2')) ? true : undefined), 30_000);
    expect(await running(sb, 'h1')).toBe(false);
    // Still held: every run says so.
    expect((await fleet(sb, ['reconcile'])).code).toBe(1);
    mkdirSync(dir);
    const fixed = await fleet(sb, ['reconcile']);
    expect(fixed.code, fixed.stderr).toBe(0);
    await waitFor('h1 running', async () => ((await running(sb, 'h1')) ? true : undefined), 30_000);
  });

  it('runtime program not on the manager’s PATH: exit 1 naming the program; back to a runnable one, exit 0', async () => {
    const sb = sandbox();
    await fleet(sb, ['reconcile']);
    // h1 is running; a new agent with a ghost runtime cannot start. h1 itself is switched to the ghost: its
    // restart is held, but it keeps running, which is not a failure; h3's start is one.
    writeRoster(sb, socket, sb.root);
    const text = `${[
      'version: 1',
      `tmux: {socket_name: ${socket}}`,
      'runtimes:',
      '  ghost: {command: ghost-agent-not-installed}',
      'agents:',
      `  - {name: h1, runtime: ghost, working_directory: ${sb.root}}`,
      `  - {name: h2, runtime: stub, working_directory: ${sb.root}}`,
      `  - {name: h3, runtime: ghost, working_directory: ${sb.root}}`,
    ].join('\n')}\n`;
    writeFileSync(join(sb.paths.mosaicHome, 'fleet', 'roster.yaml'), text);
    const r = await fleet(sb, ['reconcile']);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain(
      "fleet: h3 is not running: its start is held: runtime program 'ghost-agent-not-installed' is not on the user manager's PATH",
    );
    expect(r.stderr).not.toContain('h1 is not running');
    writeRoster(sb, socket, sb.root);
    const fixed = await fleet(sb, ['reconcile']);
    expect(fixed.code, fixed.stderr).toBe(0);
  });
});
