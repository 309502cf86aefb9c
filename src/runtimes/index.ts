/**
 * The runtime adapters every fleet knows without a manifest entry, one row each; each runtime's knowledge is in
 * its folder (`<name>/adapter.ts`, and its readers beside it). A roster's `runtimes:` overrides any field of these
 * or adds runtimes of its own (src/manifest/normalize.ts). Adding a runtime: a folder and a row here.
 * Facts behind each value: DOMAIN.md section 9 and docs/runtimes.md. Pure.
 */
import { readyEnv } from './ready.js';
import type { HostContext, RuntimeSpec, StateSource } from '../model/desired.js';
import type { RuntimeAdapter, StateIntegration, TranscriptReader } from './adapter.js';
import { claude } from './claude/adapter.js';
import { codex } from './codex/adapter.js';
import { opencode } from './opencode/adapter.js';
import { pi } from './pi/adapter.js';
import { stub } from './stub/adapter.js';

export { plainRuntime } from './adapter.js';
export { STUB_RUNTIME } from './stub/adapter.js';

/** The table. */
const ADAPTERS: readonly RuntimeAdapter[] = [claude, codex, pi, opencode, stub];

export const BUILTIN_RUNTIME_NAMES: readonly string[] = ADAPTERS.map((a) => a.name).sort();

export function builtinRuntimes(ctx: HostContext): Record<string, RuntimeSpec> {
  const runtimes: Record<string, RuntimeSpec> = {};
  for (const a of ADAPTERS) runtimes[a.name] = a.spec(ctx);
  return runtimes;
}

/** The integration that delivers a state source; null for `none`. */
function integration(state: StateSource): StateIntegration | null {
  if (state === 'none') return null;
  for (const a of ADAPTERS) if (a.integration?.state === state) return a.integration;
  return null;
}

/**
 * The arguments that wire a runtime's own state signal to the fleet (its hooks, notify, extension), pointing at
 * files the reconciler installs in `toolsDir`. Nothing here is written into the operator's own runtime config:
 * every integration is passed on the command line.
 */
export function integrationArgs(spec: RuntimeSpec, toolsDir: string): string[] {
  return integration(spec.state)?.args(toolsDir) ?? [];
}

/**
 * Environment the integration needs (set by the launcher only where the operator has not set it), and what the
 * runtime's ready signal needs (src/runtimes/<name>/ready.ts).
 */
export function integrationEnv(spec: RuntimeSpec, toolsDir: string): Record<string, string> {
  return { ...(integration(spec.state)?.env(toolsDir) ?? {}), ...readyEnv(spec, toolsDir) };
}

/** The reader of the runtime's conversation transcript (`fleet tail`); null when it names none. */
export function lastMessagesReader(spec: RuntimeSpec): TranscriptReader | null {
  return integration(spec.state)?.lastMessages ?? null;
}

/** The runtime's arguments for an agent: integration, then the model, then the runtime's own `args`. */
export function runtimeArgs(spec: RuntimeSpec, toolsDir: string, modelHint: string | null): string[] {
  const model =
    modelHint === null || modelHint === ''
      ? []
      : spec.modelArgs.map((a) => a.replaceAll('{model}', modelHint));
  return [...integrationArgs(spec, toolsDir), ...model, ...spec.args];
}

/**
 * One line that `xargs` splits back into the same words (the launcher reads it so, never through a shell):
 * plain words bare, others in single quotes, and a word with a single quote backslash-escaped character by
 * character. Only a newline cannot be carried (the manifest refuses control characters anyway).
 */
export function quoteArgs(args: readonly string[]): string {
  return args
    .map((a) => {
      if (/^[A-Za-z0-9_@%+=:,./{}-]+$/.test(a)) return a;
      if (/[\n\r]/.test(a)) throw new Error(`argument ${JSON.stringify(a)} holds a newline`);
      if (!a.includes("'")) return `'${a}'`;
      return a.replace(/[^A-Za-z0-9_@%+=:,./{}-]/g, (c) => `\\${c}`);
    })
    .join(' ');
}
