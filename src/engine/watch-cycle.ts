/**
 * One cycle of watch mode (src/commands/watch.ts): under the lock, plan for the last good fleet, say what the
 * plan and the apply did, and tell the listeners what to wait for next (the heartbeats that are news, the next
 * time-driven wake, the sockets tmux's events come from).
 */
import { acquireLock } from '../apply/lock.js';
import type { Runner } from '../exec.js';
import type { TmuxEventSource } from '../observe/tmux-events.js';
import type { FleetPaths } from '../paths.js';
import { alertWakeMs, earliest, logAlerts, stateAlertAgents } from '../alerts/watch.js';
import { DeliveryQueue } from '../alerts/background.js';

export type { DeliveryQueue } from '../alerts/background.js';
import { recordDeliveries } from '../alerts/run.js';
import { owesMessages } from '../alerts/episodes.js';
import { converge } from './converge.js';
import type { WatchScheduler } from './scheduler.js';
import { planFor } from './session.js';
import { sourceCommit } from './source.js';
import { nextWakeMs } from './wake.js';
import { logPlan, logResult, type HeartbeatNews, type LastGoodDesired, type Log } from './watch-sources.js';

/** How long a cycle waits for the lock held by another reconciler (a timer run, a manual run) before retrying later. */
const LOCK_WAIT_MS = 5_000;
/** A cycle that found the lock held after LOCK_WAIT_MS tries again this much later. */
const LOCK_RETRY_MS = 1_000;
/** Recording a background delivery waits this long for the lock (a cycle, a manual run) before giving up. */
const RECORD_LOCK_WAIT_MS = 60_000;

export interface WatchCycleParts {
  paths: FleetPaths;
  runner: Runner;
  command: string;
  prune: boolean;
  fleet: LastGoodDesired;
  scheduler: WatchScheduler;
  news: HeartbeatNews;
  tmuxEvents: TmuxEventSource;
  log: Log;
  deliveries: DeliveryQueue;
  /** The resync interval: with a git source, a fetch is made at least this often (docs/hosts.md). */
  resyncMs: number;
}

/**
 * Watch mode's alert deliveries, off the cycle: the results are recorded under the lock when they come, logged,
 * and a message still owed (a failure to retry, a resolution that waited for its firing) wakes a cycle, whose
 * alerts step sends it when due. Not recorded (the lock never came): the message stays pending and is sent again.
 */
export function backgroundDeliveries(
  w: Pick<WatchCycleParts, 'paths' | 'command' | 'scheduler' | 'log'>,
): DeliveryQueue {
  const { paths, command, scheduler, log } = w;
  return new DeliveryQueue(
    async (reports, started) => {
      const lock = await acquireLock(paths.stateDir, command, RECORD_LOCK_WAIT_MS);
      let episodes;
      try {
        episodes = await recordDeliveries({ stateDir: paths.stateDir, command }, started, reports);
      } finally {
        await lock.release();
      }
      logAlerts(log, { judgments: [], episodes, deliveries: reports, wakeAtMs: null });
      if (owesMessages(episodes)) scheduler.trigger('alert-delivery');
    },
    (error) => logAlerts(log, null, error),
  );
}

/** The scheduler's cycle: nothing until the manifests have loaded once; a failing cycle never ends the watcher. */
export function watchCycle(w: WatchCycleParts): (why: string) => Promise<void> {
  const { paths, runner, command, scheduler, log } = w;
  return async (why) => {
    if (w.fleet.current === null && w.fleet.source === null) return;
    let lock;
    try {
      lock = await acquireLock(paths.stateDir, command, LOCK_WAIT_MS);
    } catch (error) {
      log('lock-busy', { error: error instanceof Error ? error.message : String(error) });
      // Another reconciler (a manual run, a verb) is at work: this cycle is not dropped, only put off.
      scheduler.retryLater(why, LOCK_RETRY_MS);
      return;
    }
    try {
      // The git source: fetched and fast-forwarded under the lock, before planning (docs/hosts.md).
      await w.fleet.follow(why, runner, command, w.resyncMs);
      const desired = w.fleet.current;
      if (desired === null) return;
      if (w.fleet.source !== null) w.tmuxEvents.setSockets(desired.sockets);
      const s = await planFor(desired, paths, w.prune, runner, {
        meter: true,
        source: sourceCommit(w.fleet.sourceRun),
      });
      logPlan(log, s, why);
      // Heartbeats are news for an agent whose restart waits for it to go idle, and for one a state alert covers
      // (entering or leaving `waiting` or `busy`: src/alerts/watch.ts).
      w.news.waitFor([
        ...s.plan.deferredRestarts.map((d) => d.agent),
        ...stateAlertAgents(desired, s.observed),
      ]);
      const planWake = nextWakeMs(s);
      scheduler.wakeAt(planWake);
      const result = await converge(s, command, {
        deliveries: w.deliveries,
        onWarning: (line) => log('spend-warning', { warning: line }, line),
        onAlerts: (outcome, error) => {
          logAlerts(log, outcome, error);
          // A condition reaching its `after` (or a retry) wakes the watcher with no polling.
          scheduler.wakeAt(earliest(planWake, alertWakeMs(outcome)));
        },
      });
      logResult(log, result);
      // Many hosts: publish after apply; a problem said once, a won claim starts now (docs/hosts.md).
      if (desired.register !== undefined)
        await (
          await import('../register/cycle.js')
        ).publishInWatch(s, result !== null, log, (why) => scheduler.trigger(why));
    } catch (error) {
      // A failing cycle (systemd unreachable for a moment, say) must not end the watcher: report and retry later.
      log('cycle-failed', { error: error instanceof Error ? error.message.split('\n')[0] : String(error) });
    } finally {
      try {
        // Still under the lock, so no session of ours is being made or ended while a tmux event client
        // identifies itself (src/observe/tmux-events.ts: that crashes tmux). A start may just have brought up
        // the server and holder session a client waits for.
        await w.tmuxEvents.connect();
      } finally {
        await lock.release();
      }
    }
  };
}
