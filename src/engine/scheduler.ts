/**
 * Watch mode's scheduler: when a cycle runs, and why. Cycles never overlap; a trigger during a cycle runs one more
 * after it ("again"); a burst of events is one cycle; a death event's subjects ("suspects") are looked at once
 * more before they cost a cycle (src/engine/suspects.ts); time alone may wake it (src/engine/wake.ts). No I/O and no
 * clock of its own: the cycle, the suspects check and the timers are given, so tests drive it step by step.
 */
import { isEmpty, noSuspects, type Suspects } from './suspects.js';

export type Fields = Record<string, string | number | boolean | null | undefined>;

/** setTimeout / clearTimeout, or a test's hand-driven clock. */
export interface Timers {
  set(fn: () => void, ms: number): unknown;
  clear(handle: unknown): void;
  now(): number;
}

export interface SchedulerDeps {
  /** One reconcile cycle; it reports its own failures (a failing cycle must not end the watcher). */
  cycle(why: string): Promise<void>;
  /** The suspects still down; an empty list when every one is back. */
  stillDown(s: Suspects): Promise<string[]>;
  log(event: string, fields?: Fields, text?: string): void;
  timers: Timers;
  /** Events come in bursts (a killed session: the session, then its window): one cycle for the burst. */
  coalesceMs: number;
  /** The resync interval: a wake-up later than the next resync is left to it. */
  resyncMs: number;
}

export const realTimers: Timers = {
  set: (fn, ms) => setTimeout(fn, ms),
  clear: (h) => clearTimeout(h as NodeJS.Timeout),
  now: () => Date.now(),
};

export class WatchScheduler {
  private stopping = false;
  private running: Promise<void> | null = null;
  private again = false;
  private pendingWhy: string | null = null;
  private suspects: Suspects = noSuspects();
  private suspectWhy: string | null = null;
  private wakeTimer: unknown = null;
  private eventTimer: unknown = null;
  private checkTimer: unknown = null;

  constructor(private readonly deps: SchedulerDeps) {}

  /** Something may have changed: run a cycle now, or one more after the cycle in flight. */
  trigger(why: string): void {
    if (this.stopping) return;
    if (this.running !== null) {
      this.again = true;
      return;
    }
    this.pendingWhy = why;
    this.kick();
  }

  /** An event names something that happened now: one cycle for a burst of them, as soon as the burst is over. */
  event(why: string, fields: Fields = {}): void {
    if (this.stopping) return;
    this.deps.log('event', { why, ...fields });
    if (this.eventTimer !== null) return;
    this.eventTimer = this.deps.timers.set(() => {
      this.eventTimer = null;
      this.trigger(why);
    }, this.deps.coalesceMs);
  }

  /**
   * A death event with named subjects (`add` puts them into the suspects): looked at once more before it costs a
   * cycle, as most come from a cycle's own restarts. Checked when no cycle runs; one started meanwhile covers them.
   */
  suspect(why: string, fields: Fields, add: (s: Suspects) => void): void {
    if (this.stopping) return;
    this.deps.log('event', { why, ...fields });
    add(this.suspects);
    this.suspectWhy ??= why;
    if (this.checkTimer !== null) return;
    this.checkTimer = this.deps.timers.set(() => {
      this.checkTimer = null;
      this.kick();
    }, this.deps.coalesceMs);
  }

  /** Sleep until time alone may change the plan (null: nothing will), when that comes before the next resync. */
  wakeAt(atMs: number | null): void {
    if (this.wakeTimer !== null) this.deps.timers.clear(this.wakeTimer);
    this.wakeTimer = null;
    if (atMs === null || this.stopping) return;
    const inMs = Math.max(0, atMs - this.deps.timers.now());
    if (inMs >= this.deps.resyncMs) return;
    this.wakeTimer = this.deps.timers.set(() => {
      this.wakeTimer = null;
      this.trigger('timer');
    }, inMs);
  }

  /** A cycle that could not run now (the lock busy): not dropped, only put off. */
  retryLater(why: string, ms: number): void {
    if (this.stopping) return;
    const handle = this.deps.timers.set(() => this.trigger(why), ms);
    // A retry alone must not keep a stopping process alive.
    (handle as { unref?: () => void } | null)?.unref?.();
  }

  /** No new cycle from now on; the one in flight (if any) finishes: `idle()` waits for it. */
  stop(): void {
    this.stopping = true;
    for (const t of [this.wakeTimer, this.eventTimer, this.checkTimer])
      if (t !== null) this.deps.timers.clear(t);
    this.wakeTimer = this.eventTimer = this.checkTimer = null;
  }

  /** The cycles in flight, settled. */
  async idle(): Promise<void> {
    while (this.running !== null) await this.running;
  }

  private kick(): void {
    if (this.stopping || this.running !== null) return;
    if (this.pendingWhy === null && !this.again && isEmpty(this.suspects)) return;
    this.running = this.loop();
  }

  /** Run cycles until nothing is pending; suspects are checked between cycles, one still down starts a cycle. */
  private async loop(): Promise<void> {
    // Never finish synchronously: `running` is assigned when this returns, and must be cleared after.
    await Promise.resolve();
    try {
      for (;;) {
        const why = await this.nextWhy();
        if (why === null || this.stopping) break;
        // This cycle observes everything: what was suspect so far is covered.
        this.suspects = noSuspects();
        this.suspectWhy = null;
        await this.deps.cycle(why);
      }
    } finally {
      this.running = null;
    }
    // An event that came while the loop was ending.
    if (!isEmpty(this.suspects) || this.again) this.kick();
  }

  /** Why the next cycle runs; null when nothing calls for one (the suspects all back already). */
  private async nextWhy(): Promise<string | null> {
    const why = this.pendingWhy ?? (this.again ? 'coalesced' : null);
    this.pendingWhy = null;
    this.again = false;
    if (why !== null || isEmpty(this.suspects)) return why;
    const subjects = this.suspects;
    const event = this.suspectWhy ?? 'event';
    this.suspects = noSuspects();
    this.suspectWhy = null;
    const down = await this.deps.stillDown(subjects).catch(() => ['(check failed)']);
    if (down.length > 0) return event;
    this.deps.log('event-settled', { why: event }, `${event}: all back already, nothing to do`);
    return null;
  }
}
