/**
 * `fleet ps` against real systemd units and real tmux sessions running the stub agent, in the sandbox.
 * Each scenario is something an operator must be able to read off the table.
 */
import { writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { beforeAll, expect, it } from 'vitest';
import { psReport } from '../../src/engine/status.js';
import { createRunner } from '../../src/exec.js';
import type { AgentStatus } from '../../src/plan/health.js';
import { renderPsTable, type PsReport } from '../../src/render/ps.js';
import { renderPsJson } from '../../src/render/ps-json.js';
import {
  installAgentTemplate,
  uniqueSocket,
  waitFor,
  workDir,
  writeAgentEnv,
  writeRoster,
} from '../helpers/fleet.js';
import { describeSandbox, type Sandbox } from '../sandbox.js';

const AGENTS = ['healthy', 'drifty', 'bootgap', 'victim', 'gone', 'quiet', 'garbled'];

function roster(sb: Sandbox, socket: string): string {
  return `version: 1
transport: tmux
tenant_id: acme
tmux:
  socket_name: ${socket}
  holder_session: _holder
defaults:
  working_directory: ${workDir(sb)}
  heartbeat:
    stale_after_seconds: 30
    grace_seconds: 0
agents:
  - name: healthy
    runtime: stub
    host: ${hostname()}
  - name: drifty
    runtime: pi
  - name: bootgap
    runtime: stub
  - name: victim
    runtime: stub
  - name: gone
    runtime: stub
  - name: quiet
    runtime: stub
  - name: garbled
    runtime: stub
  - name: absent
    runtime: stub
`;
}

describeSandbox('fleet ps on a real fleet', (sandbox) => {
  let socket: string;

  async function report(): Promise<PsReport> {
    const sb = sandbox();
    return psReport({ home: sb.paths.mosaicHome, unitDir: sb.paths.unitDir }, createRunner(sb.env));
  }

  async function row(name: string): Promise<AgentStatus> {
    const r = await report();
    const found = r.agents.find((a) => a.agent === name);
    if (found === undefined) throw new Error(`no row for ${name}`);
    return found;
  }

  beforeAll(async () => {
    const sb = sandbox();
    socket = uniqueSocket('ps');
    await installAgentTemplate(sb);
    await writeRoster(sb, roster(sb, socket));
    for (const name of AGENTS) {
      // quiet and garbled beat once at start, then not for ten minutes: the test owns their heartbeat files.
      const slow = name === 'quiet' || name === 'garbled';
      // drifty: the roster says runtime pi, the pane runs the stub (the seed's dogfood drift).
      await writeAgentEnv(sb, name, { socket, heartbeatInterval: slow ? 600 : 1 });
    }
    const enabled = AGENTS.filter((a) => a !== 'bootgap').map((a) => `mosaic-agent@${a}.service`);
    await sb.systemctl('enable', '--now', ...enabled);
    await sb.systemctl('start', 'mosaic-agent@bootgap.service');
    await sb.tmux(socket, 'new-session', '-d', '-s', '_holder', 'sleep 600');
    for (const name of AGENTS) {
      await waitFor(`${name}'s first heartbeat`, async () => (await row(name)).heartbeat.ageSeconds !== null);
    }
  });

  it('shows a healthy agent with its unit, pane, command, heartbeat, tenant and host', async () => {
    const sb = sandbox();
    const s = await row('healthy');
    expect(s.flags).toEqual([]);
    expect(s).toMatchObject({
      unitActiveState: 'active',
      unitFileState: 'enabled',
      sessionExists: true,
      paneDead: false,
      tenantId: 'acme',
      host: hostname(),
      local: true,
      heartbeat: { health: 'healthy', expected: true },
    });
    expect(s.panePid).toBeGreaterThan(1);
    expect(s.paneCommand).toContain(join(sb.paths.toolsDir, 'stub-agent.sh'));
    expect(s.idleSeconds).not.toBeNull();

    const text = renderPsTable(await report(), { color: false });
    const line = text.split('\n').find((l) => l.startsWith('healthy '));
    expect(line).toMatch(
      /^healthy\s+active\/enabled\s+yes\s+-\s+\d+\s+bash …\/stub-agent\.sh\s.*\bhealthy\s+acme\s+\S+\s+-\s+ok$/,
    );
  });

  it("flags DRIFT when the roster says pi and the pane runs the stub (the seed's case)", async () => {
    const s = await row('drifty');
    expect(s.flags).toEqual(['DRIFT']);
    expect(s.driftReason).toMatch(/pane runs 'bash .*stub-agent\.sh.*', the roster says 'pi'/);
    const text = renderPsTable(await report(), { color: false });
    expect(text).toMatch(/^drifty\s.*\sDRIFT$/m);
    expect(text).toMatch(/^DRIFT drifty: pane runs/m);
  });

  it('flags BOOT-ENABLE for a unit started but not enabled', async () => {
    const s = await row('bootgap');
    expect(s.unitActiveState).toBe('active');
    expect(s.unitFileState).toBe('disabled');
    expect(s.flags).toEqual(['BOOT-ENABLE']);
  });

  it('flips a row to DEAD when the pane program dies, and to MISSING when the session goes', async () => {
    const sb = sandbox();
    const before = await row('victim');
    expect(before.flags).toEqual([]);
    const pid = before.panePid ?? 0;
    // Never kill(0) or kill(-1): those signal this process group, or every process we may signal.
    expect(pid).toBeGreaterThan(1);
    process.kill(pid, 'SIGKILL');
    const dead = await waitFor('victim dead', async () => {
      const s = await row('victim');
      return s.paneDead ? s : null;
    });
    expect(dead.flags).toEqual(['DEAD']);
    expect(renderPsTable(await report(), { color: false })).toMatch(
      /^victim\s+active\/enabled\s+dead\(SIG9\)\s.*DEAD$/m,
    );

    await sb.tmux(socket, 'kill-session', '-t', '=gone');
    const gone = await row('gone');
    expect(gone.sessionExists).toBe(false);
    expect(gone.flags).toEqual(['MISSING']);
    // An agent whose unit never ran is missing too.
    expect((await row('absent')).flags).toEqual(['MISSING']);
  });

  it('flips a row to STALE when the heartbeat is older than the limit', async () => {
    const sb = sandbox();
    await writeFile(join(sb.paths.runDir, 'quiet.hb'), `ts=${Math.floor(Date.now() / 1000) - 1000}\npid=1\n`);
    const s = await row('quiet');
    expect(s.heartbeat.health).toBe('stale');
    expect(s.heartbeat.ageSeconds).toBeGreaterThanOrEqual(1000);
    expect(s.flags).toEqual(['STALE']);
  });

  it('reports ts=x as malformed without crashing', async () => {
    const sb = sandbox();
    await writeFile(join(sb.paths.runDir, 'garbled.hb'), 'ts=x\n');
    const r = await report();
    const s = r.agents.find((a) => a.agent === 'garbled');
    expect(s?.heartbeat).toEqual({ ageSeconds: null, health: 'malformed', expected: true });
    expect(s?.flags).toEqual([]);
    expect(renderPsTable(r, { color: false })).toMatch(/^garbled\s.*\s- malformed\s/m);
    const json = JSON.parse(renderPsJson(r)) as { agents: { name: string; heartbeat: { health: string } }[] };
    expect(json.agents.find((a) => a.name === 'garbled')?.heartbeat.health).toBe('malformed');
  });

  it('lists sessions no manifest names as unmanaged, and never the holder', async () => {
    const sb = sandbox();
    await sb.tmux(socket, 'new-session', '-d', '-s', 'stray', 'sleep 600');
    const r = await report();
    expect(r.unmanaged).toEqual([{ socketName: socket, session: 'stray' }]);
    const text = renderPsTable(r, { color: false });
    expect(text).toContain(
      `Unmanaged sessions (no manifest names them):\n  stray  on tmux socket '${socket}'`,
    );
  });
});
