/**
 * What every executor works with (the runner, the state being updated, where the no-link rule starts) and what
 * it reports, plus the state's record of the sockets each agent's sessions live on.
 */
import type { Runner } from '../exec.js';
import type { ReconcilerState } from '../model/observed.js';
import type { Action, BackoffPolicy } from '../model/plan.js';
import { parseEnvFile } from '../base/env-file.js';
import { homeOfStateDir } from '../base/safe-path.js';
import type { ActionOutcome } from './journal.js';

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
   * Where the no-link rule starts for the paths the actions name (src/base/safe-path.ts): default the Mosaic
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

export function rootsOf(ctx: ApplyContext): readonly string[] {
  return ctx.roots ?? [homeOfStateDir(ctx.stateDir)];
}

/** The socket an env file tells its agent to use; null when it names none. */
export function envSocket(content: string): string | null {
  return parseEnvFile(content).entries.get('MOSAIC_TMUX_SOCKET') ?? null;
}

/** Remember that `agent`'s sessions live on `socket` (the only servers where the reconciler may end them). */
export function recordSocket(ctx: ApplyContext, agent: string, socket: string): void {
  const all = (ctx.state.sessionSockets ??= {});
  const used = all[agent] ?? [];
  if (!used.includes(socket)) all[agent] = [...used, socket].sort();
}

export function forgetSockets(ctx: ApplyContext, agent: string, socket?: string): void {
  const all = ctx.state.sessionSockets;
  if (all?.[agent] === undefined) return;
  const left = socket === undefined ? [] : all[agent].filter((s) => s !== socket);
  if (left.length > 0) all[agent] = left;
  else delete all[agent];
  if (Object.keys(all).length === 0) delete ctx.state.sessionSockets;
}
