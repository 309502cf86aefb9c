/**
 * What wakes watch mode (src/commands/watch.ts wires them to the scheduler, src/engine/scheduler.ts): tmux's
 * events, heartbeats of agents whose restart waits for them to go idle, the systemd user manager's unit signals,
 * saved manifests (and the last good fleet they describe); and the log lines of a cycle.
 */
import { watch, type FSWatcher } from 'chokidar';
import { lstatSync, mkdirSync, watch as watchDir, type FSWatcher as DirWatcher } from 'node:fs';
import { basename, join } from 'node:path';
import { heartbeatFileName, heartbeatState } from '../base/heartbeat.js';
import { readNoFollowSync } from '../base/safe-path.js';
import type { ApplyResult } from '../apply/executor.js';
import type { Fields, WatchScheduler } from './scheduler.js';
import type { Session } from './session.js';
import { addSessions } from './suspects.js';
import { formatDiagnostic, ManifestError } from '../errors.js';
import { stat } from '../fs-async.js';
import { loadDesired } from '../manifest/load.js';
import type { DesiredFleet, HostContext, SourceSettings } from '../model/desired.js';
import type { Runner } from '../exec.js';
import { short } from '../source/follow.js';
import { sourceFromEnv } from '../source/settings.js';
import { readSourceState } from '../source/state.js';
import { advanceText, fleetForRun, journalAdvance, type SourceRun } from './source.js';
import { watchTmuxEvents, type TmuxEventSource } from '../observe/tmux-events.js';
import { watchUnitEvents } from '../observe/unit-events.js';
import { hostContext, type FleetPaths } from '../paths.js';
import { actionTarget, actionVerb } from '../render/plan-text.js';

export type Log = (event: string, fields?: Fields, text?: string) => void;

const DEBOUNCE_MS = 300;

/**
 * A heartbeat's state and since (what can change a restart decision); null when unreadable or when it says no
 * state (a writer caught between truncating and writing: not news).
 */
function beatState(file: string): string | null {
  try {
    const r = readNoFollowSync(file);
    if (r.kind !== 'file') return null;
    const said = heartbeatState(r.content);
    return said === null ? null : `${said.state}\n${said.since ?? ''}`;
  } catch {
    return null;
  }
}

/**
 * Heartbeats: only an agent whose restart waits for it to go idle, or whose state an alert watches, is news (a
 * busy agent's every beat is not). agent-state.sh writes `run/news/NAME` when an agent's state changes, and that
 * folder is what is watched: the liveness ticker rewrites every heartbeat every few seconds, and watching the
 * heartbeats themselves cost 100 agents' watcher ≈ 0.85 % of a core at rest (docs/benchmarks.md, issue 23).
 */
export class HeartbeatNews {
  private watcher: DirWatcher | null = null;
  private waiting = new Set<string>();
  /** What each waiting agent's heartbeat last said (its state and since). */
  private readonly seen = new Map<string, string>();
  private closed = false;

  constructor(
    private readonly runDir: string,
    private readonly onNews: (agent: string) => void,
  ) {}

  /** The agents to listen to now (after each cycle's plan). */
  waitFor(agents: readonly string[]): void {
    this.waiting = new Set(agents);
    for (const agent of agents) {
      const said = beatState(join(this.runDir, heartbeatFileName(agent)));
      if (said !== null) this.seen.set(agent, said);
    }
    for (const name of this.seen.keys()) if (!this.waiting.has(name)) this.seen.delete(name);
    // With nobody waiting, no state change is news: nothing is watched at all.
    if (this.waiting.size > 0) this.watch();
    else this.unwatch();
  }

  close(): void {
    this.closed = true;
    this.unwatch();
  }

  private watch(): void {
    if (this.watcher !== null || this.closed) return;
    const dir = join(this.runDir, 'news');
    try {
      // Made here too, so it can be watched before any agent changed state; never made or watched through a link.
      if (!lstatSync(this.runDir).isDirectory()) return;
      if (lstatSync(dir, { throwIfNoEntry: false }) === undefined) mkdirSync(dir);
      if (!lstatSync(dir).isDirectory()) return;
      this.watcher = watchDir(dir, (_event, file) => {
        const name = typeof file === 'string' ? file : null;
        if (name === null || !this.waiting.has(name)) return;
        // The news says only that something changed: the heartbeat says what (a new state, or a new `since`).
        const said = beatState(join(this.runDir, heartbeatFileName(name)));
        if (said === null || this.seen.get(name) === said) return;
        this.seen.set(name, said);
        this.onNews(name);
      });
      this.watcher.on('error', () => this.unwatch());
    } catch {
      // No run directory yet (no agent started): tried again after each cycle; the timer covers it meanwhile.
    }
  }

  private unwatch(): void {
    this.watcher?.close();
    this.watcher = null;
  }
}

/** tmux's control-mode events on the fleet's sockets: a closed session or a dead pane is a suspect. */
export function tmuxSource(mosaicHome: string, scheduler: WatchScheduler, log: Log): TmuxEventSource {
  return watchTmuxEvents({
    mosaicHome,
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
}

/** The systemd user manager's signals for our units: a unit that went down is a suspect. */
export function unitSource(scheduler: WatchScheduler, log: Log): { close(): Promise<void> } {
  let connects = 0;
  return watchUnitEvents(
    process.env,
    (e) => {
      // A unit that went down is news; the passing states of a start or stop (ours, mostly) settle within
      // milliseconds into one that is, and 'active' is what a cycle makes, not a death.
      // The timer's oneshot run ending is routine.
      if (e.unit === 'mosaic-fleet-reconcile.service') return;
      if (e.activeState === 'inactive' || e.activeState === 'failed')
        scheduler.suspect('unit-changed', { unit: e.unit, state: e.activeState }, (s) => s.units.add(e.unit));
    },
    (error) => log('unit-events', { status: 'retrying', error: error.message }),
    {
      onConnected: (t) => {
        log('unit-events', { status: 'connected', via: t.kind });
        // Changes while the connection was down were missed: converge once.
        if (++connects > 1) scheduler.event('unit-events-reconnected', {});
      },
    },
  );
}

/** A saved manifest (file, or a YAML file in the directory), debounced: `onChange` once the saving is over. */
export async function manifestSource(
  manifests: string,
  log: Log,
  onChange: () => void,
): Promise<{ close(): Promise<void> }> {
  const isDir = await stat(manifests).then(
    (st) => st.isDirectory(),
    () => false,
  );
  let debounce: NodeJS.Timeout | null = null;
  const watcher: FSWatcher = watch(manifests, {
    ignoreInitial: true,
    depth: 0,
    // Editors save by rename; wait until the file stops changing before reading it.
    awaitWriteFinish: { stabilityThreshold: 150, pollInterval: 50 },
    ignored: (p, st) => isDir && st?.isFile() === true && !/\.ya?ml$/.test(p),
  });
  watcher.on('all', (event, file) => {
    if (isDir && file !== manifests && !/\.ya?ml$/.test(file)) return;
    log('manifest-event', { event, file: basename(file) });
    if (debounce) clearTimeout(debounce);
    debounce = setTimeout(() => {
      debounce = null;
      onChange();
    }, DEBOUNCE_MS);
  });
  watcher.on('error', (error) =>
    log('watch-error', { error: error instanceof Error ? error.message : String(error) }),
  );
  return {
    close: () => {
      if (debounce) clearTimeout(debounce);
      return watcher.close();
    },
  };
}

/** Cycles woken for these reasons fetch the git source; others converge to the checkout as it stands. */
const FETCH_WHYS = new Set(['start', 'resync', 'manifest-change']);

/**
 * The fleet watch mode acts on: the manifests as last loaded without error (null until they first load). A bad or
 * half-saved manifest is reported, and the last good desired state stays in force. With a git source (the
 * manifests' `source:`, or `--source`), the fleet is the repository's: fetched and fast-forwarded by `follow`
 * under the cycle's lock, at the resync rhythm (docs/hosts.md, "The git source").
 */
export class LastGoodDesired {
  current: DesiredFleet | null = null;
  /** The git source the host's manifests name; null when they are the fleet themselves. */
  source: SourceSettings | null = null;
  /** The git source's last step: the commit `current` is from. */
  sourceRun: SourceRun | null = null;
  private lastFetchMs = Number.NEGATIVE_INFINITY;
  private lastFailure: string | null = null;
  private readonly ctx: HostContext;

  constructor(
    private readonly paths: FleetPaths,
    private readonly log: Log,
  ) {
    this.ctx = hostContext(paths);
  }

  async load(why: string): Promise<void> {
    try {
      const flag = sourceFromEnv();
      const local = flag === null ? await loadDesired([this.paths.manifests], this.ctx) : null;
      this.source = flag ?? local?.source ?? null;
      if (this.source !== null) {
        this.log('manifests-loaded', { why, source: `${this.source.url}#${this.source.ref}` });
        return;
      }
      this.sourceRun = null;
      this.current = local;
      this.log('manifests-loaded', {
        why,
        agents: this.current?.agents.length ?? 0,
        files: this.current?.sources.length ?? 0,
      });
    } catch (error) {
      if (!(error instanceof ManifestError)) throw error;
      for (const d of error.diagnostics) this.log('manifest-invalid', { diagnostic: formatDiagnostic(d) });
      this.log(
        'keeping-last-good',
        { agents: this.current?.agents.length ?? 0 },
        this.current === null
          ? 'no valid manifests yet: waiting for a fix before acting'
          : 'manifests invalid: the last good desired state stays in force',
      );
    }
  }

  /**
   * With a git source, under the lock: fetch and fast-forward when the cycle is a resync, the start or a manifest
   * change (or no fetch was made for `everyMs`), then `current` is the fleet to converge to. A refusal keeps the
   * last good commit and is said once (a `source` event); a move is journaled.
   */
  async follow(why: string, runner: Runner, command: string, everyMs: number): Promise<void> {
    if (this.source === null) return;
    const now = Date.now();
    if (this.current !== null && !FETCH_WHYS.has(why) && now - this.lastFetchMs < everyMs)
      return this.followMoved(runner);
    this.lastFetchMs = now;
    try {
      const fleet = await fleetForRun({ kind: 'source', settings: this.source }, this.paths, runner, 'apply');
      const run = fleet.source;
      this.current = fleet.desired;
      this.sourceRun = run;
      this.lastFailure = null;
      if (run === null) return;
      if (run.notice !== null) this.log('source', { notice: run.notice }, run.notice);
      const move = advanceText(run);
      if (move === null) return;
      this.log('source-advanced', { commit: run.commit, from: run.advanced?.from ?? null }, move);
      await journalAdvance(this.paths, command, run);
    } catch (error) {
      // No good checkout at all (a first fetch failed): nothing to converge to yet; said once, retried.
      const line = error instanceof Error ? (error.message.split('\n')[0] ?? '') : String(error);
      if (line !== this.lastFailure) this.log('source-failed', { error: line });
      this.lastFailure = line;
    }
  }

  /**
   * No fetch this cycle: converge to the checkout as it stands. Another run (a `fleet reconcile` by hand, the
   * timer), also under the lock, may have moved it since this watcher read it; the fleet read before would then
   * undo that run's work (start again an agent it stopped because it moved to another host). Its commit is in
   * `source.json` (one small file read per cycle); the checkout is read again only when that commit changed.
   */
  private async followMoved(runner: Runner): Promise<void> {
    const from = this.sourceRun?.commit ?? null;
    const state = await readSourceState(this.paths.stateDir);
    if (this.source === null || from === null || state === null || state.commit === from) return;
    if (state.url !== this.source.url || state.ref !== this.source.ref) return;
    try {
      const fleet = await fleetForRun({ kind: 'source', settings: this.source }, this.paths, runner, 'read');
      if (fleet.source === null) return;
      this.current = fleet.desired;
      this.sourceRun = fleet.source;
      // The run that moved it journaled the move; this is only the watcher taking it.
      const commit = fleet.source.commit;
      this.log('source-followed', { commit, from }, `git source: at ${short(commit)}, moved by another run`);
    } catch (error) {
      // Unreadable now (being replaced, say): the fleet read before stays, and the next fetch settles it.
      const line = error instanceof Error ? (error.message.split('\n')[0] ?? '') : String(error);
      this.log('source-failed', { error: line });
    }
  }
}

/** A cycle's plan, one line per action and per deferral. */
export function logPlan(log: Log, s: Session, why: string): void {
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
  for (const d of s.plan.deferredRestarts) {
    log('restart-deferred', {
      agent: d.agent,
      need: d.need,
      reason: d.reason,
      since: new Date(d.sinceMs).toISOString(),
    });
  }
}

/** What a cycle's apply did, one line per action. */
export function logResult(log: Log, result: ApplyResult | null): void {
  for (const r of result?.results ?? []) {
    log(
      'action',
      { kind: r.action.kind, target: actionTarget(r.action), outcome: r.outcome, error: r.error },
      r.message,
    );
  }
  if (result !== null) log('applied', { ok: result.ok });
}

/**
 * Resolves at the first SIGINT/SIGTERM (after `onStop`): finish the cycle in flight, then exit 0. `insisted`
 * settles at a second one: the operator insists, leave now with 1 (the next run converges from there).
 */
export async function untilStopped(log: Log, onStop: () => void): Promise<{ insisted: Promise<number> }> {
  let forced: (code: number) => void = () => undefined;
  const insisted = new Promise<number>((resolve) => (forced = resolve));
  let stopping = false;
  await new Promise<void>((resolve) => {
    const stop = (signal: NodeJS.Signals) => {
      if (stopping) {
        log('forced-exit', { signal });
        forced(1);
        return;
      }
      stopping = true;
      onStop();
      log('stopping', { signal }, `${signal}: finishing the cycle in flight, then exiting`);
      resolve();
    };
    // `on`, not `once`: execa's child cleanup (signal-exit) re-raises a signal when no other listener remains,
    // which would kill us in the middle of the cycle we promised to finish.
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  return { insisted };
}
