/**
 * Real runtimes, judged purely: recognition (DRIFT on the pane's process tree), the runtime's own state from
 * its heartbeat, the adapters' arguments, and the planner holding back starts whose program is missing.
 */
import { describe, expect, it } from 'vitest';
import { builtinRuntimes, quoteArgs, runtimeArgs } from '../../src/runtimes/index.js';
import { agentStatus } from '../../src/plan/health.js';
import { agent, fleet, HOME, HOSTNAME, NOW_SEC, observedBuilder, runtime } from '../helpers/builders.js';
import { planFor } from '../helpers/planning.js';

const BUILTIN = builtinRuntimes({ userHome: '/home/op', mosaicHome: HOME, hostname: HOSTNAME });
const TOOLS = `${HOME}/tools/fleet`;
const spec = (name: string) => {
  const s = BUILTIN[name];
  if (s === undefined) throw new Error(`no built-in ${name}`);
  return s;
};

describe('recognition: the runtime under wrappers, shims and process titles', () => {
  it('codex: the npm bin is node codex.js, whose child is the native codex', () => {
    const a = agent('cx', { runtime: 'codex' });
    const o = observedBuilder()
      .healthyAgent(a, {
        argv: ['node', '/cache/codex/node_modules/@openai/codex/bin/codex.js', '-m', 'm'],
        descendants: [
          ['/cache/codex/node_modules/@openai/codex-linux-x64/vendor/x86_64/codex/codex', '-m', 'm'],
        ],
        startCommand: `${TOOLS}/run-agent.sh codex -c x -m m`,
      })
      .build();
    expect(agentStatus(a, o, spec('codex')).flags).toEqual([]);
  });

  it('pi: a node script whose process title reads just "pi"', () => {
    const a = agent('p', { runtime: 'pi' });
    const o = observedBuilder()
      .healthyAgent(a, { argv: ['pi'] })
      .build();
    expect(agentStatus(a, o, spec('pi')).flags).toEqual([]);
  });

  it('claude: the native binary the npm bin links to (claude.exe), by argv or by /proc exe', () => {
    const a = agent('c', { runtime: 'claude' });
    const byArgv = observedBuilder()
      .healthyAgent(a, { argv: ['/cache/claude/node_modules/@anthropic-ai/claude-code/bin/claude.exe'] })
      .build();
    expect(agentStatus(a, byArgv, spec('claude')).flags).toEqual([]);
    const byExe = observedBuilder()
      .healthyAgent(a, { argv: ['some-title'], startCommand: 'x' })
      .build();
    const pane = byExe.tmux.sockets['mosaic-fleet']?.panes[0];
    if (pane?.processes[0]) pane.processes[0].exe = '/cache/claude/bin/claude.exe';
    expect(agentStatus(a, byExe, spec('claude')).flags).toEqual([]);
  });

  it("the fleet's launcher before it execs the runtime counts as the runtime", () => {
    const a = agent('c', { runtime: 'claude' });
    const o = observedBuilder()
      .healthyAgent(a, { argv: ['bash', `${TOOLS}/run-agent.sh`, 'claude', '--settings', 'x'] })
      .build();
    expect(agentStatus(a, o, spec('claude')).flags).toEqual([]);
  });

  it('a wrapper that exec’d a differently named program is not DRIFT: tmux started the expected program', () => {
    const a = agent('w', { runtime: 'acme' });
    const acme = runtime('acme', { command: '/opt/acme/bin/agent' });
    const o = observedBuilder()
      .healthyAgent(a, {
        argv: ['python3', '/opt/acme/lib/main.py'],
        startCommand: '/opt/acme/bin/agent --model x',
      })
      .build();
    expect(agentStatus(a, o, acme).flags).toEqual([]);
  });

  it('the program as PATH resolves it (through links) counts', () => {
    const a = agent('c', { runtime: 'mine' });
    const mine = runtime('mine', { command: 'mine' });
    const o = observedBuilder()
      .healthyAgent(a, { argv: ['mine-native-2.1', '--x'], startCommand: 'other' })
      .build();
    expect(agentStatus(a, o, mine).flags).toEqual(['DRIFT']);
    o.programs = { mine: { path: '/usr/bin/mine', realPath: '/opt/mine/mine-native-2.1' } };
    expect(agentStatus(a, o, mine).flags).toEqual([]);
  });

  it('a pane respawned with something else is still DRIFT, named in the reason', () => {
    const a = agent('c', { runtime: 'claude' });
    const o = observedBuilder()
      .healthyAgent(a, { argv: ['python3', '/tmp/stub.py'], startCommand: 'python3 /tmp/stub.py' })
      .build();
    const s = agentStatus(a, o, spec('claude'));
    expect(s.flags).toEqual(['DRIFT']);
    expect(s.driftReason).toBe("pane runs 'python3 /tmp/stub.py', the roster says 'claude'");
  });
});

describe('state: the runtime’s own report, from its heartbeat', () => {
  const a = agent('c', { runtime: 'claude' });
  const withHb = (content: string, pane: { pid?: number; createdAgo?: number } = {}) =>
    observedBuilder()
      .healthyAgent(a, { argv: ['claude'], pid: pane.pid ?? 4242, createdAgo: pane.createdAgo ?? 3600 })
      .heartbeatRaw('c', content)
      .build();

  it('busy since the hook said so, with its event and session', () => {
    const o = withHb(
      `ts=${NOW_SEC - 2}\nstate=busy\nsince=${NOW_SEC - 12}\nevent=UserPromptSubmit\nsession=s1\npid=4242\n`,
    );
    expect(agentStatus(a, o, spec('claude')).state).toEqual({
      state: 'busy',
      forSeconds: 12,
      event: 'UserPromptSubmit',
      session: 's1',
    });
  });

  it('unknown when the heartbeat went stale (a hung or vanished runtime), never a stale "idle"', () => {
    const o = withHb(`ts=${NOW_SEC - 600}\nstate=idle\nsince=${NOW_SEC - 900}\npid=4242\n`);
    const s = agentStatus(a, o, spec('claude'));
    expect(s.state?.state).toBe('unknown');
    expect(s.flags).toContain('STALE');
  });

  it('a report from a previous run (another pid): starting while the pane is young, unknown after', () => {
    const content = `ts=${NOW_SEC - 1}\nstate=idle\nsince=${NOW_SEC - 100}\npid=1\n`;
    expect(agentStatus(a, withHb(content, { createdAgo: 5 }), spec('claude')).state?.state).toBe('starting');
    expect(agentStatus(a, withHb(content, { createdAgo: 3600 }), spec('claude')).state?.state).toBe(
      'unknown',
    );
  });

  it('malformed or foreign content is unknown, never a crash', () => {
    for (const content of ['ts=x\nstate=busy\n', 'state=dancing\nts=1\n', '\u0000\u0001garbage', '']) {
      const s = agentStatus(a, withHb(content), spec('claude'));
      expect(s.state?.state).toBe('unknown');
    }
  });

  it('a runtime with no state signal reports none (`-`), and so does a dead pane', () => {
    const plain = agent('s', { runtime: 'stub' });
    const o = observedBuilder()
      .healthyAgent(plain, { argv: ['stub-agent.sh'] })
      .build();
    expect(agentStatus(plain, o, spec('stub')).state).toBeNull();
    const dead = observedBuilder()
      .healthyAgent(a, { argv: ['claude'], dead: true })
      .build();
    expect(agentStatus(a, dead, spec('claude')).state).toBeNull();
  });
});

describe('adapters: the arguments a runtime is started with', () => {
  it('wires each runtime’s own state signal from files in the tools dir, then the model', () => {
    expect(runtimeArgs(spec('claude'), TOOLS, 'opus')).toEqual([
      '--settings',
      `${TOOLS}/claude-settings.json`,
      '--model',
      'opus',
    ]);
    expect(runtimeArgs(spec('pi'), TOOLS, 'local/m')).toEqual([
      '-e',
      `${TOOLS}/pi-extension.ts`,
      '--model',
      'local/m',
    ]);
    const codex = runtimeArgs(spec('codex'), TOOLS, 'm');
    expect(codex).toContain(`notify=["${TOOLS}/agent-state.sh","codex-notify"]`);
    expect(codex).toContain('features.daemon_auto_start=false');
    expect(codex.slice(-2)).toEqual(['-m', 'm']);
    expect(runtimeArgs(spec('stub'), TOOLS, null)).toEqual([]);
  });

  it('quotes for xargs: plain words bare, others in single quotes; refuses what cannot be quoted so', () => {
    expect(quoteArgs(['--model', 'a b', 'notify=["x"]'])).toBe(`--model 'a b' 'notify=["x"]'`);
    expect(quoteArgs(['it\'s a "b"'])).toBe(`it\\'s\\ a\\ \\"b\\"`);
    expect(() => quoteArgs(['a\nb'])).toThrow(/newline/);
  });
});

describe('planner: a start known to fail is held back, never done', () => {
  it('holds the start and the restart of agents whose runtime program is not on the manager’s PATH', () => {
    const cc = agent('cc', { runtime: 'claude', modelHint: 'opus' });
    const other = agent('other', { runtime: 'pi' });
    const desired = fleet([cc, other], { runtimes: { claude: spec('claude'), pi: spec('pi') } });
    const o = observedBuilder().build();
    o.managerPath = '/usr/bin:/bin';
    o.programs = {
      claude: { path: null, realPath: null },
      pi: { path: '/usr/bin/pi', realPath: '/usr/bin/pi' },
    };
    const p = planFor(desired, o);
    const starts = p.actions.filter((x) => x.kind === 'start' && x.unit.startsWith('mosaic-agent@'));
    expect(starts.map((x) => (x.kind === 'start' ? x.unit : ''))).toEqual(['mosaic-agent@other.service']);
    expect(p.held).toEqual([
      {
        agent: 'cc',
        action: 'start',
        need: 'unit is not running',
        reason: "runtime program 'claude' is not on the user manager's PATH",
      },
    ]);
    expect(p.warnings.join('\n')).toContain(
      "runtime program 'claude' is not on the user manager's PATH (/usr/bin:/bin): cc",
    );
  });
});
