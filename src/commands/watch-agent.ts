/**
 * `fleet watch AGENT`: look at an agent's pane live, read-only. A viewer session grouped with the agent's
 * (`new-session -d -t =AGENT`: the same windows, its own client) is attached read-only, and removed when the
 * viewer leaves (detach, SIGINT, SIGTERM, SIGHUP). Nothing is typed into the agent's session.
 *
 * The size: in tmux 3.3 a window follows the latest client that shows it, and a client flagged `ignore-size` still
 * counts when it is the only one, so attaching a viewer would resize the agent's window (and make its TUI redraw).
 * The shared windows get `window-size manual` while a viewer is attached (their size stays what it was); the
 * previous setting is kept in the window option `@fleet-watch-window-size` and put back when the last viewer of
 * the agent leaves.
 */
import { randomHex } from '../crypto-lazy.js';
import { acquireLock } from '../apply/lock.js';
import type { GlobalOptions } from '../options.js';
import { UserError } from '../errors.js';
import type { Runner } from '../exec.js';
import { paneUnavailable, tmux, verbContext } from '../engine/agent-control.js';

const SAVED = '@fleet-watch-window-size';
/** Saved marker for "no window-size of its own" (inherited from the global option). */
const UNSET = '-';

export function viewerPrefix(agent: string): string {
  return `fleet-watch-${agent}-`;
}

async function windows(runner: Runner, socket: string, agent: string): Promise<string[]> {
  const r = await tmux(runner, socket, ['list-windows', '-t', `=${agent}`, '-F', '#{window_id}'], {
    reject: false,
  });
  return r.exitCode === 0 ? r.stdout.split('\n').filter((l) => l.startsWith('@')) : [];
}

async function localOption(
  runner: Runner,
  socket: string,
  window: string,
  option: string,
): Promise<string | null> {
  const r = await tmux(runner, socket, ['show-options', '-w', '-q', '-v', '-t', window, option], {
    reject: false,
  });
  const v = r.stdout.trim();
  return r.exitCode === 0 && v !== '' ? v : null;
}

/** Pin the agent's windows to their size (remembering each window's own setting once, for the last viewer). */
async function pinSize(runner: Runner, socket: string, agent: string): Promise<void> {
  for (const w of await windows(runner, socket, agent)) {
    if ((await localOption(runner, socket, w, SAVED)) === null) {
      const own = await localOption(runner, socket, w, 'window-size');
      await tmux(runner, socket, ['set-option', '-w', '-t', w, SAVED, own ?? UNSET], { mutate: true });
    }
    await tmux(runner, socket, ['set-option', '-w', '-t', w, 'window-size', 'manual'], { mutate: true });
  }
}

async function otherViewers(runner: Runner, socket: string, agent: string, mine: string): Promise<boolean> {
  const r = await tmux(runner, socket, ['list-sessions', '-F', '#{session_name}'], { reject: false });
  return r.stdout.split('\n').some((s) => s.startsWith(viewerPrefix(agent)) && s !== mine);
}

async function unpinSize(runner: Runner, socket: string, agent: string): Promise<void> {
  for (const w of await windows(runner, socket, agent)) {
    const saved = await localOption(runner, socket, w, SAVED);
    if (saved === null) continue;
    const restore =
      saved === UNSET
        ? ['set-option', '-w', '-u', '-t', w, 'window-size']
        : ['set-option', '-w', '-t', w, 'window-size', saved];
    await tmux(runner, socket, restore, { mutate: true, reject: false });
    await tmux(runner, socket, ['set-option', '-w', '-u', '-t', w, SAVED], { mutate: true, reject: false });
  }
}

/** Create the viewer session for an agent (detached, grouped, windows pinned); returns its name. */
export async function openViewer(runner: Runner, socket: string, agent: string): Promise<string> {
  const viewer = `${viewerPrefix(agent)}${process.pid}-${randomHex(3)}`;
  await tmux(runner, socket, ['new-session', '-d', '-t', `=${agent}`, '-s', viewer], { mutate: true });
  try {
    await pinSize(runner, socket, agent);
  } catch (error) {
    await closeViewer(runner, socket, agent, viewer);
    throw error;
  }
  return viewer;
}

/** Remove the viewer session; the last viewer of the agent puts its windows' size setting back. */
export async function closeViewer(
  runner: Runner,
  socket: string,
  agent: string,
  viewer: string,
): Promise<void> {
  await tmux(runner, socket, ['kill-session', '-t', `=${viewer}`], { mutate: true, reject: false });
  if (!(await otherViewers(runner, socket, agent, viewer))) await unpinSize(runner, socket, agent);
}

export async function watchAgentCommand(agentName: string, o: GlobalOptions): Promise<number> {
  if (!process.stdin.isTTY || !process.stdout.isTTY)
    throw new UserError(
      'fleet watch needs a terminal (stdin and stdout); use `fleet tail --follow` in a pipe',
    );
  const ctx = await verbContext(o, [agentName]);
  const picked = ctx.agents[0];
  if (picked === undefined) throw new UserError(`no agent named "${agentName}"`);
  const why = paneUnavailable(picked.status);
  if (why !== null) throw new UserError(why);
  const socket = picked.agent.socketName;
  const agent = picked.agent.name;
  // The viewer session is made and ended under the fleet lock, like every session of the fleet: a watcher's tmux
  // event client connects only under it, and tmux crashes when a session appears or goes while such a client
  // is identifying itself (src/observe/tmux-events.ts).
  const lock = await acquireLock(ctx.paths.stateDir, `watch ${agent}`);
  let viewer: string;
  try {
    viewer = await openViewer(ctx.runner, socket, agent);
  } finally {
    await lock.release();
  }
  let closing: Promise<void> | null = null;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      // Leaving matters more than the lock: without it (a long cycle holds it) the viewer still goes.
      const held = await acquireLock(ctx.paths.stateDir, `watch ${agent}`).catch(() => null);
      try {
        await closeViewer(ctx.runner, socket, agent, viewer);
      } finally {
        await held?.release();
      }
    })());
  // A signal ends the viewer session; its client then exits, and the attach below returns.
  const onSignal = (): void => void close();
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  for (const s of signals) process.on(s, onSignal);
  try {
    await tmux(ctx.runner, socket, ['attach-session', '-r', '-f', 'ignore-size', '-t', `=${viewer}`], {
      interactive: true,
      reject: false,
    });
  } finally {
    await close();
    for (const s of signals) process.off(s, onSignal);
  }
  return 0;
}
