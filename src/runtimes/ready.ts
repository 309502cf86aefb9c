/**
 * Whether a runtime can take typed input now, by its own word (docs/runtimes.md, "Ready for input"). A TUI that
 * is still starting drops keys, or takes a pasted prompt and its Enter as one paste and never submits it, so the
 * verbs that type (`fleet send`, `fleet reset`) wait for this and otherwise type nothing. Each runtime's signal is
 * in its own `src/runtimes/<name>/ready.ts`; the judgment over the heartbeat's state is here, once. Pure.
 */
import type { RuntimeSpec, StateSource } from '../model/desired.js';
import type { StateStatus } from '../model/agent-state.js';
import type { ReadySignal } from './adapter.js';
import { claudeReady } from './claude/ready.js';
import { codexReady } from './codex/ready.js';
import { opencodeReady } from './opencode/ready.js';
import { piReady } from './pi/ready.js';

export type Readiness = { ready: true } | { ready: false; why: string };

/** The ready signal of each state integration; runtimes with `state: none` give none. */
export function readySignal(state: StateSource): ReadySignal | null {
  switch (state) {
    case 'claude-hooks':
      return claudeReady;
    case 'codex-notify':
      return codexReady;
    case 'pi-extension':
      return piReady;
    case 'opencode-events':
      return opencodeReady;
    case 'none':
      return null;
    default: {
      const never: never = state;
      return never;
    }
  }
}

/** The environment a runtime's ready signal needs from the launcher (none for most). */
export function readyEnv(spec: RuntimeSpec, toolsDir: string): Record<string, string> {
  return readySignal(spec.state)?.env?.(toolsDir) ?? {};
}

/**
 * Can `agent` take typed input now? Its heartbeat says so once the runtime reported anything after its launch
 * (idle, busy, waiting: a busy runtime queues the prompt, a waiting one is the verbs' own refusal). `starting`
 * means the signal has not come yet; `unknown` means the heartbeat cannot be trusted for this process; `exited`
 * means nothing reads the keys. A runtime that reports no state (null) is typed into on a best effort, as before.
 */
export function readiness(
  agent: string,
  runtime: RuntimeSpec | undefined,
  state: StateStatus | null,
): Readiness {
  if (state === null) return { ready: true };
  const signal = readySignal(runtime?.state ?? 'none');
  switch (state.state) {
    case 'idle':
    case 'busy':
    case 'waiting':
      return { ready: true };
    case 'starting': {
      const waited = state.forSeconds === null ? '' : ` for ${state.forSeconds}s`;
      const what = signal === null ? 'its first report' : signal.signal;
      return {
        ready: false,
        why: `${agent} is starting${waited}: it cannot take input until ${what}${signal?.slow ? ` (${signal.slow})` : ''}`,
      };
    }
    case 'unknown':
      return {
        ready: false,
        why: `${agent}'s state is unknown (its heartbeat is not fresh, or is a previous run's): no sign it can take input`,
      };
    case 'exited':
      return { ready: false, why: `${agent}'s runtime has exited: nothing reads its input` };
    default: {
      const never: never = state.state;
      return never;
    }
  }
}
