/**
 * Runtimes every fleet knows without a manifest entry. Pure.
 */
import { posix } from 'node:path';
import type { HostContext, RuntimeSpec } from '../model/desired.js';

/** The real AI runtimes; each is its own command. */
const REAL_RUNTIMES = ['claude', 'codex', 'pi', 'opencode'] as const;

/** The test/demo agent: a script that only writes heartbeats, so a fleet can run without AI runtimes. */
export const STUB_RUNTIME = 'stub';

export const BUILTIN_RUNTIME_NAMES: readonly string[] = [...REAL_RUNTIMES, STUB_RUNTIME].sort();

export function builtinRuntimes(ctx: HostContext): Record<string, RuntimeSpec> {
  const runtimes: Record<string, RuntimeSpec> = {};
  for (const name of REAL_RUNTIMES) {
    runtimes[name] = { name, command: name, resetCommand: null, heartbeat: true };
  }
  runtimes[STUB_RUNTIME] = {
    name: STUB_RUNTIME,
    command: posix.join(ctx.mosaicHome, 'tools', 'fleet', 'stub-agent.sh'),
    resetCommand: null,
    heartbeat: true,
  };
  return runtimes;
}
