import { describe, expect, it } from 'vitest';
import {
  agentStatus,
  expectedProgram,
  fleetStatus,
  programNames,
  unmanagedSessions,
} from '../../src/plan/health.js';
import { agentUnitName } from '../../src/base/names.js';
import { agent, fleet, HOME, NOW_MS, observedBuilder, runtime, SOCKET } from '../helpers/builders.js';

const stubCommand = `${HOME}/tools/fleet/stub-agent.sh`;
const stub = runtime('stub', { command: stubCommand });

describe('agentStatus', () => {
  it('a running agent with a fresh heartbeat has no flags and shows what runs', () => {
    const a = agent('coder0', { runtime: 'pi', tenantId: 't1', host: null });
    const o = observedBuilder()
      .healthyAgent(a, { argv: ['pi', '--model', 'm1'], idle: 7 })
      .build();
    const s = agentStatus(a, o, runtime('pi'));
    expect(s.flags).toEqual([]);
    expect(s).toMatchObject({
      unit: 'mosaic-agent@coder0.service',
      unitActiveState: 'active',
      unitFileState: 'enabled',
      sessionExists: true,
      paneCommand: 'pi --model m1',
      idleSeconds: 7,
      heartbeat: { ageSeconds: 3, health: 'healthy', expected: true },
      tenantId: 't1',
      local: true,
      expectedProgram: 'pi',
    });
  });

  it("flags DRIFT for the seed's case: roster runtime pi, pane runs a python stub", () => {
    const a = agent('canary-pi', { runtime: 'pi' });
    const o = observedBuilder()
      .healthyAgent(a, { argv: ['python3', '/home/op/.config/mosaic/fleet/dogfood-agent.py'] })
      .build();
    const s = agentStatus(a, o, runtime('pi'));
    expect(s.flags).toEqual(['DRIFT']);
    expect(s.driftReason).toBe(
      "pane runs 'python3 /home/op/.config/mosaic/fleet/dogfood-agent.py', the roster says 'pi'",
    );
    expect(s.paneCommand).toBe('python3 /home/op/.config/mosaic/fleet/dogfood-agent.py');
  });

  it('finds the runtime anywhere in the pane tree (started through a shell)', () => {
    const a = agent('c', { runtime: 'claude' });
    const o = observedBuilder()
      .healthyAgent(a, { argv: ['bash', '-l'], descendants: [['/usr/local/bin/claude', '--model', 'opus']] })
      .build();
    const s = agentStatus(a, o, runtime('claude'));
    expect(s.flags).toEqual([]);
    expect(s.paneCommand).toBe('/usr/local/bin/claude --model opus');
  });

  it('treats a script run by its interpreter as the script (the stub runtime)', () => {
    const a = agent('s', { runtime: 'stub' });
    const o = observedBuilder()
      .healthyAgent(a, { argv: ['bash', stubCommand, '--model', 'x'], descendants: [['sleep', '5']] })
      .build();
    expect(agentStatus(a, o, stub).flags).toEqual([]);
    const drifted = observedBuilder()
      .healthyAgent(a, { argv: ['bash', '/tmp/other.sh'] })
      .build();
    expect(agentStatus(a, drifted, stub).flags).toEqual(['DRIFT']);
  });

  it('without a runtime spec, judges built-in runtimes by their real program (stub -> stub-agent.sh)', () => {
    const a = agent('s', { runtime: 'stub' });
    const o = observedBuilder()
      .healthyAgent(a, { argv: ['bash', stubCommand] })
      .build();
    expect(agentStatus(a, o).flags).toEqual([]);
    expect(agentStatus(a, o).expectedProgram).toBe('stub-agent.sh');
  });

  it("compares the operator's simple command by its program (the script for an interpreter)", () => {
    const a = agent('x', { runtime: 'pi', command: 'python3 /opt/agent.py --fast' });
    expect(expectedProgram(a, runtime('pi'))).toEqual({ program: 'agent.py', compound: false });
    const ok = observedBuilder()
      .healthyAgent(a, { argv: ['python3', '/opt/agent.py', '--fast'] })
      .build();
    expect(agentStatus(a, ok, runtime('pi')).flags).toEqual([]);
    const other = observedBuilder()
      .healthyAgent(a, { argv: ['python3', '/opt/other.py'] })
      .build();
    expect(agentStatus(a, other, runtime('pi')).flags).toEqual(['DRIFT']);
  });

  it("compares compound shell commands with the pane's start command", () => {
    const a = agent('x', { runtime: 'pi', command: 'cd /srv && pi --model "$M"' });
    expect(expectedProgram(a, runtime('pi')).compound).toBe(true);
    const ok = observedBuilder()
      .healthyAgent(a, { argv: ['pi'], startCommand: 'bash -lc "cd /srv && pi --model \\"\\$M\\""' })
      .build();
    expect(agentStatus(a, ok, runtime('pi')).flags).toEqual([]);
    const other = observedBuilder()
      .healthyAgent(a, { argv: ['bash'], startCommand: 'bash' })
      .build();
    const s = agentStatus(a, other, runtime('pi'));
    expect(s.flags).toEqual(['DRIFT']);
    expect(s.driftReason).toContain("the roster's command is 'cd /srv && pi --model \"$M\"'");
  });

  it('a dead pane is DEAD, not DRIFT', () => {
    const a = agent('d');
    const o = observedBuilder()
      .unit(agentUnitName('d'))
      .session(SOCKET, 'd', { dead: true, deadStatus: 137, argv: ['python3', 'x.py'] })
      .heartbeat('d', 5)
      .build();
    const s = agentStatus(a, o, runtime('pi'));
    expect(s.flags).toEqual(['DEAD']);
    expect(s.paneDead).toBe(true);
    expect(s.paneDeadStatus).toBe(137);
  });

  it('a session that is not there is MISSING, also when the socket has no server', () => {
    const a = agent('m');
    const o = observedBuilder().unit(agentUnitName('m')).session(SOCKET, 'other').build();
    expect(agentStatus(a, o, runtime('pi')).flags).toEqual(['MISSING']);
    const noServer = observedBuilder().unit(agentUnitName('m')).noServer(SOCKET).build();
    const s = agentStatus(a, noServer, runtime('pi'));
    expect(s.flags).toEqual(['MISSING']);
    expect(s.sessionExists).toBe(false);
  });

  it('does not claim MISSING when tmux could not be asked', () => {
    const a = agent('m');
    const o = observedBuilder().unit(agentUnitName('m')).tmuxMissing().build();
    const s = agentStatus(a, o, runtime('pi'));
    expect(s.sessionExists).toBeNull();
    expect(s.flags).toEqual([]);
  });

  it('flags BOOT-ENABLE for an active unit that is not enabled, and only then', () => {
    const a = agent('b');
    const active = (fileState: string | null, act = 'active') =>
      agentStatus(
        a,
        observedBuilder().healthyAgent(a).unit(agentUnitName('b'), { active: act, fileState }).build(),
        runtime('pi'),
      ).flags;
    expect(active('disabled')).toEqual(['BOOT-ENABLE']);
    expect(active('enabled-runtime')).toEqual(['BOOT-ENABLE']);
    expect(active('enabled')).toEqual([]);
    expect(active('disabled', 'inactive')).toEqual([]);
  });

  it('flags STALE for an old heartbeat past the grace, never for a fresh session', () => {
    const a = agent('h', { heartbeat: { staleAfterSeconds: 60, graceSeconds: 30, respawnOnStale: true } });
    const old = observedBuilder().healthyAgent(a, { createdAgo: 3600 }).heartbeat('h', 61).build();
    const s = agentStatus(a, old, runtime('pi'));
    expect(s.flags).toEqual(['STALE']);
    expect(s.heartbeat).toEqual({ ageSeconds: 61, health: 'stale', expected: true });

    const fresh = observedBuilder().healthyAgent(a, { createdAgo: 10 }).heartbeat('h', 500).build();
    const f = agentStatus(a, fresh, runtime('pi'));
    expect(f.flags).toEqual([]);
    expect(f.heartbeat.health).toBe('grace');

    const atLimit = observedBuilder().healthyAgent(a).heartbeat('h', 60).build();
    expect(agentStatus(a, atLimit, runtime('pi')).heartbeat.health).toBe('healthy');
  });

  it('never flags STALE for a runtime without heartbeats', () => {
    const a = agent('n', { runtime: 'codex' });
    const o = observedBuilder()
      .healthyAgent(a, { argv: ['codex'] })
      .heartbeat('n', 9999)
      .build();
    const s = agentStatus(a, o, runtime('codex', { heartbeat: false }));
    expect(s.flags).toEqual([]);
    delete o.heartbeats.n;
    expect(agentStatus(a, o, runtime('codex', { heartbeat: false })).heartbeat.health).toBe('none');
  });

  it('reports ts=x as malformed (unknown), not stale and not a crash', () => {
    const a = agent('x');
    const o = observedBuilder().healthyAgent(a).heartbeatRaw('x', 'ts=x\n').build();
    const s = agentStatus(a, o, runtime('pi'));
    expect(s.heartbeat).toEqual({ ageSeconds: null, health: 'malformed', expected: true });
    expect(s.flags).toEqual([]);
  });

  it('reports a missing heartbeat file as missing (grace while the session is young)', () => {
    const a = agent('x');
    const o = observedBuilder().healthyAgent(a).build();
    delete o.heartbeats.x;
    expect(agentStatus(a, o, runtime('pi')).heartbeat.health).toBe('missing');
    const young = observedBuilder().healthyAgent(a, { createdAgo: 2 }).build();
    delete young.heartbeats.x;
    expect(agentStatus(a, young, runtime('pi')).heartbeat.health).toBe('grace');
  });

  it('flags BACKOFF while the next attempt is in the future, and reports it when due', () => {
    const a = agent('k');
    const waiting = observedBuilder()
      .unit(agentUnitName('k'))
      .noServer(SOCKET)
      .backoff('k', { attempts: 3 })
      .build();
    const s = agentStatus(a, waiting, runtime('pi'));
    expect(s.flags).toEqual(['MISSING', 'BACKOFF']);
    expect(s.backoff).toMatchObject({ attempts: 3, due: false });
    const due = observedBuilder()
      .unit(agentUnitName('k'))
      .noServer(SOCKET)
      .backoff('k', { nextAttemptMs: NOW_MS - 1 })
      .build();
    const d = agentStatus(a, due, runtime('pi'));
    expect(d.flags).toEqual(['MISSING']);
    expect(d.backoff?.due).toBe(true);
  });

  it('raises nothing for an agent the manifest wants stopped, or one on another host', () => {
    const off = agent('off', { enabled: false });
    expect(agentStatus(off, observedBuilder().build(), runtime('pi')).flags).toEqual([]);
    const remote = agent('far', { host: 'elsewhere' });
    const s = agentStatus(remote, observedBuilder().build(), runtime('pi'));
    expect(s.local).toBe(false);
    expect(s.flags).toEqual([]);
    const here = agent('near', { host: 'testhost.example.org' });
    expect(agentStatus(here, observedBuilder().build(), runtime('pi')).local).toBe(true);
    expect(
      agentStatus(agent('lo', { host: 'localhost' }), observedBuilder().build(), runtime('pi')).local,
    ).toBe(true);
  });

  it('orders several flags most-broken first', () => {
    const a = agent('z');
    const o = observedBuilder()
      .unit(agentUnitName('z'), { fileState: 'disabled' })
      .session(SOCKET, 'z', { argv: ['python3', 'other.py'] })
      .heartbeat('z', 1000)
      .backoff('z')
      .build();
    expect(agentStatus(a, o, runtime('pi')).flags).toEqual(['DRIFT', 'STALE', 'BOOT-ENABLE', 'BACKOFF']);
  });
});

describe('programNames', () => {
  it('names the interpreter and its script, skipping options and following -c', () => {
    expect(programNames(['/usr/bin/python3.11', '-u', '/x/a.py'])).toEqual(['python3.11', 'a.py']);
    expect(programNames(['bash', '-lc', 'exec pi --model x'])).toEqual(['bash', 'pi']);
    expect(programNames(['sh', '-c', 'A=1 exec python3 -u /x/agent.py'])).toEqual([
      'sh',
      'python3',
      'agent.py',
    ]);
    expect(programNames(['bash', '-lc', "'/opt/bin/pi' --model x"])).toEqual(['bash', 'pi']);
    expect(programNames(['env', 'A=1', 'claude'])).toEqual(['env', 'claude']);
    expect(programNames(['/usr/bin/pi', 'x.py'])).toEqual(['pi']);
    expect(programNames([])).toEqual([]);
  });
});

describe('fleetStatus and unmanagedSessions', () => {
  it('lists sessions on fleet sockets that no manifest names, without holders', () => {
    const a = agent('a');
    const b = agent('b');
    const desired = fleet([a, b]);
    const o = observedBuilder()
      .healthyAgent(a)
      .session(SOCKET, '_holder', { argv: ['sleep', 'infinity'] })
      .session(SOCKET, 'scratch')
      .session(SOCKET, 'aa')
      .session('other-socket', 'elsewhere')
      .build();
    expect(unmanagedSessions(desired, o)).toEqual([
      { socketName: SOCKET, session: 'aa' },
      { socketName: SOCKET, session: 'scratch' },
    ]);
    expect(fleetStatus(desired, o).map((s) => [s.agent, s.flags])).toEqual([
      ['a', []],
      ['b', ['MISSING']],
    ]);
  });
});
