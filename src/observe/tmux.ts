/**
 * tmux, observed with one `list-panes -a` per socket (per socket, never per agent). A socket with no server
 * is a fact ("nothing runs there"), not an error; a missing tmux binary is a typed condition for the caller.
 */
import { CommandError } from '../errors.js';
import type { Runner } from '../exec.js';
import type { ObservedPane, ObservedSocket } from '../model/observed.js';
import { describeSocket, socketArgs } from '../base/names.js';
import { OWNER_FORMAT, parseOwners, SEP } from '../base/session-markers.js';
import { processTree, readMosaicEnviron, type ProcessTable } from './proc.js';

const TIMEOUT_MS = 10_000;
const FIELDS = [
  'session_name',
  'window_index',
  'pane_index',
  'pane_pid',
  'pane_current_command',
  'pane_dead',
  'pane_dead_status',
  'pane_dead_signal',
  'window_activity',
  'session_activity',
  'session_created',
  'pane_current_path',
  'pane_start_command',
] as const;
export const PANE_FORMAT = FIELDS.map((f) => `#{${f}}`).join(SEP);

/** What tmux says when no server listens on the socket (absent socket file, or a stale one). */
const NO_SERVER =
  /no server running|error connecting to .*\((No such file or directory|Connection refused)\)/;

export type TmuxSocketResult =
  | { kind: 'ok'; socket: ObservedSocket }
  | { kind: 'no-tmux'; error: string }
  | { kind: 'error'; socket: ObservedSocket; error: string };

function intOrNull(text: string | undefined): number | null {
  if (text === undefined || !/^-?\d+$/.test(text)) return null;
  return Number(text);
}

export function parsePanes(stdout: string): ObservedPane[] {
  const panes: ObservedPane[] = [];
  for (const line of stdout.split('\n')) {
    if (line === '') continue;
    const f = line.split(SEP);
    if (f.length < FIELDS.length) continue;
    const [
      session,
      window,
      pane,
      pid,
      current,
      dead,
      deadStatus,
      deadSignal,
      winAct,
      sessAct,
      created,
      path,
    ] = f;
    // The start command is last, so a separator inside it cannot shift the other fields.
    const start = f.slice(FIELDS.length - 1).join(SEP);
    const panePid = intOrNull(pid);
    const isDead = dead === '1';
    panes.push({
      session: session ?? '',
      window: intOrNull(window) ?? 0,
      pane: intOrNull(pane) ?? 0,
      panePid,
      currentCommand: current ?? '',
      dead: isDead,
      deadStatus: isDead ? intOrNull(deadStatus) : null,
      deadSignal: isDead ? intOrNull(deadSignal) : null,
      // Window activity moves with the pane's output; session activity only with client input.
      activity: intOrNull(winAct) ?? intOrNull(sessAct),
      created: intOrNull(created),
      path: path ?? '',
      // Kept as tmux shows it (arguments with spaces or metacharacters in double quotes, `\"` `\$` escaped).
      startCommand: start,
      processes: [],
    });
  }
  panes.sort((a, b) =>
    a.session < b.session ? -1 : a.session > b.session ? 1 : a.window - b.window || a.pane - b.pane,
  );
  return panes;
}

/** Fill each pane's process tree from one read of the process table. */
export function attachProcesses(panes: ObservedPane[], table: ProcessTable): void {
  for (const pane of panes) {
    // A dead pane's pid is the exited program's: whatever holds that pid now is not ours. Unless tmux has no exit
    // status for it: then only the terminal closed (`nohup prog` points every descriptor away from it) and the
    // program tmux started may run on. It does when that pid still carries the fleet's environment (a program
    // that just exited, a zombie not yet reaped, has none): a running agent, not a dead one.
    const detached = pane.dead && pane.deadStatus === null && pane.deadSignal === null;
    if (pane.panePid === null || (pane.dead && !detached)) continue;
    const processes = processTree(table, pane.panePid);
    const environ = processes.length > 0 ? readMosaicEnviron(table.root, pane.panePid) : null;
    if (detached && (environ === null || Object.keys(environ).length === 0)) continue;
    pane.dead = false;
    pane.processes = processes;
    if (processes.length > 0) pane.environ = environ;
  }
}

export async function observeSocket(socketName: string, runner: Runner): Promise<TmuxSocketResult> {
  const empty: ObservedSocket = { socketName, serverRunning: false, sessions: [], panes: [] };
  let out;
  try {
    const owners = [';', 'list-sessions', '-F', OWNER_FORMAT];
    out = await runner.run(
      ['tmux', ...socketArgs(socketName), 'list-panes', '-a', '-F', PANE_FORMAT, ...owners],
      {
        kind: 'read',
        reject: false,
        timeoutMs: TIMEOUT_MS,
        // Inside a tmux pane $TMUX names the enclosing server; without -L tmux would ask that server instead of
        // the default socket. The socket rule must be the only thing that picks the server.
        env: { TMUX: undefined },
      },
    );
  } catch (error) {
    if (error instanceof CommandError && error.exitCode === undefined && /not found/i.test(error.message)) {
      return { kind: 'no-tmux', error: 'tmux not found on PATH' };
    }
    const why = error instanceof Error ? error.message.split('\n')[0] : String(error);
    return { kind: 'error', socket: empty, error: `tmux failed on ${describeSocket(socketName)}: ${why}` };
  }
  if (out.exitCode !== 0) {
    const stderr = out.stderr.trim();
    if (NO_SERVER.test(stderr)) return { kind: 'ok', socket: empty };
    return {
      kind: 'error',
      socket: empty,
      error: `tmux failed on ${describeSocket(socketName)}: ${stderr.split('\n')[0] ?? `exit ${out.exitCode}`}`,
    };
  }
  const panes = parsePanes(out.stdout);
  const sessions = [...new Set(panes.map((p) => p.session))].sort();
  const owners = parseOwners(out.stdout);
  return { kind: 'ok', socket: { socketName, serverRunning: true, sessions, panes, owners } };
}
