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
import { ExitNow, formatDiagnostic, ManifestError, UserError } from '../errors.js';
import { createRunner } from '../exec.js';
import { loadDesired } from '../manifest/load.js';
import type { DesiredFleet } from '../model/desired.js';
import { hostContext, resolvePaths } from '../paths.js';
import { acquireLock } from '../apply/lock.js';
import { converge } from '../engine/converge.js';
import { planFor } from '../engine/session.js';
import { nextWakeMs } from '../engine/wake.js';
import { addSessions, stillDown } from '../engine/suspects.js';
import { realTimers, WatchScheduler, type Fields } from '../engine/scheduler.js';
import { watchTmuxEvents } from '../observe/tmux-events.js';
import {
  HeartbeatNews,
  logPlan,
  logResult,
  manifestSource,
  unitSource,
  untilStopped,
  type Log,
} from './watch-sources.js';
import { alertWakeMs, earliest, logAlerts, stateAlertAgents } from '../alerts/watch.js';

/** Events come in bursts (a killed session: the session, then its window): one cycle for the burst. */
const EVENT_COALESCE_MS = 20;
/** How long a cycle waits for the lock held by another reconciler (a timer run, a manual run) before retrying later. */
const LOCK_WAIT_MS = 5_000;
/** A cycle that found the lock held after LOCK_WAIT_MS tries again this much later. */
const LOCK_RETRY_MS = 1_000;

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

export async function watchCommand(o: ReconcileOptions): Promise<number> {
  if (o.dryRun) throw new UserError('--watch applies changes; it cannot be combined with --dry-run');
  const intervalS = Number(o.interval ?? '30');
  if (!Number.isFinite(intervalS) || intervalS < 1) {
    throw new UserError(`--interval must be at least 1 second, got "${o.interval}"`);
  }
  const log = logger(o.json);
  const paths = resolvePaths(o);
  const ctx = hostContext(paths);
  const runner = createRunner();
  const command = `fleet reconcile --watch${o.prune ? ' --prune' : ''}`;

  let desired: DesiredFleet | null = null;
  const load = async (why: string): Promise<void> => {
    try {
      desired = await loadDesired([paths.manifests], ctx);
      log('manifests-loaded', { why, agents: desired.agents.length, files: desired.sources.length });
    } catch (error) {
      if (!(error instanceof ManifestError)) throw error;
      for (const d of error.diagnostics) log('manifest-invalid', { diagnostic: formatDiagnostic(d) });
      log(
        'keeping-last-good',
        { agents: desired?.agents.length ?? 0 },
        desired === null
          ? 'no valid manifests yet: waiting for a fix before acting'
          : 'manifests invalid: the last good desired state stays in force',
      );
    }
  };

  const scheduler = new WatchScheduler({
    cycle: (why) => cycle(why),
    stillDown: (subjects) => stillDown(subjects, runner),
    log,
    timers: realTimers,
    coalesceMs: EVENT_COALESCE_MS,
    resyncMs: intervalS * 1000,
  });

  const news = new HeartbeatNews(paths.runDir, (agent) => scheduler.event('heartbeat', { agent }));

  const tmuxEvents = watchTmuxEvents({
    mosaicHome: paths.mosaicHome,
    onEvent: (e) => {
      // Our own client coming up is no news; everything else may be a death.
      const socket = e.socketName || '(default)';
      if (e.kind === 'connected') log('tmux-events', { socket, status: 'connected' });
      // The server gone: everything on it is, no need to look.
      else if (e.kind === 'server-exit') scheduler.event('tmux-server-exit', { socket });
      else
        scheduler.suspect(`tmux-${e.kind}`, { socket, sessions: e.sessions.join(' ') }, (s) =>
          addSessions(s, e.socketName, e.sessions),
        );
    },
    onProblem: (socket, message) =>
      log('tmux-events', { socket: socket || '(default)', status: 'retrying', error: message }),
  });

  const cycle = async (why: string): Promise<void> => {
    if (desired === null) return;
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
      const s = await planFor(desired, paths, o.prune, runner, { meter: true });
      logPlan(log, s, why);
      // Agents whose deferred restart waits for them to go idle: their heartbeat writes wake the watcher.
      // Heartbeats are news for an agent whose restart waits for it to go idle, and for one a state alert covers
      // (entering or leaving `waiting` or `busy`: src/alerts/watch.ts).
      news.waitFor([
        ...s.plan.deferredRestarts.map((d) => d.agent),
        ...stateAlertAgents(desired, s.observed),
      ]);
      const planWake = nextWakeMs(s);
      scheduler.wakeAt(planWake);
      const result = await converge(s, command, {
        onWarning: (line) => log('spend-warning', { warning: line }, line),
        onAlerts: (outcome, error) => {
          logAlerts(log, outcome, error);
          // A condition reaching its `after` (or a retry) wakes the watcher with no polling.
          scheduler.wakeAt(earliest(planWake, alertWakeMs(outcome)));
        },
      });
      logResult(log, result);
    } catch (error) {
      // A failing cycle (systemd unreachable for a moment, say) must not end the watcher: report and retry later.
      log('cycle-failed', { error: error instanceof Error ? error.message.split('\n')[0] : String(error) });
    } finally {
      try {
        // Still under the lock, so no session of ours is being made or ended while a tmux event client
        // identifies itself (src/observe/tmux-events.ts: that crashes tmux). A start may just have brought up
        // the server and holder session a client waits for.
        await tmuxEvents.connect();
      } finally {
        await lock.release();
      }
    }
  };

  const unitEvents = unitSource(scheduler, log);

  await load('start');
  const followSockets = (): void => {
    const d: DesiredFleet | null = desired;
    if (d !== null) tmuxEvents.setSockets(d.sockets);
  };
  followSockets();
  const manifests = await manifestSource(
    paths.manifests,
    log,
    () =>
      void load('edit').then(() => {
        followSockets();
        scheduler.trigger('manifest-change');
      }),
  );

  const resync = setInterval(() => scheduler.trigger('resync'), intervalS * 1000);
  log('watching', { manifests: paths.manifests, interval_s: intervalS });
  scheduler.trigger('start');

  const { insisted } = await untilStopped(log, () => scheduler.stop());
  clearInterval(resync);
  news.close();
  const finished = Promise.all([manifests.close(), tmuxEvents.close(), unitEvents.close()]).then(() =>
    scheduler.idle(),
  );
  const code = await Promise.race([finished.then(() => 0), insisted]);
  if (code !== 0) throw new ExitNow(code);
  log('stopped');
  return 0;
}
