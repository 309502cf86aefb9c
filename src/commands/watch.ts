/**
 * `fleet reconcile --watch`: level-triggered convergence in a long-running process. Reconciles when a manifest
 * is saved (debounced); when tmux says a session closed or a pane died (src/observe/tmux-events.ts); when an agent
 * waiting for a restart writes its heartbeat; when time alone may change the plan (a back-off ending, a heartbeat
 * turning stale: src/engine/wake.ts); and on a resync interval, the safety net for anything else (a disabled
 * unit, a file edited by hand). A bad or half-saved manifest is reported and the last good desired state stays in force.
 * One log line per event and per action (JSON lines with --json), fit for journald. SIGINT/SIGTERM let the
 * cycle in flight finish, then exit 0.
 */
import { watch, type FSWatcher } from 'chokidar';
import { watch as watchDir, type FSWatcher as DirWatcher } from 'node:fs';
import { stat } from '../fs-async.js';
import { basename, join } from 'node:path';
import type { ReconcileOptions } from '../cli.js';
import { formatDiagnostic, ManifestError, UserError } from '../errors.js';
import { createRunner } from '../exec.js';
import { loadDesired } from '../manifest/load.js';
import type { DesiredFleet } from '../model/desired.js';
import { hostContext, resolvePaths } from '../paths.js';
import { actionTarget, actionVerb } from '../render/plan-text.js';
import { acquireLock } from '../apply/lock.js';
import { readNoFollowSync } from '../apply/safe-path.js';
import { converge } from '../engine/converge.js';
import { planFor } from '../engine/session.js';
import { nextWakeMs } from '../engine/wake.js';
import { addSessions, isEmpty, noSuspects, stillDown } from '../engine/suspects.js';
import { watchTmuxEvents } from '../observe/tmux-events.js';
import { watchUnitEvents } from '../observe/unit-events.js';

const DEBOUNCE_MS = 300;
/** Events come in bursts (a killed session: the session, then its window): one cycle for the burst. */
const EVENT_COALESCE_MS = 20;
/** How long a cycle waits for the lock held by another reconciler (a timer run, a manual run) before retrying later. */
const LOCK_WAIT_MS = 5_000;
/** A cycle that found the lock held after LOCK_WAIT_MS tries again this much later. */
const LOCK_RETRY_MS = 1_000;

type Fields = Record<string, string | number | boolean | null | undefined>;

function logger(json: boolean) {
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

/**
 * A heartbeat's `state=` and `since=` lines (what can change a restart decision); null when unreadable or when it
 * says no state (a writer caught between truncating and writing: not news).
 */
function beatState(file: string): string | null {
  try {
    const r = readNoFollowSync(file);
    if (r.kind !== 'file') return null;
    const state = /^state=.*$/m.exec(r.content)?.[0];
    if (state === undefined) return null;
    return `${state}\n${/^since=.*$/m.exec(r.content)?.[0] ?? ''}`;
  } catch {
    return null;
  }
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

  let stopping = false;
  let running: Promise<void> | null = null;
  let again = false;
  let waitingForIdle = new Set<string>();
  let wakeTimer: NodeJS.Timeout | null = null;
  let eventTimer: NodeJS.Timeout | null = null;

  /** Sleep until time alone may change the plan, when that comes before the next resync. */
  const scheduleWake = (atMs: number | null): void => {
    if (wakeTimer !== null) clearTimeout(wakeTimer);
    wakeTimer = null;
    if (atMs === null || stopping) return;
    const inMs = Math.max(0, atMs - Date.now());
    if (inMs >= intervalS * 1000) return;
    wakeTimer = setTimeout(() => {
      wakeTimer = null;
      trigger('timer');
    }, inMs);
  };

  let runWatcher: DirWatcher | null = null;
  /** What each waiting agent's heartbeat last said (its `state` and `since` lines). */
  const beatSeen = new Map<string, string>();
  /** Heartbeats: only an agent whose restart waits for it to go idle is news (a busy agent's every beat is not). */
  const watchRunDir = (): void => {
    if (runWatcher !== null || stopping) return;
    try {
      runWatcher = watchDir(paths.runDir, (_event, file) => {
        const name = typeof file === 'string' && file.endsWith('.hb') ? file.slice(0, -'.hb'.length) : null;
        if (name === null || !waitingForIdle.has(name)) return;
        // The ticker refreshes `ts` every few seconds; only a new state (or a new `since`) can free the restart.
        const said = beatState(join(paths.runDir, `${name}.hb`));
        if (said === null || beatSeen.get(name) === said) return;
        beatSeen.set(name, said);
        onEvent('heartbeat', { agent: name });
      });
      runWatcher.on('error', () => {
        runWatcher?.close();
        runWatcher = null;
      });
    } catch {
      // No run directory yet (no agent started): tried again after each cycle; the timer covers it meanwhile.
    }
  };
  const unwatchRunDir = (): void => {
    runWatcher?.close();
    runWatcher = null;
  };

  /** An event names something that happened now: one cycle for a burst of them, as soon as the burst is over. */
  const onEvent = (why: string, fields: Fields): void => {
    if (stopping) return;
    log('event', { why, ...fields });
    if (eventTimer !== null) return;
    eventTimer = setTimeout(() => {
      eventTimer = null;
      trigger(why);
    }, EVENT_COALESCE_MS);
  };

  /**
   * A death event with named subjects: looked at once more before it costs a cycle (src/engine/suspects.ts), as
   * most come from a cycle's own restarts. Checked when no cycle runs; one started meanwhile covers them.
   */
  let suspects = noSuspects();
  let suspectWhy: string | null = null;
  let checkTimer: NodeJS.Timeout | null = null;
  const onSuspect = (why: string, fields: Fields, add: () => void): void => {
    if (stopping) return;
    log('event', { why, ...fields });
    add();
    suspectWhy ??= why;
    if (checkTimer !== null) return;
    checkTimer = setTimeout(() => {
      checkTimer = null;
      kick();
    }, EVENT_COALESCE_MS);
  };

  const tmuxEvents = watchTmuxEvents({
    mosaicHome: paths.mosaicHome,
    onEvent: (e) => {
      // Our own client coming up is no news; everything else may be a death.
      const socket = e.socketName || '(default)';
      if (e.kind === 'connected') log('tmux-events', { socket, status: 'connected' });
      // The server gone: everything on it is, no need to look.
      else if (e.kind === 'server-exit') onEvent('tmux-server-exit', { socket });
      else
        onSuspect(`tmux-${e.kind}`, { socket, sessions: e.sessions.join(' ') }, () =>
          addSessions(suspects, e.socketName, e.sessions),
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
      if (!stopping) setTimeout(() => trigger(why), LOCK_RETRY_MS).unref();
      return;
    }
    try {
      const s = await planFor(desired, paths, o.prune, runner);
      log('plan', {
        trigger: why,
        actions: s.plan.actions.length,
        deferred: s.plan.deferred.length,
        orphans: s.plan.orphans.length,
      });
      for (const a of s.plan.actions) {
        log(
          'planned',
          { kind: a.kind, target: actionTarget(a), reason: a.reason },
          `plan: ${actionVerb(a)} ${actionTarget(a)}`,
        );
      }
      for (const d of s.plan.deferred) {
        log('deferred', {
          agent: d.agent,
          reason: d.reason,
          next_attempt_at: new Date(d.nextAttemptMs).toISOString(),
        });
      }
      // Agents whose deferred restart waits for them to go idle: their heartbeat writes wake the watcher.
      waitingForIdle = new Set(s.plan.deferredRestarts.map((d) => d.agent));
      for (const d of s.plan.deferredRestarts) {
        log('restart-deferred', {
          agent: d.agent,
          need: d.need,
          reason: d.reason,
          since: new Date(d.sinceMs).toISOString(),
        });
        const said = beatState(join(paths.runDir, `${d.agent}.hb`));
        if (said !== null) beatSeen.set(d.agent, said);
      }
      for (const name of beatSeen.keys()) if (!waitingForIdle.has(name)) beatSeen.delete(name);
      // Every agent beats every few seconds: with nobody waiting, those writes must not wake the watcher at all.
      if (waitingForIdle.size > 0) watchRunDir();
      else unwatchRunDir();
      scheduleWake(nextWakeMs(s));
      const result = await converge(s, command);
      for (const r of result?.results ?? []) {
        log(
          'action',
          { kind: r.action.kind, target: actionTarget(r.action), outcome: r.outcome, error: r.error },
          r.message,
        );
      }
      if (result !== null) log('applied', { ok: result.ok });
      // Many hosts: publish after apply; a problem said once, a won claim starts now (docs/hosts.md).
      if (desired.register !== undefined)
        await (await import('../register/cycle.js')).publishInWatch(s, result !== null, log, trigger);
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

  /**
   * Cycles never overlap: a trigger during a cycle runs one more cycle after it. Suspects (above) are checked
   * between cycles; one still down starts a cycle, named after its event.
   */
  let pendingWhy: string | null = null;
  const trigger = (why: string): void => {
    if (stopping) return;
    if (running !== null) {
      again = true;
      return;
    }
    pendingWhy = why;
    kick();
  };
  const kick = (): void => {
    if (stopping || running !== null) return;
    if (pendingWhy === null && !again && isEmpty(suspects)) return;
    running = (async () => {
      // Never finish synchronously: `running` is assigned when this returns, and must be cleared after.
      await Promise.resolve();
      try {
        for (;;) {
          let why: string | null = pendingWhy ?? (again ? 'coalesced' : null);
          pendingWhy = null;
          again = false;
          if (why === null && !isEmpty(suspects)) {
            const subjects = suspects;
            const event = suspectWhy ?? 'event';
            suspects = noSuspects();
            suspectWhy = null;
            const down = await stillDown(subjects, runner).catch(() => ['(check failed)']);
            if (down.length > 0) why = event;
            else log('event-settled', { why: event }, `${event}: all back already, nothing to do`);
          }
          if (why === null || stopping) break;
          // This cycle observes everything: what was suspect so far is covered.
          suspects = noSuspects();
          suspectWhy = null;
          await cycle(why);
        }
      } finally {
        running = null;
      }
      // An event that came while the loop was ending.
      if (!isEmpty(suspects) || again) kick();
    })();
  };

  let unitConnects = 0;
  const unitEvents = watchUnitEvents(
    process.env,
    (e) => {
      // A unit that went down is news; the passing states of a start or stop (ours, mostly) settle within
      // milliseconds into one that is, and 'active' is what a cycle makes, not a death.
      // The timer's oneshot run ending is routine.
      if (e.unit === 'mosaic-fleet-reconcile.service') return;
      if (e.activeState === 'inactive' || e.activeState === 'failed')
        onSuspect('unit-changed', { unit: e.unit, state: e.activeState }, () => suspects.units.add(e.unit));
    },
    (error) => log('unit-events', { status: 'retrying', error: error.message }),
    {
      onConnected: (t) => {
        log('unit-events', { status: 'connected', via: t.kind });
        // Changes while the connection was down were missed: converge once.
        if (++unitConnects > 1) onEvent('unit-events-reconnected', {});
      },
    },
  );

  await load('start');
  const followSockets = (): void => {
    const d: DesiredFleet | null = desired;
    if (d !== null) tmuxEvents.setSockets(d.sockets);
  };
  followSockets();
  const isDir = await stat(paths.manifests).then(
    (st) => st.isDirectory(),
    () => false,
  );
  let debounce: NodeJS.Timeout | null = null;
  const watcher: FSWatcher = watch(paths.manifests, {
    ignoreInitial: true,
    depth: 0,
    // Editors save by rename; wait until the file stops changing before reading it.
    awaitWriteFinish: { stabilityThreshold: 150, pollInterval: 50 },
    ignored: (p, st) => isDir && st?.isFile() === true && !/\.ya?ml$/.test(p),
  });
  watcher.on('all', (event, file) => {
    if (isDir && file !== paths.manifests && !/\.ya?ml$/.test(file)) return;
    log('manifest-event', { event, file: basename(file) });
    if (debounce) clearTimeout(debounce);
    debounce = setTimeout(() => {
      debounce = null;
      void load('edit').then(() => {
        followSockets();
        trigger('manifest-change');
      });
    }, DEBOUNCE_MS);
  });
  watcher.on('error', (error) =>
    log('watch-error', { error: error instanceof Error ? error.message : String(error) }),
  );

  const resync = setInterval(() => {
    trigger('resync');
  }, intervalS * 1000);
  log('watching', { manifests: paths.manifests, interval_s: intervalS });
  trigger('start');

  await new Promise<void>((resolve) => {
    const stop = (signal: NodeJS.Signals) => {
      if (stopping) {
        // A second signal: the operator insists. Leave now; the next run converges from wherever this stopped.
        log('forced-exit', { signal });
        process.exit(1);
      }
      stopping = true;
      log('stopping', { signal }, `${signal}: finishing the cycle in flight, then exiting`);
      resolve();
    };
    // `on`, not `once`: execa's child cleanup (signal-exit) re-raises a signal when no other listener remains,
    // which would kill us in the middle of the cycle we promised to finish.
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  clearInterval(resync);
  if (debounce) clearTimeout(debounce);
  if (wakeTimer !== null) clearTimeout(wakeTimer);
  if (eventTimer !== null) clearTimeout(eventTimer);
  if (checkTimer !== null) clearTimeout(checkTimer);
  // Assigned from callbacks; read through a function so the type is not narrowed to null here.
  const runDirWatcher = (): DirWatcher | null => runWatcher;
  runDirWatcher()?.close();
  await Promise.all([watcher.close(), tmuxEvents.close(), unitEvents.close()]);
  // `running` is set from callbacks; read it through a function so the type is not narrowed to null here.
  const inFlight = (): Promise<void> | null => running;
  const last = inFlight();
  if (last !== null) await last;
  log('stopped');
  return 0;
}
