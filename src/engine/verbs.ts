/**
 * The pure decisions behind the operator verbs (`fleet restart`, `reset`, `send`, `tail`, `watch`, and who ran a
 * journal entry): whether an agent's own state lets a verb act now, what a restart does, whether a runtime
 * acknowledged a prompt, what a transcript says. No I/O and no clock: callers pass what they observed.
 */
import type { UnitAction } from '../model/plan.js';
import type { StateStatus } from '../model/agent-state.js';
import type { AgentStatus } from '../plan/health.js';
import type { HeartbeatState } from '../base/heartbeat.js';
import type { TranscriptMessage } from '../runtimes/adapter.js';
import { RECONCILE_SERVICE, WATCH_SERVICE } from '../base/names.js';

/** States in which a runtime is in the middle of something an operator verb would cut short. */
const BUSY_STATES: ReadonlySet<string> = new Set(['busy', 'waiting', 'starting']);

function forText(state: StateStatus): string {
  return state.forSeconds === null ? '' : ` (${state.forSeconds}s)`;
}

/**
 * Why a disruptive verb (restart, reset) must not act on this agent now, as the one line the operator sees; null
 * when it may. Busy, waiting and starting are respected unless `now`; an agent whose runtime reports nothing
 * (null state) or whose report is unknown or exited has nothing in flight that we can see.
 */
export function stateRefusal(
  agent: string,
  state: StateStatus | null,
  pastTense: string,
  now: boolean,
): string | null {
  if (now || state === null || !BUSY_STATES.has(state.state)) return null;
  return `${agent} is ${state.state}${forText(state)}: not ${pastTense}; use --now, or retry when idle`;
}

/** Why `fleet send` must not type into this agent: it is waiting for a permission answer (unless --force). */
export function sendRefusal(agent: string, state: StateStatus | null, force: boolean): string | null {
  if (force || state === null || state.state !== 'waiting') return null;
  return (
    `${agent} is waiting for a permission answer${forText(state)}: nothing sent ` +
    '(the text would answer its dialog); answer it first, or use --force'
  );
}

function isRunning(s: AgentStatus): boolean {
  return ['active', 'activating', 'reloading'].includes(s.unitActiveState);
}

/**
 * Why `fleet restart` cannot act on this agent at all (whatever its state); null when it can. The unit must be
 * known to systemd (installed by `fleet reconcile`), the agent must be this host's, and the manifest must want it.
 */
export function restartImpossible(s: AgentStatus): string | null {
  if (!s.local) return `${s.agent} runs on ${s.host ?? 'another host'}: not restarted from here`;
  if (!s.wanted) return `${s.agent} is disabled in the manifests (enabled: false): not started`;
  if (s.unitActiveState === '' && s.unitFileState === null)
    return `${s.agent} has no unit installed yet (${s.unit}): run \`fleet reconcile\` first`;
  return null;
}

/**
 * The action `fleet restart` applies for one agent: a restart of its unit when the unit runs (disruptive when a
 * live session would end), a start when it does not. The unit's ExecStop asks the runtime to exit its own way;
 * the start script resumes its conversation.
 */
export function restartAction(s: AgentStatus, command: string): UnitAction {
  if (!isRunning(s))
    return { kind: 'start', unit: s.unit, agent: s.agent, reason: `not running; asked by \`${command}\`` };
  const live = s.sessionExists === true && !s.paneDead;
  return {
    kind: 'restart',
    unit: s.unit,
    agent: s.agent,
    reason: `asked by \`${command}\``,
    ...(live ? { disruptive: true } : {}),
  };
}

/** Events that end a turn: a prompt taken and answered between two looks still counts as acknowledged. */
const TURN_END_EVENTS: ReadonlySet<string> = new Set(['Stop', 'agent_end', 'agent-turn-complete']);

export type AckVerdict =
  { acknowledged: true; detail: string } | { acknowledged: false; reason: string; settled: boolean };

/**
 * Did the runtime itself take the prompt sent at `sentAtSec` (unix seconds, rounded down)? Yes when its heartbeat
 * moved to busy at or after the send (UserPromptSubmit, agent_start), or when a turn started and already ended
 * since (idle after Stop/agent_end, a state change after the send). Otherwise the reason, in the operator's terms.
 * `settled` is true when waiting longer cannot change the verdict on its own (the agent waits for a person).
 */
export function judgeAck(
  agent: string,
  before: HeartbeatState | null,
  now: HeartbeatState | null,
  sentAtSec: number,
): AckVerdict {
  if (now === null) return { acknowledged: false, reason: `${agent} reports no state`, settled: false };
  const after = now.since !== null && now.since >= sentAtSec;
  if (now.state === 'busy' && after)
    return { acknowledged: true, detail: `${agent} took it: busy since the send (${now.event})` };
  const moved = before === null || before.state !== now.state || before.since !== now.since;
  if (now.state === 'idle' && after && moved && TURN_END_EVENTS.has(now.event))
    return { acknowledged: true, detail: `${agent} took it and already answered (${now.event})` };
  switch (now.state) {
    case 'waiting':
      return {
        acknowledged: false,
        reason: `${agent} is waiting for a permission answer (${now.event || 'no event'})`,
        settled: true,
      };
    case 'busy':
      return {
        acknowledged: false,
        reason: `${agent} was busy with something else before the send (${now.event || 'no event'}); the text is queued or sitting in its input box`,
        settled: false,
      };
    case 'idle':
      return {
        acknowledged: false,
        reason: `${agent} is still idle: the runtime did not take the prompt; the text is probably sitting in its input box`,
        settled: false,
      };
    default:
      return {
        acknowledged: false,
        reason: `${agent} is ${now.state}, not busy with the prompt`,
        settled: false,
      };
  }
}

export function renderMessages(messages: readonly TranscriptMessage[]): string {
  return messages.map((m) => `${m.role === 'user' ? '> ' : ''}${m.text}\n`).join('\n');
}

/**
 * The lines of a newer capture of a screen that were not in the previous one: the longest tail of `prev` that
 * `next` repeats locates the join. Best effort (a full-screen program that redraws in place has no "new lines").
 */
export function appendedLines(prev: readonly string[], next: readonly string[]): string[] {
  const p = trimEnd(prev);
  const n = trimEnd(next);
  for (let k = Math.min(p.length, n.length); k > 0; k--) {
    const tail = p.slice(p.length - k);
    for (let at = n.length - k; at >= 0; at--) {
      if (tail.every((l, i) => n[at + i] === l)) return n.slice(at + k);
    }
  }
  return n;
}

function trimEnd(lines: readonly string[]): string[] {
  let end = lines.length;
  while (end > 0 && (lines[end - 1] ?? '').trim() === '') end--;
  return lines.slice(0, end);
}

/** Who ran a journaled command: a person, the reconcile timer, watch mode, or some other unit. */
export type RanBy =
  | { kind: 'person'; user: string }
  | { kind: 'timer'; unit: string }
  | { kind: 'watch'; unit: string | null }
  | { kind: 'unit'; unit: string };

/** The systemd unit a process runs in, from its /proc/self/cgroup text (the last `*.service` path element). */
export function unitFromCgroup(cgroup: string): string | null {
  const services = [...cgroup.matchAll(/([^/\s]+\.service)(?=\/|$|\s)/gm)].map((m) => m[1] ?? '');
  return services.at(-1) ?? null;
}

/**
 * Who is running this command. systemd sets INVOCATION_ID for every unit it runs: a unit run is the timer's when
 * it is the reconcile service, watch mode's when the command watches; anything else run by systemd is named by
 * its unit; without INVOCATION_ID a person ran it.
 */
export function ranBy(
  env: Readonly<Record<string, string | undefined>>,
  command: string,
  cgroup: string,
  user: string,
): RanBy {
  const unit = env.INVOCATION_ID ? unitFromCgroup(cgroup) : null;
  if (command.includes('--watch') || unit === WATCH_SERVICE) return { kind: 'watch', unit };
  if (env.INVOCATION_ID) {
    if (unit === RECONCILE_SERVICE) return { kind: 'timer', unit };
    return { kind: 'unit', unit: unit ?? 'a systemd unit' };
  }
  return { kind: 'person', user: env.SUDO_USER || user };
}

export function ranByText(by: RanBy | undefined): string {
  if (by === undefined) return 'unknown';
  switch (by.kind) {
    case 'person':
      return by.user;
    case 'timer':
      return `timer (${by.unit})`;
    case 'watch':
      return by.unit === null ? 'watch mode' : `watch mode (${by.unit})`;
    case 'unit':
      return by.unit;
    default: {
      const never: never = by;
      return never;
    }
  }
}
