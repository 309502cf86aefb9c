/**
 * A running agent is precious (DOMAIN.md section 5; docs/lifecycle.md): what restarts, when, how many at a time,
 * and what is held back. Judged purely, on in-memory fleets whose panes carry the environment they were started
 * with (test/helpers/planning.ts startedEnviron), as the start script gives it to them.
 */
import { describe, expect, it } from 'vitest';
import type { DesiredAgent, DesiredFleet, RestartSettings } from '../../src/model/desired.js';
import type { Observed } from '../../src/model/observed.js';
import { builtinRuntimes } from '../../src/runtimes/index.js';
import { renderPlanText } from '../../src/render/plan-text.js';
import { nextWakeMs } from '../../src/engine/wake.js';
import {
  agent,
  fleet,
  HOME,
  HOSTNAME,
  NOW_MS,
  NOW_SEC,
  observedBuilder,
  SOCKET,
} from '../helpers/builders.js';
import {
  AGENT_TEMPLATE_PATH,
  applyInMemory,
  converge,
  lines,
  planFor,
  TEMPLATES,
} from '../helpers/planning.js';

const CLAUDE = builtinRuntimes({ userHome: '/home/op', mosaicHome: HOME, hostname: HOSTNAME }).claude;
if (CLAUDE === undefined) throw new Error('no claude adapter');

function team(
  names: string[],
  restart?: Partial<RestartSettings>,
  each: Partial<DesiredAgent> = {},
): DesiredFleet {
  return fleet(
    names.map((n) => agent(n, { runtime: 'claude', modelHint: 'sonnet', ...each })),
    {
      runtimes: { claude: CLAUDE },
      reconcile: {
        mode: 'none',
        intervalSeconds: 120,
        ...(restart
          ? {
              restart: {
                policy: 'when-idle',
                settleSeconds: 30,
                maxUnavailable: 1,
                maxDeferSeconds: null,
                ...restart,
              },
            }
          : {}),
      },
    },
  );
}

/** Each agent's runtime reports `state` since `forSeconds` ago (its hooks wrote the heartbeat). */
function reporting(o: Observed, states: Record<string, { state: string; forSeconds: number }>): Observed {
  const b = observedBuilder(o);
  for (const [name, st] of Object.entries(states)) {
    const pane = Object.values(b.o.tmux.sockets)
      .flatMap((s) => s.panes)
      .find((p) => p.session === name);
    b.heartbeatRaw(
      name,
      `ts=${NOW_SEC - 1}\nstate=${st.state}\nsince=${NOW_SEC - st.forSeconds}\nevent=x\nsession=s-${name}\npid=${pane?.panePid ?? 0}\n`,
    );
  }
  return b.build();
}

const restarts = (p: ReturnType<typeof planFor>) => lines(p).filter((l) => l.kind === 'restart');

describe('restart only when what the running agent sees changes', () => {
  const desired = team(['a1']);
  const running = reporting(converge(desired, observedBuilder().build()), {
    a1: { state: 'idle', forSeconds: 600 },
  });

  it('in sync: nothing to do', () => {
    expect(lines(planFor(desired, running))).toEqual([]);
  });

  it('a comment-only edit of the unit template rewrites the file and restarts nobody', () => {
    const withComment = { ...TEMPLATES, agent: `# a note for the next operator\n${TEMPLATES.agent}` };
    const p = planFor(desired, running, { templates: withComment });
    expect(lines(p).map((l) => l.kind)).toEqual(['write-file', 'daemon-reload']);
    expect(p.actions.find((a) => a.kind === 'write-file')).toMatchObject({ path: AGENT_TEMPLATE_PATH });
  });

  it('a pending restart survives an interrupted run: env file already new, the pane still has the old value', () => {
    const changed = team(['a1'], undefined, { modelHint: 'opus' });
    const first = planFor(changed, running);
    // The run that wrote the env file was killed before its restart: apply only the file writes.
    const b = observedBuilder(running);
    for (const a of first.actions) if (a.kind === 'write-file') b.file(a.path, a.after, a.mode);
    const afterCrash = b.build();
    const p = planFor(changed, afterCrash);
    expect(lines(p).filter((l) => l.kind === 'write-file')).toEqual([]);
    expect(restarts(p)).toEqual([
      {
        kind: 'restart',
        target: 'mosaic-agent@a1.service',
        reason:
          'running agent: its environment differs from its env file (MOSAIC_AGENT_MODEL, MOSAIC_AGENT_ARGS) (idle)',
      },
    ]);
  });
});

describe('restart policy', () => {
  const desired = team(['a1']);
  const base = converge(desired, observedBuilder().build());
  const changed = team(['a1'], undefined, { modelHint: 'opus' });

  it('when-idle (the default): a busy agent is deferred, with why and since when; idle long enough, restarted', () => {
    const busy = planFor(changed, reporting(base, { a1: { state: 'busy', forSeconds: 12 } }));
    expect(restarts(busy)).toEqual([]);
    expect(busy.deferredRestarts).toEqual([
      {
        agent: 'a1',
        need: 'running agent: its environment differs from its env file (MOSAIC_AGENT_MODEL, MOSAIC_AGENT_ARGS)',
        reason: 'busy for 12s; restarts once idle for 30s',
        sinceMs: NOW_MS,
      },
    ]);
    expect(busy.restartPending).toEqual({ a1: NOW_MS });
    expect(renderPlanText(busy)).toContain('Restarts deferred (the session keeps running');
    const justIdle = planFor(changed, reporting(base, { a1: { state: 'idle', forSeconds: 5 } }));
    expect(restarts(justIdle)).toEqual([]);
    const settled = planFor(changed, reporting(base, { a1: { state: 'idle', forSeconds: 31 } }));
    expect(restarts(settled)).toHaveLength(1);
    expect(settled.actions.find((a) => a.kind === 'restart')).toMatchObject({ disruptive: true });
    expect(renderPlanText(settled)).toContain('1 running agent will be restarted.');
  });

  it('waiting for a permission answer is not idle', () => {
    const p = planFor(changed, reporting(base, { a1: { state: 'waiting', forSeconds: 100 } }));
    expect(p.deferredRestarts[0]?.reason).toBe(
      'waiting for a permission answer for 100s; restarts once idle for 30s',
    );
  });

  it('max_defer: a restart deferred longer than that happens anyway, and the plan says so', () => {
    const o = reporting(base, { a1: { state: 'busy', forSeconds: 5000 } });
    o.state.restartPending = { a1: NOW_MS - 3_600_000 };
    const p = planFor(team(['a1'], { maxDeferSeconds: 1800 }, { modelHint: 'opus' }), o);
    expect(restarts(p)[0]?.reason).toContain('past max_defer 1800s');
  });

  it('manual: only `fleet restart` does it; immediate: now, whatever the agent does', () => {
    const o = reporting(base, { a1: { state: 'busy', forSeconds: 5 } });
    const manual = planFor(team(['a1'], { policy: 'manual' }, { modelHint: 'opus' }), o);
    expect(manual.deferredRestarts[0]?.reason).toBe('restart policy is manual: run `fleet restart a1`');
    const perAgent = planFor(team(['a1'], {}, { modelHint: 'opus', restartPolicy: 'immediate' }), o);
    expect(restarts(perAgent)[0]?.reason).toMatch(/\(restart policy: immediate\)$/);
  });

  it('a runtime with no state signal: its pane quiet for the settle period counts as idle', () => {
    const plain = fleet([agent('p1', { modelHint: 'a' })], {
      reconcile: { mode: 'none', intervalSeconds: 120 },
    });
    const o = converge(plain, observedBuilder().build());
    const changedPlain = fleet([agent('p1', { modelHint: 'b' })], { reconcile: plain.reconcile });
    const pane = o.tmux.sockets['mosaic-fleet']?.panes.find((x) => x.session === 'p1');
    if (pane === undefined) throw new Error('no pane');
    pane.activity = NOW_SEC - 5;
    expect(planFor(changedPlain, o).deferredRestarts[0]?.reason).toBe(
      'no state signal; its pane printed 5s ago (waits for 30s of quiet)',
    );
    pane.activity = NOW_SEC - 40;
    expect(restarts(planFor(changedPlain, o))).toHaveLength(1);
  });
});

describe('disruption budget', () => {
  it('5 agents need a restart under max_unavailable 1: one per reconcile, all within 5 cycles', () => {
    const names = ['a1', 'a2', 'a3', 'a4', 'a5'];
    const desired = team(names);
    let o = reporting(
      converge(desired, observedBuilder().build()),
      Object.fromEntries(names.map((n) => [n, { state: 'idle', forSeconds: 600 }])),
    );
    const changed = team(names, undefined, { modelHint: 'opus' });
    const done: string[] = [];
    for (let cycle = 1; cycle <= 5; cycle++) {
      const p = planFor(changed, o);
      const r = p.actions.filter((a) => a.kind === 'restart');
      expect(r, `cycle ${cycle}`).toHaveLength(1);
      expect(p.deferredRestarts).toHaveLength(5 - cycle);
      if (cycle < 5) expect(p.deferredRestarts[0]?.reason).toMatch(/^disruption budget: at most 1/);
      done.push(r[0]?.kind === 'restart' ? (r[0].agent ?? '') : '');
      o = applyInMemory(changed, o, p);
    }
    expect(done.sort()).toEqual(names);
  });
});

describe('a start known to fail is never traded for a working session', () => {
  it('a missing working directory: the running session stays, the restart is held and pending', () => {
    const desired = team(['a1']);
    const o = reporting(converge(desired, observedBuilder().build()), {
      a1: { state: 'idle', forSeconds: 600 },
    });
    const moved = team(['a1'], undefined, { workingDirectory: '/nowhere' });
    o.dirs = { '/nowhere': false };
    const p = planFor(moved, o);
    expect(restarts(p)).toEqual([]);
    expect(p.held).toEqual([
      {
        agent: 'a1',
        action: 'restart',
        need: 'running agent: its environment differs from its env file (MOSAIC_AGENT_WORKDIR)',
        reason: 'working directory /nowhere does not exist',
      },
    ]);
    expect(p.warnings.join('\n')).toContain('working directory /nowhere does not exist');
  });
});

describe('a socket change moves the agent: never two copies', () => {
  it('ends the session on the old socket, then restarts the unit onto the new one; deferred while busy', () => {
    const before = team(['a1']);
    const o = converge(before, observedBuilder().build());
    const after = fleet([agent('a1', { runtime: 'claude', modelHint: 'sonnet', socketName: 'new-sock' })], {
      runtimes: { claude: CLAUDE },
    });
    const idle = reporting(o, { a1: { state: 'idle', forSeconds: 600 } });
    const p = planFor(after, idle);
    const agentActions = lines(p).filter(
      (l) => l.kind === 'kill-session' || l.target === 'mosaic-agent@a1.service',
    );
    expect(agentActions.map((l) => [l.kind, l.target])).toEqual([
      ['kill-session', 'mosaic-fleet:a1'],
      ['restart', 'mosaic-agent@a1.service'],
    ]);
    expect(lines(p).filter((l) => l.kind === 'respawn')).toEqual([]);
    // Ended its own way: the stop script, told the old socket (its env file now names the new one).
    expect(p.actions.find((a) => a.kind === 'kill-session')).toMatchObject({
      disruptive: true,
      graceful: {
        script: `${HOME}/tools/fleet/stop-agent-session.sh`,
        env: { MOSAIC_TMUX_SOCKET: 'mosaic-fleet', MOSAIC_AGENT_EXIT_KEYS: '/exit Enter' },
      },
    });
    const busy = planFor(after, reporting(o, { a1: { state: 'busy', forSeconds: 3 } }));
    // Only the holder (the new socket needs its holder session) is restarted; nothing of the agent.
    expect(busy.actions.filter((a) => 'agent' in a && a.agent === 'a1' && a.kind !== 'write-file')).toEqual(
      [],
    );
    expect(busy.deferredRestarts[0]?.need).toBe(
      'socket changed: its session runs on socket mosaic-fleet, the manifest says socket new-sock',
    );
  });
});

describe('watch mode wakes when time alone changes the plan (src/engine/wake.ts)', () => {
  const desired = team(['a1'], { maxDeferSeconds: 3600 });
  const base = converge(desired, observedBuilder().build());
  const changed = team(['a1'], { maxDeferSeconds: 3600 }, { modelHint: 'opus' });
  const wake = (d: DesiredFleet, o: Observed) => nextWakeMs({ desired: d, observed: o, plan: planFor(d, o) });

  it('in sync with a fresh heartbeat: when that heartbeat would turn stale', () => {
    const o = observedBuilder(base).heartbeat('a1', 10).build();
    expect(lines(planFor(desired, o))).toEqual([]);
    expect(wake(desired, o)).toBe(NOW_MS + 50_000 + 250);
  });

  it('no respawn for silence and nothing deferred: nothing to wake for', () => {
    const quiet = team(['a1'], undefined, {
      heartbeat: { staleAfterSeconds: 60, graceSeconds: 30, respawnOnStale: false },
    });
    expect(wake(quiet, converge(quiet, observedBuilder().build()))).toBeNull();
  });

  it('a respawn held by the crash-loop back-off: when the back-off ends', () => {
    const o = observedBuilder(base)
      .withoutSession(SOCKET, 'a1')
      .session(SOCKET, 'a1', { dead: true, deadStatus: 1 })
      .backoff('a1', { nextAttemptMs: NOW_MS + 20_000 })
      .build();
    const p = planFor(desired, o);
    expect(p.deferred.map((d) => d.agent)).toEqual(['a1']);
    expect(nextWakeMs({ desired, observed: o, plan: p })).toBe(NOW_MS + 20_000 + 250);
  });

  it('a deferred restart of an agent idle for 5 of its 30 settle seconds: when it has settled', () => {
    const o = reporting(base, { a1: { state: 'idle', forSeconds: 5 } });
    expect(planFor(changed, o).deferredRestarts.map((d) => d.agent)).toEqual(['a1']);
    expect(wake(changed, o)).toBe(NOW_MS + 25_000 + 250);
  });

  it('a busy agent: no earlier than its heartbeat turning stale or its max_defer', () => {
    const o = reporting(base, { a1: { state: 'busy', forSeconds: 5 } });
    // The heartbeat was written a second ago and turns stale in 59 s, before max_defer (3600 s).
    expect(wake(changed, o)).toBe(NOW_MS + 59_000 + 250);
  });

  it('with a register: at half the lease (renewed whatever the resync), or when a held start may take over', () => {
    const quiet = team(['a1'], undefined, {
      heartbeat: { staleAfterSeconds: 60, graceSeconds: 30, respawnOnStale: false },
    });
    const withRegister: DesiredFleet = {
      ...quiet,
      register: { urlEnv: 'X', urlFile: null, leaseSeconds: 10, takeoverAfterSeconds: 6 },
    };
    const o = converge(quiet, observedBuilder().build());
    const p = planFor(withRegister, o);
    expect(nextWakeMs({ desired: withRegister, observed: o, plan: p })).toBe(NOW_MS + 5_000 + 250);
    const waiting = { agent: 'a1', kind: 'wait' as const, holder: 'h3', takeoverInMs: 2_000, reason: 'r' };
    expect(nextWakeMs({ desired: withRegister, observed: o, plan: { ...p, ownership: [waiting] } })).toBe(
      NOW_MS + 2_000 + 250,
    );
  });
});
