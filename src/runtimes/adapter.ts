/**
 * What a runtime adapter is: the row the fleet knows for a runtime without a manifest entry, how its own state
 * signal is wired (hooks, notify, an extension, a plugin), and what its files let the verbs read. Each runtime is a
 * folder holding its adapter (`<name>/adapter.ts`) and its readers; src/runtimes/index.ts is the table. Pure.
 */
import type { HostContext, RuntimeSpec, StateSource } from '../model/desired.js';

/** `--model <hint>`: what most runtimes take. */
export const MODEL_ARGS: readonly string[] = ['--model', '{model}'];

/** One message of a conversation transcript. */
export interface TranscriptMessage {
  role: 'user' | 'assistant';
  text: string;
}

/** A runtime that keeps a transcript the fleet can read (`fleet tail`): where it is, and what it says. */
export interface TranscriptReader {
  /** The transcript's path from the keys of the agent's heartbeat; null while it names none. */
  locate(heartbeat: Readonly<Record<string, string>>): string | null;
  /** The user and assistant text messages of the transcript's text, oldest first. */
  messages(text: string): TranscriptMessage[];
}

/**
 * How the fleet hears a runtime's own state. Keyed by the state source, not the runtime's name: a roster's own
 * runtime may say `state: claude-hooks` and gets Claude's wiring.
 */
export interface StateIntegration {
  state: StateSource;
  /** Arguments that wire the signal to files the reconciler installs in `toolsDir`, never to the operator's config. */
  args(toolsDir: string): string[];
  /** Environment the integration needs (set by the launcher only where the operator has not set it). */
  env(toolsDir: string): Record<string, string>;
  /** The last messages of a conversation, when the runtime names its transcript; null when it has none. */
  lastMessages: TranscriptReader | null;
}

export interface RuntimeAdapter {
  name: string;
  /** The built-in row: a roster's `runtimes:` entry overrides any field (src/manifest/normalize.ts). */
  spec(ctx: HostContext): RuntimeSpec;
  /** null: the runtime reports nothing of its own. */
  integration: StateIntegration | null;
}

/** A runtime the fleet knows nothing about: its name is its program, it takes `--model`, and reports nothing. */
export function plainRuntime(name: string): RuntimeSpec {
  return {
    name,
    command: name,
    programs: [],
    modelArgs: [...MODEL_ARGS],
    args: [],
    resumeArgs: [],
    resume: false,
    exitKeys: [],
    resetCommand: null,
    heartbeat: false,
    state: 'none',
  };
}

/** The fields that differ between the real AI runtimes. */
export type RealRuntimeRow = Pick<
  RuntimeSpec,
  'programs' | 'modelArgs' | 'resumeArgs' | 'exitKeys' | 'resetCommand' | 'state'
>;

/**
 * A real AI runtime, started by its own name from the user manager's PATH. heartbeat: its integration (hooks,
 * extension, notify) and the launcher's liveness ticker write it; it resumes its previous conversation.
 */
export function realRuntime(name: string, row: RealRuntimeRow): RuntimeSpec {
  return {
    ...plainRuntime(name),
    ...row,
    heartbeat: true,
    resume: true,
  };
}

/** A runtime's own ready signal: what reports it, and what it may need to set it up. */
export interface ReadySignal {
  /** The event that says so, as the operator reads it: "its SessionStart hook". */
  signal: string;
  /** Why it can take a while, if it can (opencode's first start installs a package). */
  slow?: string;
  /** Environment the launcher exports (where the operator has not) so the runtime can give the signal. */
  env?: (toolsDir: string) => Record<string, string>;
}
