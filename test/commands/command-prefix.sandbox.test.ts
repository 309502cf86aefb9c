/**
 * Defect 1 of issue 20, end to end on the real sandbox (systemd user manager + tmux): agents whose `command:`
 * starts with words a shell consumes (`exec PROG`, `env A=1 PROG`, `nohup PROG`) run PROG. `fleet ps` must not
 * call them DRIFT, and reconciles must leave them running (they were respawned in a loop).
 */
import { chmodSync, copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { runFleet, type CliResult } from '../helpers/cli.js';
import { REPO, uniqueSocket, waitFor } from '../helpers/fleet.js';
import { describeSandbox, type Sandbox } from '../sandbox.js';

interface Row {
  name: string;
  flags: string[];
  session: { pane_pid: number | null };
}

function fleet(sb: Sandbox, args: string[]): Promise<CliResult> {
  return runFleet({ ...sb.env, FLEET_BACKOFF_INITIAL_SECONDS: '0.001' }, args, { logDir: sb.root });
}

async function rows(sb: Sandbox): Promise<Record<string, Row>> {
  const r = await fleet(sb, ['ps', '--json']);
  expect(r.code, r.stderr).toBe(0);
  return Object.fromEntries((JSON.parse(r.stdout) as { agents: Row[] }).agents.map((a) => [a.name, a]));
}

describeSandbox('command: behind exec, env and nohup', (sandbox) => {
  const socket = uniqueSocket('fleet-prefix');
  const AGENTS = ['px', 'pe', 'pn'];

  it('runs the program, shows no DRIFT, and three reconciles leave every pane pid unchanged', async () => {
    const sb = sandbox();
    // PROG: a stub agent under a name of its own, so only the command can say what the pane runs.
    const bin = join(sb.root, 'bin');
    mkdirSync(bin, { recursive: true });
    const prog = join(bin, 'prog-agent.sh');
    copyFileSync(join(REPO, 'framework', 'tools', 'fleet', 'stub-agent.sh'), prog);
    chmodSync(prog, 0o755);
    const commands: Record<string, string> = {
      px: `exec ${prog}`,
      pe: `env A=1 ${prog}`,
      pn: `nohup ${prog}`,
    };
    mkdirSync(join(sb.paths.mosaicHome, 'fleet'), { recursive: true });
    writeFileSync(
      join(sb.paths.mosaicHome, 'fleet', 'roster.yaml'),
      [
        'version: 1',
        `tmux: {socket_name: ${socket}}`,
        'agents:',
        ...AGENTS.flatMap((a) => [`  - name: ${a}`, '    runtime: stub', `    command: ${commands[a]}`]),
        '',
      ].join('\n'),
    );
    const first = await fleet(sb, ['reconcile']);
    expect(first.code, first.stderr).toBe(0);
    const before = await waitFor(
      'three agents running without flags',
      async () => {
        const r = await rows(sb);
        return AGENTS.every((n) => r[n]?.session.pane_pid != null && r[n]?.flags.length === 0)
          ? r
          : undefined;
      },
      30_000,
    );
    for (let i = 0; i < 3; i++) {
      const r = await fleet(sb, ['reconcile']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.mutating.filter((c) => c.argv.includes('restart') || c.argv.includes('start'))).toEqual([]);
    }
    const after = await rows(sb);
    for (const a of AGENTS) {
      expect(after[a]?.flags, a).not.toContain('DRIFT');
      expect(after[a]?.session.pane_pid, a).toBe(before[a]?.session.pane_pid);
    }
  });
});
