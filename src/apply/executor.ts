/**
 * Apply a plan: executors per action kind, in the plan's order, with systemd calls batched (one `enable` / `start`
 * for many units). Every executor checks before it acts; a failed action stops the actions that depend on it, and
 * the result says what was done and what was not. The next run converges from wherever this one stopped.
 */
import { lstat, rename, rm } from '../fs-async.js';
import { basename, dirname, join } from 'node:path';
import { assertNever, UserError } from '../errors.js';
import type { Runner } from '../exec.js';
import type { ReconcilerState } from '../model/observed.js';
import { backoffDelayMs, type Action, type BackoffPolicy, type UnitAction } from '../model/plan.js';
import { sha256 } from '../plan/digest.js';
import { exactSession, socketArgs } from '../render/names.js';
import { parseEnvFile } from '../render/env.js';
import { describeSocket, OWNER_FORMAT, parseSessionMarkers } from '../observe/tmux.js';
import { actionTarget, actionVerb } from '../render/plan-text.js';
import { syncDirs, writeFileAtomic } from './atomic.js';
import { WATCH_SERVICE } from '../render/convergence.js';
import { journalPath, type ActionOutcome } from './journal.js';
import {
  findLinks,
  homeOfStateDir,
  mkdirNoFollow,
  readNoFollow,
  refuseLinks,
  rootFor,
  type FoundLink,
} from './safe-path.js';
import { statePath, writeState } from './state.js';
import { runWorkspaceAction } from './workspace.js';

export interface ApplyContext {
  runner: Runner;
  stateDir: string;
  state: ReconcilerState;
  /** Unix ms, for backup and archive names and back-off bookkeeping. */
  nowMs: number;
  /** Crash-loop back-off policy: every respawn attempt (done or failed) pushes the agent's next attempt out. */
  backoff: BackoffPolicy;
  /** Called after each action completes (progress output, watch-mode log lines). */
  onResult?: (result: ActionResult) => void;
  /**
   * Where the no-link rule starts for the paths the actions name (src/apply/safe-path.ts): default the Mosaic
   * home (the state directory's). A path below none of them (a unit file) is checked from its own directory.
   */
  roots?: readonly string[];
}

export interface ActionResult {
  action: Action;
  outcome: ActionOutcome;
  /** Past-tense sentence: "created /x", "started mosaic-agent@a.service". */
  message: string;
  error?: string;
  /** Where the backup of an operator-edited file went. */
  backupPath?: string;
}

export interface ApplyResult {
  ok: boolean;
  results: ActionResult[];
}

const SYSTEMCTL_TIMEOUT_MS = 90_000;

function pastTense(a: Action): string {
  const target = actionTarget(a);
  switch (a.kind) {
    case 'write-file':
      return `${a.before === null ? 'created' : 'updated'} ${target}`;
    case 'archive-file':
      return `archived ${a.path} to ${a.to}`;
    case 'daemon-reload':
      return 'reloaded systemd unit files';
    case 'enable':
      return `enabled ${target}`;
    case 'disable':
      return `disabled ${target}`;
    case 'start':
      return `started ${target}`;
    case 'restart':
      return `restarted ${target}`;
    case 'stop':
      return `stopped ${target}`;
    case 'respawn':
      return `respawned ${a.agent} (${a.reason})`;
    case 'kill-session':
      return `killed session ${target}`;
    case 'worktree-add':
      return `added worktree ${a.path}`;
    case 'worktree-lock':
      return `locked worktree ${a.path}`;
    case 'worktree-move':
      return `moved worktree ${a.path} to ${a.to}`;
    case 'worktree-remove':
      return `removed worktree ${a.path}`;
    default:
      return assertNever(a, 'action');
  }
}

/** Unit actions of one kind that follow each other are sent to systemd in one call. */
type Step = { batch: UnitAction['kind'] | 'respawn'; actions: Action[] } | { single: Action };

/**
 * The watch service runs this very reconciler: stopping or restarting it waits for the watcher to exit, and the
 * watcher waits for this cycle to finish. Such a job is queued without waiting (`--no-block`), on its own.
 */
function isSelf(a: Action): boolean {
  return (a.kind === 'stop' || a.kind === 'restart') && a.unit === WATCH_SERVICE;
}

function steps(actions: readonly Action[]): Step[] {
  const out: Step[] = [];
  for (const a of actions) {
    const batchKind =
      a.kind === 'enable' ||
      a.kind === 'disable' ||
      a.kind === 'start' ||
      a.kind === 'restart' ||
      a.kind === 'stop'
        ? a.kind
        : a.kind === 'respawn'
          ? 'respawn'
          : null;
    const last = out[out.length - 1];
    if (batchKind !== null && isSelf(a)) out.push({ single: a });
    else if (batchKind !== null && last && 'batch' in last && last.batch === batchKind) last.actions.push(a);
    else if (batchKind !== null) out.push({ batch: batchKind, actions: [a] });
    else out.push({ single: a });
  }
  return out;
}

function unitOf(a: Action): string {
  if (a.kind === 'respawn') return a.unit;
  if (
    a.kind === 'enable' ||
    a.kind === 'disable' ||
    a.kind === 'start' ||
    a.kind === 'restart' ||
    a.kind === 'stop'
  ) {
    return a.unit;
  }
  return '';
}

function agentOf(a: Action): string | null {
  return a.kind === 'daemon-reload' ? null : a.agent;
}

async function currentContent(path: string): Promise<string | null> {
  const r = await readNoFollow(path);
  if (r.kind === 'link') refuseLinks([r.link]);
  if (r.kind === 'other') throw new Error(`${path} is not a regular file`);
  return r.kind === 'file' ? r.content : null;
}

function rootsOf(ctx: ApplyContext): readonly string[] {
  return ctx.roots ?? [homeOfStateDir(ctx.stateDir)];
}

/**
 * Before the first action: every path the actions write, archive, back up or journal to, and every directory
 * on the way from its root, must be no symbolic link. One is refused (LinkRefusedError, naming it) before
 * anything is written; the executors check again as they act, and open files with O_NOFOLLOW.
 */
async function refuseLinksOnTheWay(actions: readonly Action[], ctx: ApplyContext): Promise<void> {
  const roots = rootsOf(ctx);
  const home = homeOfStateDir(ctx.stateDir);
  const checks: [string, string][] = [
    [home, statePath(ctx.stateDir)],
    [home, journalPath(ctx.stateDir)],
  ];
  for (const a of actions) {
    if (a.kind === 'write-file') {
      checks.push([rootFor(a.path, roots), a.path]);
      if (a.backup) checks.push([home, join(ctx.stateDir, 'backups')]);
    } else if (a.kind === 'archive-file') {
      checks.push([rootFor(a.path, roots), a.path], [rootFor(a.to, roots), a.to]);
    }
  }
  const found: FoundLink[] = [];
  for (const [root, path] of checks) {
    for (const l of await findLinks(root, [path])) if (!found.some((f) => f.path === l.path)) found.push(l);
  }
  refuseLinks(found);
}

/** The socket an env file tells its agent to use; null when it names none. */
function envSocket(content: string): string | null {
  return parseEnvFile(content).entries.get('MOSAIC_TMUX_SOCKET') ?? null;
}

/** Remember that `agent`'s sessions live on `socket` (the only servers where the reconciler may end them). */
function recordSocket(ctx: ApplyContext, agent: string, socket: string): void {
  const all = (ctx.state.sessionSockets ??= {});
  const used = all[agent] ?? [];
  if (!used.includes(socket)) all[agent] = [...used, socket].sort();
}

function forgetSockets(ctx: ApplyContext, agent: string, socket?: string): void {
  const all = ctx.state.sessionSockets;
  if (all?.[agent] === undefined) return;
  const left = socket === undefined ? [] : all[agent].filter((s) => s !== socket);
  if (left.length > 0) all[agent] = left;
  else delete all[agent];
  if (Object.keys(all).length === 0) delete ctx.state.sessionSockets;
}

/**
 * Check before ending a session: it must still carry the marker the plan saw (the fleet's own), so a same-named
 * session that took its place since is spared. Returns false when the session is already gone.
 */
async function stillOwned(a: Extract<Action, { kind: 'kill-session' }>, ctx: ApplyContext): Promise<boolean> {
  if (a.owner === undefined) return true;
  const r = await ctx.runner.run(['tmux', ...socketArgs(a.socketName), 'list-sessions', '-F', OWNER_FORMAT], {
    kind: 'read',
    reject: false,
    env: { TMUX: undefined },
  });
  if (r.exitCode !== 0) {
    if (/no server running|error connecting/i.test(r.stderr)) return false;
    throw new Error(`tmux list-sessions failed: ${r.stderr.trim()}`);
  }
  const marker = parseSessionMarkers(r.stdout).get(a.session);
  if (marker === undefined) return false;
  if (marker !== a.owner) {
    throw new Error(
      `session ${a.session} on ${describeSocket(a.socketName)} does not carry this fleet's marker ` +
        `(${marker === '' ? 'none' : `it names ${marker}`}); left alone`,
    );
  }
  return true;
}

function stampOf(ms: number): string {
  return new Date(ms).toISOString().replace(/[:.]/g, '-');
}

/**
 * `unsyncedDirs`: directories a file write left for the caller to sync once after a run of writes (an apply of
 * N new agents writes N env files into one directory: N directory syncs cost as much as the files' own).
 */
async function runSingle(
  a: Action,
  ctx: ApplyContext,
  unsyncedDirs: Set<string>,
): Promise<{ backupPath?: string; message?: string }> {
  switch (a.kind) {
    case 'write-file': {
      // Check before acting: the file must still be what the plan saw, or we would overwrite an edit made since.
      const now = await currentContent(a.path);
      if (now !== a.before) {
        throw new Error(`${a.path} changed since the plan was made; run reconcile again`);
      }
      let backupPath: string | undefined;
      if (a.backup && now !== null) {
        // The bytes just read (not a copy by path, which would follow a link): private, like the state dir.
        const dir = join(ctx.stateDir, 'backups');
        backupPath = join(dir, `${basename(a.path)}.${stampOf(ctx.nowMs)}.bak`);
        await writeFileAtomic(backupPath, now, 0o600, homeOfStateDir(ctx.stateDir));
      }
      await writeFileAtomic(a.path, a.after, a.mode, rootFor(a.path, rootsOf(ctx)), unsyncedDirs);
      ctx.state.written[a.path] = sha256(a.after);
      if (a.role === 'env' && a.agent !== null) {
        const socket = envSocket(a.after);
        if (socket !== null) recordSocket(ctx, a.agent, socket);
      }
      return backupPath === undefined ? {} : { backupPath };
    }
    case 'archive-file': {
      const roots = rootsOf(ctx);
      const exists = await lstat(a.path).then(
        () => true,
        () => false,
      );
      if (!exists) return {};
      // Neither the file nor the archive may be (or lie behind) a link: a rename or copy would go through it.
      refuseLinks([
        ...(await findLinks(rootFor(a.path, roots), [a.path])),
        ...(await findLinks(rootFor(a.to, roots), [a.to])),
      ]);
      await mkdirNoFollow(rootFor(a.to, roots), dirname(a.to));
      try {
        await rename(a.path, a.to);
      } catch (error) {
        // The unit dir and the Mosaic home may be on different filesystems: copy, then remove the original.
        if ((error as NodeJS.ErrnoException).code !== 'EXDEV') throw error;
        const r = await readNoFollow(a.path);
        if (r.kind === 'link') refuseLinks([r.link]);
        if (r.kind !== 'file') throw new Error(`${a.path} is not a regular file`);
        await writeFileAtomic(a.to, r.content, r.mode, rootFor(a.to, roots));
        await rm(a.path);
      }
      delete ctx.state.written[a.path];
      // A pruned agent's env file is archived only after its session was ended (or never found): forget its sockets.
      if (a.agent !== null && a.path.endsWith('.env')) forgetSockets(ctx, a.agent);
      return {};
    }
    case 'daemon-reload':
      await ctx.runner.run(['systemctl', '--user', 'daemon-reload'], {
        kind: 'mutate',
        timeoutMs: SYSTEMCTL_TIMEOUT_MS,
      });
      return {};
    case 'kill-session': {
      if (!(await stillOwned(a, ctx))) {
        if (a.agent !== null) forgetSockets(ctx, a.agent, a.socketName);
        return {};
      }
      if (a.graceful !== undefined) {
        // The runtime's own exit first (its stop script); whatever is left is killed below as always.
        await ctx.runner.run([a.graceful.script, a.session], {
          kind: 'mutate',
          reject: false,
          timeoutMs: 40_000,
          env: { ...a.graceful.env, TMUX: undefined },
        });
      }
      const r = await ctx.runner.run(
        ['tmux', ...socketArgs(a.socketName), 'kill-session', '-t', exactSession(a.session)],
        {
          kind: 'mutate',
          reject: false,
          // Run from inside a tmux pane, $TMUX names the enclosing server and a plain `tmux` (the default socket)
          // would kill a session of that name there: only the socket rule may pick the server.
          env: { TMUX: undefined },
        },
      );
      // Already gone is what we wanted.
      if (r.exitCode !== 0 && !/can't find session|no server running|error connecting/i.test(r.stderr)) {
        throw new Error(`tmux kill-session failed: ${r.stderr.trim()}`);
      }
      if (a.agent !== null) forgetSockets(ctx, a.agent, a.socketName);
      return {};
    }
    case 'enable':
    case 'disable':
    case 'start':
    case 'restart':
    case 'stop':
    case 'respawn':
      await systemctl(ctx, a.kind === 'respawn' ? 'restart' : a.kind, [unitOf(a)], isSelf(a));
      return {};
    case 'worktree-add':
    case 'worktree-lock':
    case 'worktree-move':
    case 'worktree-remove':
      return { message: await runWorkspaceAction(a, ctx.runner, ctx.state) };
    default:
      return assertNever(a, 'action');
  }
}

async function systemctl(
  ctx: ApplyContext,
  verb: UnitAction['kind'],
  units: string[],
  noBlock = false,
): Promise<void> {
  await ctx.runner.run(['systemctl', '--user', ...(noBlock ? ['--no-block'] : []), verb, ...units], {
    kind: 'mutate',
    timeoutMs: SYSTEMCTL_TIMEOUT_MS,
  });
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Test-only fault point: `FLEET_TEST_CRASH_AFTER=k` kills this process with SIGKILL right after the k-th action
 * finished, as a power cut or an OOM kill would (no cleanup, no journal). The crash-injection tests use it to
 * prove that the next run converges from every such point (docs/reliability.md).
 */
function crashPoint(done: number): void {
  const at = process.env.FLEET_TEST_CRASH_AFTER;
  if (at !== undefined && at !== '' && Number(at) === done) process.kill(process.pid, 'SIGKILL');
}

export async function applyPlan(actions: readonly Action[], ctx: ApplyContext): Promise<ApplyResult> {
  await refuseLinksOnTheWay(actions, ctx);
  const results: ActionResult[] = [];
  // A failure blocks what depends on it: a global action (framework/unit file, daemon-reload, holder) blocks
  // everything after it; an agent's action blocks that agent's later actions.
  let globalFailure = false;
  const failedAgents = new Set<string>();
  const record = (r: ActionResult) => {
    results.push(r);
    if (r.action.kind === 'respawn' && r.outcome === 'done')
      recordSocket(ctx, r.action.agent, r.action.socketName);
    if (r.action.kind === 'respawn' && r.outcome !== 'not-run') {
      // A failed attempt counts too: a unit that cannot even restart must not be hammered either.
      const attempt = r.action.attempt;
      // From when the attempt was made, not when the fleet was observed: a slow observation must not shorten the
      // gap to the next attempt.
      const at = Math.max(ctx.nowMs, Date.now());
      ctx.state.backoff[r.action.agent] = {
        attempts: attempt,
        lastAttemptMs: at,
        nextAttemptMs: at + backoffDelayMs(ctx.backoff, attempt),
      };
    }
    ctx.onResult?.(r);
    crashPoint(results.length);
  };
  const blocked = (a: Action) => globalFailure || (agentOf(a) !== null && failedAgents.has(agentOf(a) ?? ''));
  const fail = (a: Action, error: unknown) => {
    record({
      action: a,
      outcome: 'failed',
      message: `failed: ${actionVerb(a)} ${actionTarget(a)}`,
      error: message(error),
    });
    const agent = agentOf(a);
    if (agent === null) globalFailure = true;
    else failedAgents.add(agent);
  };

  const notRun = (a: Action) =>
    record({ action: a, outcome: 'not-run', message: `not run: ${pastTense(a)} (an earlier action failed)` });

  // Renames of a run of file writes are made durable together, before anything that follows the run.
  const unsyncedDirs = new Set<string>();
  for (const step of steps(actions)) {
    if (!('single' in step && step.single.kind === 'write-file')) await syncDirs(unsyncedDirs);
    if ('single' in step) {
      const a = step.single;
      if (blocked(a)) {
        notRun(a);
        continue;
      }
      try {
        const extra = await runSingle(a, ctx, unsyncedDirs);
        record({ action: a, outcome: 'done', message: pastTense(a), ...extra });
      } catch (error) {
        fail(a, error);
      }
      continue;
    }
    const runnable = step.actions.filter((a) => !blocked(a));
    for (const a of step.actions.filter((x) => blocked(x))) {
      notRun(a);
    }
    if (runnable.length === 0) continue;
    const verb = step.batch === 'respawn' ? 'restart' : step.batch;
    try {
      await systemctl(ctx, verb, runnable.map(unitOf));
      for (const a of runnable) record({ action: a, outcome: 'done', message: pastTense(a) });
    } catch {
      // One call for many units failed: find out which, one by one (only on failure, so the happy path stays batched).
      for (const a of runnable) {
        // A global failure earlier in this same batch (the holder) blocks the rest of it, as it would a later step.
        if (blocked(a)) {
          notRun(a);
          continue;
        }
        try {
          await systemctl(ctx, verb, [unitOf(a)]);
          record({ action: a, outcome: 'done', message: pastTense(a) });
        } catch (error) {
          fail(a, error);
        }
      }
    }
  }
  await syncDirs(unsyncedDirs);
  try {
    await writeState(ctx.stateDir, ctx.state);
  } catch (error) {
    // The actions above are done; only the bookkeeping is lost (the next run may back up one file too many).
    throw new UserError(
      `applied, but could not write the reconciler state in ${ctx.stateDir}: ${message(error)}`,
      1,
      { cause: error },
    );
  }
  return { ok: results.every((r) => r.outcome === 'done'), results };
}
