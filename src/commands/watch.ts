/**
 * `fleet reconcile --watch`: level-triggered convergence in a long-running process. Reconciles when a manifest
 * is saved (debounced); when tmux says a session closed or a pane died (src/observe/tmux-events.ts); when an agent
 * waiting for a restart writes its heartbeat; when time alone may change the plan (a back-off ending, a heartbeat
 * turning stale: src/engine/wake.ts); and on a resync interval, the safety net for anything else (a disabled
 * unit, a file edited by hand). A bad or half-saved manifest is reported and the last good desired state stays in force.
 * One log line per event and per action (JSON lines with --json), fit for journald. SIGINT/SIGTERM let the
 * cycle in flight finish, then exit 0.
 */
import type { ReconcileOptions } from '../options.js';
import { ExitNow, UserError } from '../errors.js';
import { createRunner } from '../exec.js';
import { resolvePaths } from '../paths.js';
import { stillDown } from '../engine/suspects.js';
import { realTimers, WatchScheduler, type Fields } from '../engine/scheduler.js';
import { backgroundDeliveries, watchCycle, type DeliveryQueue } from '../engine/watch-cycle.js';
import {
  HeartbeatNews,
  LastGoodDesired,
  manifestSource,
  tmuxSource,
  unitSource,
  untilStopped,
  type Log,
} from '../engine/watch-sources.js';

/** Events come in bursts (a killed session: the session, then its window): one cycle for the burst. */
const EVENT_COALESCE_MS = 20;

function logger(json: boolean): Log {
  return (event: string, fields: Fields = {}, text?: string): void => {
    const ts = new Date().toISOString();
    if (json) {
      process.stdout.write(`${JSON.stringify({ ts, event, ...fields })}\n`);
      return;
    }
    const extra = Object.entries(fields)
      .filter(([, v]) => v !== undefined && v !== null && v !== '')
      .map(([k, v]) => `${k}=${typeof v === 'string' && /\s/.test(v) ? JSON.stringify(v) : String(v)}`)
      .join(' ');
    process.stdout.write(`${ts} ${text ?? event}${extra ? ` ${extra}` : ''}\n`);
  };
}

/** The seconds between resyncs (--interval, at least 1); --watch applies, so never with --dry-run. */
function resyncSeconds(o: ReconcileOptions): number {
  if (o.dryRun) throw new UserError('--watch applies changes; it cannot be combined with --dry-run');
  const intervalS = Number(o.interval ?? '30');
  if (!Number.isFinite(intervalS) || intervalS < 1) {
    throw new UserError(`--interval must be at least 1 second, got "${o.interval}"`);
  }
  return intervalS;
}

/**
 * Wait for SIGINT/SIGTERM, then stop listening (`close`) and let the cycle in flight finish: 0. A second signal
 * while that lasts: leave now with 1.
 */
async function runUntilStopped(
  log: Log,
  scheduler: WatchScheduler,
  close: () => Promise<unknown>,
  deliveries: DeliveryQueue,
): Promise<number> {
  const { insisted } = await untilStopped(log, () => scheduler.stop());
  // The alerts being sent are sent and recorded too (within their bounds), so none is sent twice after a restart.
  const finished = close()
    .then(() => scheduler.idle())
    .then(() => deliveries.idle());
  const code = await Promise.race([finished.then(() => 0), insisted]);
  if (code !== 0) throw new ExitNow(code);
  log('stopped');
  return 0;
}

export async function watchCommand(o: ReconcileOptions): Promise<number> {
  const intervalS = resyncSeconds(o);
  const log = logger(o.json);
  const paths = resolvePaths(o);
  const runner = createRunner();
  const command = `fleet reconcile --watch${o.prune ? ' --prune' : ''}`;
  const fleet = new LastGoodDesired(paths, log);

  // The scheduler calls the cycle, and the cycle tells the scheduler and the listeners what comes next.
  let cycle: (why: string) => Promise<void> = () => Promise.resolve();
  const scheduler = new WatchScheduler({
    cycle: (why) => cycle(why),
    stillDown: (subjects) => stillDown(subjects, runner),
    log,
    timers: realTimers,
    coalesceMs: EVENT_COALESCE_MS,
    resyncMs: intervalS * 1000,
  });
  const news = new HeartbeatNews(paths.runDir, (agent) => scheduler.event('heartbeat', { agent }));
  const tmuxEvents = tmuxSource(paths.mosaicHome, scheduler, log);
  const deliveries = backgroundDeliveries({ paths, command, scheduler, log });
  cycle = watchCycle({
    paths,
    runner,
    command,
    prune: o.prune,
    fleet,
    scheduler,
    news,
    tmuxEvents,
    log,
    deliveries,
    resyncMs: intervalS * 1000,
  });
  const unitEvents = unitSource(scheduler, log);

  await fleet.load('start');
  const followSockets = (): void => {
    if (fleet.current !== null) tmuxEvents.setSockets(fleet.current.sockets);
  };
  followSockets();
  const manifests = await manifestSource(
    paths.manifests,
    log,
    () =>
      void fleet.load('edit').then(() => {
        followSockets();
        scheduler.trigger('manifest-change');
      }),
  );

  const resync = setInterval(() => scheduler.trigger('resync'), intervalS * 1000);
  log('watching', { manifests: paths.manifests, interval_s: intervalS });
  scheduler.trigger('start');

  return runUntilStopped(
    log,
    scheduler,
    () => {
      clearInterval(resync);
      news.close();
      return Promise.all([manifests.close(), tmuxEvents.close(), unitEvents.close()]);
    },
    deliveries,
  );
}
