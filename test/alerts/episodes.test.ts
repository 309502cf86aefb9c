import { describe, expect, it } from 'vitest';
import {
  dueDeliveries,
  MAX_DELIVERY_ATTEMPTS,
  nextAlertWakeMs,
  stepEpisodes,
} from '../../src/alerts/episodes.js';
import type { Judgment } from '../../src/alerts/judge.js';
import type { AlertEpisode } from '../../src/model/observed.js';

const T0 = 1_800_000_000_000;
const RULES = new Set(['r']);

function j(over: Partial<Judgment> = {}): Judgment {
  return {
    rule: 'r',
    agent: 'a',
    condition: 'waiting',
    sinceMs: T0,
    afterMs: 3000,
    state: 'waiting',
    detail: 'waiting',
    ...over,
  };
}

/** Run a sequence of looks (at t, what holds), as a watcher would, carrying the episodes through the state. */
function run(
  looks: [number, Judgment[]][],
  start: AlertEpisode[] = [],
): { fired: number[]; resolved: number[]; eps: AlertEpisode[] } {
  let eps = start;
  const fired: number[] = [];
  const resolved: number[] = [];
  for (const [t, js] of looks) {
    eps = stepEpisodes(eps, js, RULES, t);
    for (const d of dueDeliveries(eps, t)) {
      (d.which === 'fire' ? fired : resolved).push(t);
      eps = eps.map((e) =>
        e === d.episode ? { ...e, [d.which]: { status: 'delivered', attempts: 1, lastAttemptMs: t } } : e,
      );
    }
  }
  return { fired, resolved, eps };
}

describe('episodes', () => {
  it('fires once when the condition has held for after, repeats suppressed, one resolved at the end', () => {
    const r = run([
      [T0 + 1000, [j()]],
      [T0 + 2999, [j()]],
      [T0 + 3000, [j()]],
      [T0 + 4000, [j()]],
      [T0 + 60_000, [j()]],
      [T0 + 61_000, []],
      [T0 + 62_000, []],
    ]);
    expect(r).toEqual({ fired: [T0 + 3000], resolved: [T0 + 61_000], eps: [] });
  });

  it('a condition that ends before after fires nothing and resolves nothing', () => {
    expect(
      run([
        [T0 + 1000, [j()]],
        [T0 + 2000, []],
        [T0 + 9000, []],
      ]),
    ).toEqual({ fired: [], resolved: [], eps: [] });
  });

  it('a restarted watcher (the episodes read back from the state file) fires nothing again', () => {
    const first = run([[T0 + 5000, [j()]]]);
    expect(first.fired).toEqual([T0 + 5000]);
    const stored = JSON.parse(JSON.stringify(first.eps)) as AlertEpisode[];
    const again = run(
      [
        [T0 + 20_000, [j()]],
        [T0 + 30_000, [j()]],
      ],
      stored,
    );
    expect(again.fired).toEqual([]);
    expect(again.eps).toHaveLength(1);
  });

  it('an episode that began again between two looks is resolved and a new one fires', () => {
    const r = run([
      [T0 + 5000, [j()]],
      // Answered and asked again: observation says it began 1 s ago.
      [T0 + 20_000, [j({ sinceMs: T0 + 19_000 })]],
      [T0 + 22_000, [j({ sinceMs: T0 + 19_000 })]],
    ]);
    expect(r.fired).toEqual([T0 + 5000, T0 + 22_000]);
    expect(r.resolved).toEqual([T0 + 20_000]);
  });

  it('wedged: a record that keeps growing moves the start and never fires', () => {
    const looks: [number, Judgment[]][] = [];
    for (let t = 1; t <= 20; t++)
      looks.push([T0 + t * 1000, [j({ condition: 'wedged', sinceMs: T0 + t * 1000 - 500 })]]);
    expect(run(looks).fired).toEqual([]);
  });

  it('a condition observation cannot date counts from when it was first seen, remembered in the state', () => {
    const cl = (): Judgment => j({ condition: 'crash-loop', sinceMs: null, afterMs: 10_000 });
    const r1 = run([
      [T0, [cl()]],
      [T0 + 5000, [cl()]],
    ]);
    expect(r1.fired).toEqual([]);
    expect(r1.eps.map((e) => [e.sinceMs, e.firedAtMs])).toEqual([[T0, null]]);
    const r2 = run(
      [
        [T0 + 10_000, [cl()]],
        [T0 + 11_000, [cl()]],
      ],
      r1.eps,
    );
    expect(r2.fired).toEqual([T0 + 10_000]);
    // after: 0 fires at first sight, once.
    expect(
      run([
        [T0, [j({ sinceMs: null, afterMs: 0 })]],
        [T0 + 1, [j({ sinceMs: null, afterMs: 0 })]],
      ]).fired,
    ).toEqual([T0]);
  });

  it('episodes of a removed rule are dropped with their messages', () => {
    const first = run([[T0 + 5000, [j()]]]);
    expect(stepEpisodes(first.eps, [], new Set(['other']), T0 + 6000)).toEqual([]);
  });

  it('keeps rules, agents and conditions apart', () => {
    const r = run([
      [T0 + 5000, [j(), j({ agent: 'b' }), j({ condition: 'wedged' }), j({ rule: 'r' }), j({ rule: 'x' })]],
    ]);
    // The duplicate judgment counts once; rule x does not exist (any more): nothing of it is kept.
    expect(r.fired).toHaveLength(3);
  });

  it('a failed delivery is retried later with a growing pause, and given up after the bounded attempts', () => {
    let eps = stepEpisodes([], [j()], RULES, T0 + 5000);
    let t = T0 + 5000;
    const tries: number[] = [];
    for (let i = 0; i < 200 && eps.some((e) => e.fire?.status === 'pending'); i++) {
      for (const d of dueDeliveries(eps, t)) {
        tries.push(t);
        const attempts = (d.episode.fire?.attempts ?? 0) + 1;
        eps = eps.map((e) =>
          e === d.episode
            ? {
                ...e,
                fire: {
                  status: attempts >= MAX_DELIVERY_ATTEMPTS ? 'failed' : 'pending',
                  attempts,
                  lastAttemptMs: t,
                  error: 'HTTP 500',
                },
              }
            : e,
        );
      }
      t += 1000;
    }
    expect(tries).toHaveLength(MAX_DELIVERY_ATTEMPTS);
    const gaps = tries.slice(1).map((x, i) => x - (tries[i] ?? 0));
    expect(gaps).toEqual([2000, 4000, 8000, 16000]);
    // Given up: the episode stays open (no re-fire), and its end still sends a resolved message.
    const end = stepEpisodes(eps, [], RULES, t);
    expect(end[0]?.resolve?.status).toBe('pending');
    expect(dueDeliveries(end, t).map((d) => d.which)).toEqual(['resolve']);
  });

  it('a resolution waits until the firing was delivered or given up', () => {
    const eps = stepEpisodes([], [j()], RULES, T0 + 5000);
    const ended = stepEpisodes(eps, [], RULES, T0 + 6000);
    expect(dueDeliveries(ended, T0 + 6000).map((d) => d.which)).toEqual(['fire']);
  });

  it('wakes when a holding condition reaches after, not for one that already fired', () => {
    expect(nextAlertWakeMs([], [j({ sinceMs: T0 })], T0 + 1000)).toBe(T0 + 3000);
    const fired = stepEpisodes([], [j()], RULES, T0 + 5000).map((e) => ({
      ...e,
      fire: { status: 'delivered' as const, attempts: 1, lastAttemptMs: T0 + 5000 },
    }));
    expect(nextAlertWakeMs(fired, [j()], T0 + 6000)).toBeNull();
  });
});
