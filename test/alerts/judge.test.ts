import { describe, expect, it } from 'vitest';
import { DEFAULT_AFTER_SECONDS, globMatch, judgeAlerts, type Judgment } from '../../src/alerts/judge.js';
import type { AlertCondition, AlertRule, DesiredAgent } from '../../src/model/desired.js';
import type { Observed } from '../../src/model/observed.js';
import { agent, fleet, HOME, NOW_MS, NOW_SEC, observedBuilder, runtime } from '../helpers/builders.js';

const PID = 4242;

function rule(when: AlertCondition[], over: Partial<AlertRule> = {}): AlertRule {
  return {
    name: 'r',
    when,
    agents: null,
    afterSeconds: null,
    send: { kind: 'command', argv: ['/bin/true'] },
    source: { file: `${HOME}/fleet/roster.yaml`, line: 1, col: 1 },
    ...over,
  };
}

/** An agent of a runtime that reports its state, running, whose heartbeat says `state` since `forSeconds`. */
function reporting(a: DesiredAgent, state: string, forSeconds: number, extra = ''): Observed {
  return observedBuilder()
    .healthyAgent(a, { pid: PID, argv: ['claude'] })
    .heartbeatRaw(
      a.name,
      `ts=${NOW_SEC - 2}\nstate=${state}\nsince=${NOW_SEC - forSeconds}\nevent=E\npid=${PID}\n${extra}`,
    )
    .build();
}

function judge(a: DesiredAgent, o: Observed, rules: AlertRule[], more = {}): Judgment[] {
  const d = fleet([a], { alerts: rules, runtimes: { claude: runtime('claude', { state: 'claude-hooks' }) } });
  return judgeAlerts({ desired: d, observed: o, ...more });
}

const claude = (name = 'c1'): DesiredAgent => agent(name, { runtime: 'claude' });

describe('judgeAlerts', () => {
  it('judges nothing without rules', () => {
    expect(judge(claude(), reporting(claude(), 'waiting', 500), [])).toEqual([]);
  });

  it.each([
    // state, for seconds, holds?
    ['waiting', 10, true],
    ['waiting', 500, true],
    ['busy', 500, false],
    ['idle', 500, false],
  ])('waiting: state %s for %i s holds=%s, with its start from the heartbeat', (state, secs, holds) => {
    const js = judge(claude(), reporting(claude(), state, secs), [rule(['waiting'])]);
    expect(js.length).toBe(holds ? 1 : 0);
    if (holds) {
      expect(js[0]).toMatchObject({
        condition: 'waiting',
        agent: 'c1',
        sinceMs: NOW_MS - secs * 1000,
        afterMs: DEFAULT_AFTER_SECONDS.waiting * 1000,
        state: 'waiting',
      });
    }
  });

  it('waiting is not judged from a heartbeat of a previous run or a stale one', () => {
    const a = claude();
    const old = observedBuilder()
      .healthyAgent(a, { pid: PID, argv: ['claude'] })
      .heartbeatRaw('c1', `ts=${NOW_SEC - 2}\nstate=waiting\nsince=${NOW_SEC - 50}\npid=999\n`)
      .build();
    expect(judge(a, old, [rule(['waiting'])])).toEqual([]);
    const stale = reporting(a, 'waiting', 500);
    stale.heartbeats.c1.ageSeconds = 600;
    expect(judge(a, stale, [rule(['waiting'])])).toEqual([]);
  });

  it('wedged: busy with a record that has not changed counts from the later of the two', () => {
    const a = claude();
    const o = reporting(a, 'busy', 1000, 'transcript=/t/x.jsonl\n');
    o.heartbeats.c1.record = { path: '/t/x.jsonl', bytes: 10, mtimeMs: NOW_MS - 400_000 };
    const [j] = judge(a, o, [rule(['wedged'])]);
    expect(j).toMatchObject({ condition: 'wedged', sinceMs: NOW_MS - 400_000, afterMs: 900_000 });
    expect(j?.detail).toContain('/t/x.jsonl (10 bytes)');
    // A record older than the busy period: the busy period's start counts.
    o.heartbeats.c1.record = { path: '/t/x.jsonl', bytes: 10, mtimeMs: NOW_MS - 5_000_000 };
    expect(judge(a, o, [rule(['wedged'])])[0]?.sinceMs).toBe(NOW_MS - 1_000_000);
  });

  it('wedged is never judged without a record, or when not busy', () => {
    const a = claude();
    expect(judge(a, reporting(a, 'busy', 5000), [rule(['wedged'])])).toEqual([]);
    const idle = reporting(a, 'idle', 5000);
    idle.heartbeats.c1.record = { path: '/t', bytes: 1, mtimeMs: 0 };
    expect(judge(a, idle, [rule(['wedged'])])).toEqual([]);
  });

  it.each([
    // attempts, agent dead now (needs a respawn, back-off not due), holds?
    [1, false, false],
    [1, true, true],
    [2, false, true],
    [5, true, true],
  ])(
    'crash-loop: %i attempt(s), dead=%s holds=%s (start unknown to observation)',
    (attempts, dead, holds) => {
      const a = agent('p');
      const b = observedBuilder();
      if (dead) b.unit('mosaic-agent@p.service').session(a.socketName, 'p', { dead: true }).heartbeat('p', 3);
      else b.healthyAgent(a);
      const o = b.backoff('p', { attempts }).build();
      const js = judge(a, o, [rule(['crash-loop'])]);
      expect(js.map((j) => [j.condition, j.sinceMs, j.afterMs])).toEqual(
        holds ? [['crash-loop', null, 0]] : [],
      );
    },
  );

  it('crash-loop still holds when the back-off of a dead agent is due (between two respawns is no recovery)', () => {
    const a = agent('p');
    const b = observedBuilder();
    b.unit('mosaic-agent@p.service').session(a.socketName, 'p', { dead: true }).heartbeat('p', 3);
    const o = b.backoff('p', { attempts: 1, lastAttemptMs: 0, nextAttemptMs: 0 }).build();
    const js = judge(a, o, [rule(['crash-loop'])]);
    expect(js.map((j) => j.condition)).toEqual(['crash-loop']);
  });

  it('stale: an old heartbeat while the unit is active, counted from when it crossed the limit', () => {
    const a = agent('s');
    const o = observedBuilder().healthyAgent(a).heartbeat('s', 100).build();
    const js = judge(a, o, [rule(['stale'])]);
    expect(js.map((j) => j.sinceMs)).toEqual([(NOW_SEC - 100 + 60) * 1000]);
    o.systemd.units['mosaic-agent@s.service'].activeState = 'inactive';
    expect(judge(a, o, [rule(['stale'])])).toEqual([]);
  });

  it('restart-deferred: from the plan when given, else from the state file', () => {
    const a = agent('r');
    const o = observedBuilder().healthyAgent(a).build();
    o.state.restartPending = { r: NOW_MS - 7000 };
    expect(judge(a, o, [rule(['restart-deferred'])]).map((j) => j.sinceMs)).toEqual([NOW_MS - 7000]);
    expect(judge(a, o, [rule(['restart-deferred'])], { restartPending: {} })).toEqual([]);
  });

  it('over-budget: only where a budget verdict exists (pending the spend issue)', () => {
    const a = agent('b');
    const o = observedBuilder().healthyAgent(a).build();
    expect(judge(a, o, [rule(['over-budget'])])).toEqual([]);
    const budgets = { b: { over: true, sinceMs: NOW_MS - 1, detail: 'spent 12 of 10 USD' } };
    expect(judge(a, o, [rule(['over-budget'])], { budgets })).toMatchObject([
      { condition: 'over-budget', detail: 'spent 12 of 10 USD' },
    ]);
  });

  it('rules apply to the agents they name (globs), with their own after', () => {
    const a = claude('coder1');
    const o = reporting(a, 'waiting', 10);
    expect(judge(a, o, [rule(['waiting'], { agents: ['rev*'] })])).toEqual([]);
    expect(judge(a, o, [rule(['waiting'], { agents: ['cod?r*'], afterSeconds: 3 })])[0]?.afterMs).toBe(3000);
  });

  it("another host's agent and an agent the manifest wants stopped are not judged", () => {
    const remote = agent('x', { runtime: 'claude', host: 'elsewhere' });
    expect(judge(remote, reporting(remote, 'waiting', 500), [rule(['waiting'])])).toEqual([]);
    const off = agent('y', { runtime: 'claude', enabled: false });
    expect(judge(off, reporting(off, 'waiting', 500), [rule(['waiting'])])).toEqual([]);
  });

  it('globs: * and ? only, everything else literal', () => {
    expect(globMatch('a*', 'abc')).toBe(true);
    expect(globMatch('a?c', 'abc')).toBe(true);
    expect(globMatch('a.c', 'abc')).toBe(false);
    expect(globMatch('abc', 'abcd')).toBe(false);
  });
});
