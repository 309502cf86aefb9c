/**
 * Watch mode's scheduler without timing: a hand-driven clock fires the timers, cycles are promises the test
 * settles, so every rule (no overlap, "again", bursts, suspects, wake-ups, stop) is checked step by step.
 */
import { describe, expect, it } from 'vitest';
import { WatchScheduler, type Timers } from '../../src/engine/scheduler.js';
import type { Suspects } from '../../src/engine/suspects.js';

class Clock implements Timers {
  nowMs = 0;
  private next = 1;
  readonly pending = new Map<number, { at: number; fn: () => void }>();
  set(fn: () => void, ms: number): number {
    const id = this.next++;
    this.pending.set(id, { at: this.nowMs + ms, fn });
    return id;
  }
  clear(handle: unknown): void {
    this.pending.delete(handle as number);
  }
  now(): number {
    return this.nowMs;
  }
  /** Move time on, firing every timer due, in order. */
  advance(ms: number): void {
    this.nowMs += ms;
    for (;;) {
      const due = [...this.pending]
        .filter(([, t]) => t.at <= this.nowMs)
        .sort((a, b) => a[1].at - b[1].at)[0];
      if (due === undefined) return;
      this.pending.delete(due[0]);
      due[1].fn();
    }
  }
}

/** Let every settled promise run its continuations. */
const flush = async (): Promise<void> => {
  for (let i = 0; i < 10; i++) await Promise.resolve();
};

function setup(down: string[] = []) {
  const clock = new Clock();
  const cycles: string[] = [];
  const releases: (() => void)[] = [];
  const logs: string[] = [];
  const checked: Suspects[] = [];
  let hold = false;
  const s = new WatchScheduler({
    cycle: (why) => {
      cycles.push(why);
      if (!hold) return Promise.resolve();
      return new Promise<void>((r) => releases.push(r));
    },
    stillDown: (subjects) => {
      checked.push(subjects);
      return Promise.resolve(down);
    },
    log: (event, fields) => logs.push(`${event} ${String(fields?.why ?? '')}`.trim()),
    timers: clock,
    coalesceMs: 20,
    resyncMs: 30_000,
  });
  return {
    s,
    clock,
    cycles,
    logs,
    checked,
    holdCycles: () => (hold = true),
    release: async () => {
      releases.shift()?.();
      await flush();
    },
  };
}

describe('WatchScheduler', () => {
  it('runs a cycle for a trigger, named after it', async () => {
    const t = setup();
    t.s.trigger('start');
    await t.s.idle();
    expect(t.cycles).toEqual(['start']);
  });

  it('never overlaps cycles: triggers during a cycle make one more cycle after it ("coalesced")', async () => {
    const t = setup();
    t.holdCycles();
    t.s.trigger('start');
    await flush();
    t.s.trigger('resync');
    t.s.trigger('manifest-change');
    expect(t.cycles).toEqual(['start']);
    await t.release();
    expect(t.cycles).toEqual(['start', 'coalesced']);
    await t.release();
    await t.s.idle();
    expect(t.cycles).toEqual(['start', 'coalesced']);
  });

  it('makes one cycle of a burst of events, after the burst', async () => {
    const t = setup();
    t.s.event('tmux-server-exit');
    t.s.event('heartbeat');
    t.clock.advance(19);
    await flush();
    expect(t.cycles).toEqual([]);
    t.clock.advance(1);
    await t.s.idle();
    expect(t.cycles).toEqual(['tmux-server-exit']);
    expect(t.logs.filter((l) => l.startsWith('event '))).toEqual([
      'event tmux-server-exit',
      'event heartbeat',
    ]);
  });

  it('looks at suspects once before a cycle: all back, no cycle', async () => {
    const t = setup([]);
    t.s.suspect('tmux-session-closed', {}, (s) => s.units.add('a.service'));
    t.s.suspect('unit-changed', {}, (s) => s.units.add('b.service'));
    t.clock.advance(20);
    await t.s.idle();
    expect(t.cycles).toEqual([]);
    expect([...(t.checked[0]?.units ?? [])]).toEqual(['a.service', 'b.service']);
    expect(t.logs).toContain('event-settled tmux-session-closed');
  });

  it('a suspect still down costs a cycle named after the first event', async () => {
    const t = setup(['a.service']);
    t.s.suspect('unit-changed', {}, (s) => s.units.add('a.service'));
    t.clock.advance(20);
    await t.s.idle();
    expect(t.cycles).toEqual(['unit-changed']);
  });

  it('a cycle covers the suspects reported before it started', async () => {
    const t = setup(['a.service']);
    t.s.suspect('unit-changed', {}, (s) => s.units.add('a.service'));
    t.s.trigger('resync');
    await t.s.idle();
    t.clock.advance(20);
    await t.s.idle();
    expect(t.cycles).toEqual(['resync']);
    expect(t.checked).toEqual([]);
  });

  it('wakes when time alone may change the plan, only before the next resync, the latest deadline replacing', async () => {
    const t = setup();
    t.s.wakeAt(40_000);
    expect(t.clock.pending.size).toBe(0);
    t.s.wakeAt(5_000);
    t.s.wakeAt(3_000);
    expect(t.clock.pending.size).toBe(1);
    t.clock.advance(3_000);
    await t.s.idle();
    expect(t.cycles).toEqual(['timer']);
    t.s.wakeAt(null);
    expect(t.clock.pending.size).toBe(0);
  });

  it('puts off a cycle that could not run (the lock busy)', async () => {
    const t = setup();
    t.s.retryLater('resync', 1_000);
    t.clock.advance(999);
    await flush();
    expect(t.cycles).toEqual([]);
    t.clock.advance(1);
    await t.s.idle();
    expect(t.cycles).toEqual(['resync']);
  });

  it('after stop: the cycle in flight finishes, nothing new starts, no timer is left', async () => {
    const t = setup();
    t.holdCycles();
    t.s.trigger('start');
    await flush();
    t.s.event('heartbeat');
    t.s.wakeAt(1_000);
    t.s.stop();
    expect(t.clock.pending.size).toBe(0);
    t.s.trigger('resync');
    t.s.retryLater('resync', 10);
    const idle = t.s.idle();
    await t.release();
    await idle;
    t.clock.advance(60_000);
    await flush();
    expect(t.cycles).toEqual(['start']);
  });
});
