/**
 * What `fleet ps` prints for a known fleet (pure: builders in, text and JSON out).
 */
import { describe, expect, it } from 'vitest';
import { fleetStatus, machineProblems, unmanagedSessions } from '../../src/plan/health.js';
import { duration, renderPsTable, shortCommand, type PsReport } from '../../src/render/ps.js';
import { renderPsJson } from '../../src/render/ps-json.js';
import { agentUnitName } from '../../src/base/names.js';
import { agent, fleet, NOW_MS, observedBuilder, SOCKET } from '../helpers/builders.js';

function report(): PsReport {
  const agents = [
    agent('lead', { runtime: 'claude', tenantId: 'acme', host: 'testhost' }),
    agent('canary-pi', { runtime: 'pi', tenantId: 'acme' }),
    agent('coder0', { runtime: 'pi', tenantId: 'acme' }),
    agent('far', { runtime: 'pi', host: 'otherhost' }),
  ];
  const desired = fleet(agents, { tenantId: 'acme' });
  const lead = agents[0];
  const canary = agents[1];
  if (lead === undefined || canary === undefined) throw new Error('fixture');
  const o = observedBuilder()
    .healthyAgent(lead, { argv: ['/usr/local/bin/claude', '--model', 'opus'], pid: 4242, idle: 75 })
    .healthyAgent(canary, {
      argv: ['python3', '/home/op/.config/mosaic/fleet/dogfood-agent.py'],
      pid: 4343,
      idle: 4000,
    })
    .unit(agentUnitName('canary-pi'), { fileState: 'disabled' })
    .unit(agentUnitName('coder0'))
    .session(SOCKET, 'coder0', { dead: true, deadStatus: 1, pid: 4444 })
    .heartbeatRaw('coder0', 'ts=x\n')
    .session(SOCKET, 'scratch', { pid: 4545 })
    .build();
  o.systemd.linger = false;
  return {
    nowMs: NOW_MS,
    host: o.hostname,
    tenantId: desired.tenantId,
    sources: desired.sources,
    agents: fleetStatus(desired, o),
    unmanaged: unmanagedSessions(desired, o),
    problems: machineProblems(desired, o, 'op'),
  };
}

describe('ps table', () => {
  it('shows one row per agent, drift reasons, unmanaged sessions and problems', () => {
    expect(renderPsTable(report(), { color: false })).toMatchInlineSnapshot(`
      "AGENT      UNIT             SESSION  STATE  PID   COMMAND                             IDLE   HB           TENANT  HOST       SPEND  FLAGS
      canary-pi  active/disabled  yes      -      4343  python3 …/dogfood-agent.py          1h6m   3s healthy   acme    -          -      DRIFT,BOOT-ENABLE
      coder0     active/enabled   dead(1)  -      -     bash                                5s     - malformed  acme    -          -      DEAD
      far        -                remote   -      -     -                                   -      -            -       otherhost  -      -
      lead       active/enabled   yes      -      4242  /usr/local/bin/claude --model opus  1m15s  3s healthy   acme    testhost   -      ok

      DRIFT canary-pi: pane runs 'python3 /home/op/.config/mosaic/fleet/dogfood-agent.py', the roster says 'pi'

      Unmanaged sessions (no manifest names them):
        scratch  on tmux socket 'mosaic-fleet'

      problem: linger is off: user units stop when op logs out and do not start at boot (run: loginctl enable-linger op)
      "
    `);
  });

  it('colours flags and health only when asked, without breaking column alignment', () => {
    const coloured = renderPsTable(report(), { color: true });
    expect(coloured).toContain('\u001b[31mDRIFT\u001b[39m');
    expect(coloured).toContain('\u001b[32mok\u001b[39m');
    // eslint-disable-next-line no-control-regex
    const plain = coloured.replace(/\u001b\[\d+m/g, '');
    expect(plain).toBe(renderPsTable(report(), { color: false }));
    expect(renderPsTable(report(), { color: false })).not.toContain('\u001b[');
  });

  it('says so when the manifests name no agent', () => {
    const r: PsReport = { ...report(), agents: [], unmanaged: [], problems: [] };
    expect(renderPsTable(r, { color: false })).toBe(
      `No agents in the manifests (${r.sources.join(', ')}).\n`,
    );
  });

  it('shows availability problems as plain lines', () => {
    const desired = fleet([agent('a')]);
    const o = observedBuilder().tmuxMissing().systemdDown().build();
    const r: PsReport = {
      ...report(),
      agents: fleetStatus(desired, o),
      unmanaged: [],
      problems: machineProblems(desired, o),
    };
    const text = renderPsTable(r, { color: false });
    expect(text).toContain('problem: cannot reach the systemd user manager: Failed to connect to bus\n');
    expect(text).toContain('problem: tmux not found on PATH\n');
    expect(text).toMatch(/^a\s+-\s+\?\s/m);
  });
});

describe('ps back-off', () => {
  it('says when the next respawn of a crash-looping agent is due', () => {
    const a = agent('crashy');
    const desired = fleet([a]);
    const o = observedBuilder()
      .unit(agentUnitName('crashy'))
      .session(SOCKET, 'crashy', { dead: true, deadStatus: 3, pid: 4646 })
      .backoff('crashy', { attempts: 3, lastAttemptMs: NOW_MS - 5_000, nextAttemptMs: NOW_MS + 35_000 })
      .build();
    const r: PsReport = { ...report(), agents: fleetStatus(desired, o), unmanaged: [], problems: [] };
    const text = renderPsTable(r, { color: false });
    expect(text).toMatch(/^crashy .*DEAD,BACKOFF$/m);
    expect(text).toContain(
      `BACKOFF crashy: 3 respawn attempt(s) so far; next in 35s (${new Date(NOW_MS + 35_000).toISOString()})`,
    );
  });
});

describe('ps JSON', () => {
  it('is one snake_case document with a format version', () => {
    const doc = JSON.parse(renderPsJson(report())) as Record<string, unknown>;
    expect(doc).toMatchObject({
      format_version: 2,
      generated_at: new Date(NOW_MS).toISOString(),
      host: 'testhost',
      tenant_id: 'acme',
      unmanaged: [{ socket: SOCKET, session: 'scratch' }],
      problems: [{ kind: 'linger-off' }],
    });
    const agents = (doc as { agents: Record<string, unknown>[] }).agents;
    expect(agents.map((a) => a.name)).toEqual(['canary-pi', 'coder0', 'far', 'lead']);
    expect(agents[0]).toEqual({
      name: 'canary-pi',
      tenant_id: 'acme',
      host: null,
      local: true,
      wanted: true,
      unit: {
        name: 'mosaic-agent@canary-pi.service',
        active_state: 'active',
        sub_state: 'exited',
        file_state: 'disabled',
      },
      session: {
        socket: SOCKET,
        name: 'canary-pi',
        exists: true,
        pane_dead: false,
        pane_dead_status: null,
        pane_dead_signal: null,
        pane_pid: 4343,
        command: 'python3 /home/op/.config/mosaic/fleet/dogfood-agent.py',
        start_command: 'python3 /home/op/.config/mosaic/fleet/dogfood-agent.py',
        created: NOW_MS / 1000 - 3600,
        idle_seconds: 4000,
      },
      expected_program: 'pi',
      drift_reason:
        "pane runs 'python3 /home/op/.config/mosaic/fleet/dogfood-agent.py', the roster says 'pi'",
      state: null,
      heartbeat: { age_seconds: 3, health: 'healthy', expected: true },
      backoff: null,
      flags: ['DRIFT', 'BOOT-ENABLE'],
      wedged_seconds: null,
    });
    const keys = JSON.stringify(doc).match(/"[a-zA-Z_]+":/g) ?? [];
    expect(keys.filter((k) => /[A-Z]/.test(k))).toEqual([]);
  });
});

describe('formatting helpers', () => {
  it('durations', () => {
    expect([null, 0, 42, 60, 130, 3600, 7300, 86400, 200000].map(duration)).toEqual([
      '-',
      '0s',
      '42s',
      '1m',
      '2m10s',
      '1h',
      '2h1m',
      '1d',
      '2d7h',
    ]);
  });
  it('long commands give up directory parts first', () => {
    expect(shortCommand('bash /a/b/c/stub-agent.sh --model x', 200)).toBe(
      'bash /a/b/c/stub-agent.sh --model x',
    );
    expect(shortCommand(`bash /${'d/'.repeat(30)}stub-agent.sh --model x`, 40)).toBe(
      'bash …/stub-agent.sh --model x',
    );
    expect(shortCommand('x'.repeat(60), 10)).toBe(`${'x'.repeat(9)}…`);
  });
});

describe('ps SPEND', () => {
  it('shows each agent’s tokens in the window, short, and the same figures in JSON', () => {
    const r = { ...report(), spend: { window: '1d', tokens: { lead: 123_456, coder0: 999 } } };
    const lines = renderPsTable(r, { color: false }).split('\n');
    const col = lines[0]?.indexOf('SPEND') ?? -1;
    expect(col).toBeGreaterThan(0);
    const spendOf = (name: string) =>
      lines
        .find((l) => l.startsWith(`${name} `))
        ?.slice(col)
        .split(/\s+/)[0];
    expect([spendOf('lead'), spendOf('coder0'), spendOf('canary-pi')]).toEqual(['123k', '999', '-']);
    const doc = JSON.parse(renderPsJson(r)) as { agents: { name: string; spend: unknown }[] };
    expect(doc.agents.find((a) => a.name === 'lead')?.spend).toEqual({ window: '1d', tokens: 123_456 });
    expect(doc.agents.find((a) => a.name === 'far')?.spend).toEqual({ window: '1d', tokens: 0 });
  });
});
