/**
 * The real `fleet ps` binary in the sandbox: it changes nothing, its JSON is the documented document, and the
 * conditions an operator can hit (no tmux, a bad manifest) read as one clear line, never a stack.
 */
import { mkdir, mkdtemp, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, expect, it } from 'vitest';
import { runFleet } from '../helpers/cli.js';
import { snapshotTree } from '../helpers/snapshot.js';
import {
  installAgentTemplate,
  uniqueSocket,
  waitFor,
  workDir,
  writeAgentEnv,
  writeRoster,
} from '../helpers/fleet.js';
import { describeSandbox, type Sandbox } from '../sandbox.js';

async function machine(sb: Sandbox, socket: string): Promise<unknown> {
  const units = await sb.systemctl('list-units', '--all', '-o', 'json', 'mosaic-*');
  const files = await sb.systemctl('list-unit-files', '-o', 'json', 'mosaic-*');
  const enabled = await sb.systemctl(
    'show',
    '-p',
    'Id,ActiveState,SubState,UnitFileState',
    'mosaic-agent@steady.service',
    'mosaic-agent@pi0.service',
    'mosaic-agent@loose.service',
  );
  const panes = await sb.tmux(
    socket,
    'list-panes',
    '-a',
    '-F',
    '#{session_name} #{pane_pid} #{pane_dead} #{session_created}',
  );
  return {
    home: snapshotTree(sb.paths.userHome),
    units: JSON.parse(units.stdout) as unknown,
    unitFiles: JSON.parse(files.stdout) as unknown,
    enabled: enabled.stdout,
    panes: panes.stdout,
  };
}

describeSandbox('fleet ps (the CLI) in the sandbox', (sandbox) => {
  let socket: string;

  beforeAll(async () => {
    const sb = sandbox();
    socket = uniqueSocket('pscli');
    await installAgentTemplate(sb);
    await writeRoster(
      sb,
      `version: 1
tenant_id: t-9
tmux:
  socket_name: ${socket}
defaults:
  working_directory: ${workDir(sb)}
agents:
  - name: steady
    runtime: stub
  - name: pi0
    runtime: pi
  - name: loose
    runtime: stub
`,
    );
    // Heartbeats every ten minutes: the stub writes once at start, so nothing changes while ps looks.
    for (const name of ['steady', 'pi0', 'loose'])
      await writeAgentEnv(sb, name, { socket, heartbeatInterval: 600 });
    await sb.systemctl('enable', '--now', 'mosaic-agent@steady.service', 'mosaic-agent@pi0.service');
    await sb.systemctl('start', 'mosaic-agent@loose.service');
    await sb.tmux(socket, 'new-session', '-d', '-s', 'scratch', 'sleep 600');
    for (const name of ['steady', 'pi0', 'loose']) {
      await waitFor(`${name} heartbeat`, async () =>
        (await readFile(join(sb.paths.runDir, `${name}.hb`), 'utf8')).startsWith('ts='),
      );
    }
  });

  it('changes nothing: files, unit states and tmux sessions are identical before and after', async () => {
    const sb = sandbox();
    const before = await machine(sb, socket);
    const text = await runFleet(sb.env, ['ps'], { logDir: sb.root });
    const json = await runFleet(sb.env, ['ps', '--json'], { logDir: sb.root });
    const after = await machine(sb, socket);
    expect(text.stderr).toBe('');
    expect(text.code).toBe(0);
    expect(json.code).toBe(0);
    expect(after).toEqual(before);
    // ...and it only ever asked: no command of the mutating kind, one command per run whatever the fleet (the
    // manager's units, files and PATH are asked over D-Bus, in-process).
    expect([...text.mutating, ...json.mutating]).toEqual([]);
    expect(text.commands.map((c) => c.argv.slice(0, 3).join(' ')).sort()).toEqual([`tmux -L ${socket}`]);
    expect(text.stdout).toMatch(/^steady\s+active\/enabled\s+yes\s.*\bok$/m);
    expect(text.stdout).toMatch(/^pi0\s+active\/enabled\s+yes\s.*\bDRIFT$/m);
    expect(text.stdout).toMatch(/^loose\s+active\/disabled\s+yes\s.*\bBOOT-ENABLE$/m);
    expect(text.stdout).toContain(`  scratch  on tmux socket '${socket}'`);
  });

  it('prints one documented JSON document with --json', async () => {
    const sb = sandbox();
    const r = await runFleet(sb.env, ['ps', '--json'], { logDir: sb.root });
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout) as Record<string, unknown> & {
      agents: Record<string, unknown>[];
    };
    expect(Object.keys(doc)).toEqual([
      'format_version',
      'generated_at',
      'host',
      'tenant_id',
      'manifests',
      'agents',
      'unmanaged',
      'orphans',
      'problems',
    ]);
    expect(doc.format_version).toBe(2);
    expect(doc.tenant_id).toBe('t-9');
    expect(doc.unmanaged).toEqual([{ socket, session: 'scratch' }]);
    const pi0 = doc.agents.find((a) => a.name === 'pi0');
    expect(pi0).toMatchObject({
      name: 'pi0',
      tenant_id: 't-9',
      host: null,
      local: true,
      wanted: true,
      unit: {
        name: 'mosaic-agent@pi0.service',
        active_state: 'active',
        sub_state: 'exited',
        file_state: 'enabled',
      },
      session: { socket, name: 'pi0', exists: true, pane_dead: false },
      expected_program: 'pi',
      heartbeat: { health: 'healthy', expected: true },
      flags: ['DRIFT'],
    });
    expect(typeof (pi0?.session as { pane_pid: unknown }).pane_pid).toBe('number');
    expect(doc.agents.find((a) => a.name === 'loose')?.flags).toEqual(['BOOT-ENABLE']);
  });

  it('without tmux on PATH: prints the report with a clear problem line, no stack, exit 1', async () => {
    const sb = sandbox();
    const bin = await mkdtemp(join(sb.root, 'bin-'));
    await symlink('/usr/bin/systemctl', join(bin, 'systemctl'));
    const r = await runFleet({ ...sb.env, PATH: bin }, ['ps'], { logDir: sb.root });
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('problem: tmux not found on PATH');
    expect(r.stdout).toMatch(/^steady\s+active\/enabled\s+\?\s/m);
    expect(r.stderr).toBe('fleet: tmux not found on PATH\n');
    expect(r.stderr + r.stdout).not.toMatch(/\n\s+at /);
  });

  it('with a bad manifest: the error names the file and place, exit 1; what runs is still shown, read-only', async () => {
    const sb = sandbox();
    const dir = await mkdtemp(join(sb.root, 'bad-'));
    await mkdir(dir, { recursive: true });
    const file = join(dir, 'roster.yaml');
    await writeFile(file, 'version: 1\nagents:\n  - name: ok\n    runtime: [unclosed\n');
    const r = await runFleet(sb.env, ['ps', '--manifests', file], { logDir: sb.root });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${file}:`);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    // What of the fleet is on the machine is still shown (the manifests are not needed to find it), read-only.
    expect(r.stdout).toMatch(/^The manifests are invalid \(above\); what of this fleet is here/);
    expect(r.mutating).toEqual([]);
  });
});
