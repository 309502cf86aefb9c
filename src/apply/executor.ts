/**
 * Apply a plan: executors per action kind, in the plan's order, with systemd calls batched (one `enable` / `start`
 * for many units). Every executor checks before it acts; a failed action stops the actions that depend on it, and
 * the result says what was done and what was not. The next run converges from wherever this one stopped.
 */
import { join } from 'node:path';
import { assertNever, StorageError, UserError } from '../errors.js';
import { backoffDelayMs, type Action, type UnitAction } from '../model/plan.js';
import { WATCH_SERVICE } from '../base/names.js';
import { actionTarget, actionVerb } from '../render/plan-text.js';
import { syncDirs } from '../base/atomic.js';
import { journalPath } from './journal.js';
import { findLinks, homeOfStateDir, refuseLinks, rootFor, type FoundLink } from '../base/safe-path.js';
import { statePath, writeState } from './state.js';
import { recordSocket, rootsOf, type ActionResult, type ApplyContext, type ApplyResult } from './context.js';
import { archiveFileAction, writeFileAction } from './files.js';
import { killSessionAction } from './sessions.js';
import { runWorkspaceAction } from './workspace.js';

export type { ActionResult, ApplyContext, ApplyResult } from './context.js';

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
    case 'write-file':
      return writeFileAction(a, ctx, unsyncedDirs);
    case 'archive-file':
      await archiveFileAction(a, ctx);
      return {};
    case 'daemon-reload':
      await ctx.runner.run(['systemctl', '--user', 'daemon-reload'], {
        kind: 'mutate',
        timeoutMs: SYSTEMCTL_TIMEOUT_MS,
      });
      return {};
    case 'kill-session':
      await killSessionAction(a, ctx);
      return {};
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

/**
 * The disk refused a write (full, over quota, read-only): every later write would fail the same way, and a start
 * or restart after a file that could not be written would run the old file. So the run stops here, keeps what
 * bookkeeping it still can (the state file, best effort), and the error goes up as the one line the operator
 * sees. The journal is not written: it lives on the same disk. The next run, with space, continues.
 */
async function stopForDisk(
  error: StorageError,
  ctx: ApplyContext,
  unsyncedDirs: Set<string>,
): Promise<never> {
  await syncDirs(unsyncedDirs).catch(() => undefined);
  await writeState(ctx.stateDir, ctx.state).catch(() => undefined);
  throw error;
}

/** What one run has done so far, and what a failure blocks. */
interface Tracker {
  readonly results: ActionResult[];
  record(r: ActionResult): void;
  blocked(a: Action): boolean;
  fail(a: Action, error: unknown): void;
  notRun(a: Action): void;
}

function tracker(ctx: ApplyContext): Tracker {
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
  return { results, record, blocked, fail, notRun };
}

/** One batched systemctl call for a run of alike unit actions; on failure, each unit alone. */
async function runBatch(
  step: Extract<Step, { batch: unknown }>,
  ctx: ApplyContext,
  t: Tracker,
): Promise<void> {
  const runnable = step.actions.filter((a) => !t.blocked(a));
  for (const a of step.actions.filter((x) => t.blocked(x))) {
    t.notRun(a);
  }
  if (runnable.length === 0) return;
  const verb = step.batch === 'respawn' ? 'restart' : step.batch;
  try {
    await systemctl(ctx, verb, runnable.map(unitOf));
    for (const a of runnable) t.record({ action: a, outcome: 'done', message: pastTense(a) });
  } catch {
    // One call for many units failed: find out which, one by one (only on failure, so the happy path stays batched).
    for (const a of runnable) {
      // A global failure earlier in this same batch (the holder) blocks the rest of it, as it would a later step.
      if (t.blocked(a)) {
        t.notRun(a);
        continue;
      }
      try {
        await systemctl(ctx, verb, [unitOf(a)]);
        t.record({ action: a, outcome: 'done', message: pastTense(a) });
      } catch (error) {
        t.fail(a, error);
      }
    }
  }
}

export async function applyPlan(actions: readonly Action[], ctx: ApplyContext): Promise<ApplyResult> {
  await refuseLinksOnTheWay(actions, ctx);
  const t = tracker(ctx);
  const { results } = t;
  // Renames of a run of file writes are made durable together, before anything that follows the run.
  const unsyncedDirs = new Set<string>();
  for (const step of steps(actions)) {
    if (!('single' in step && step.single.kind === 'write-file')) await syncDirs(unsyncedDirs);
    if ('single' in step) {
      const a = step.single;
      if (t.blocked(a)) {
        t.notRun(a);
        continue;
      }
      try {
        const extra = await runSingle(a, ctx, unsyncedDirs);
        t.record({ action: a, outcome: 'done', message: pastTense(a), ...extra });
      } catch (error) {
        if (error instanceof StorageError) return stopForDisk(error, ctx, unsyncedDirs);
        t.fail(a, error);
      }
      continue;
    }
    await runBatch(step, ctx, t);
  }
  await syncDirs(unsyncedDirs);
  await saveState(ctx);
  return { ok: results.every((r) => r.outcome === 'done'), results };
}

/** The reconciler state after the actions: a failure here loses only bookkeeping. */
async function saveState(ctx: ApplyContext): Promise<void> {
  try {
    await writeState(ctx.stateDir, ctx.state);
  } catch (error) {
    // A full disk says so itself, naming the file.
    if (error instanceof StorageError) throw error;
    // The actions above are done; only the bookkeeping is lost (the next run may back up one file too many).
    throw new UserError(
      `applied, but could not write the reconciler state in ${ctx.stateDir}: ${message(error)}`,
      1,
      { cause: error },
    );
  }
}
