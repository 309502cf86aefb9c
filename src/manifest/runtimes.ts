/**
 * The runtime adapters every fleet knows without a manifest entry: plain data, in this one place. A roster's
 * `runtimes:` overrides any field of these or adds runtimes of its own (src/manifest/normalize.ts).
 * Facts behind each value: DOMAIN.md section 9 and docs/runtimes.md. Pure.
 */
import { sha256Hex } from '../crypto-lazy.js';
import { posix } from 'node:path';
import type { HostContext, RuntimeSpec } from '../model/desired.js';
import { readyEnv } from '../runtimes/ready.js';

/** The test/demo agent: a script that only writes heartbeats, so a fleet can run without AI runtimes. */
export const STUB_RUNTIME = 'stub';

const MODEL_ARGS = ['--model', '{model}'];

/** The real AI runtimes. Each is started by its own name from the user manager's PATH. */
const REAL: Record<string, Omit<RuntimeSpec, 'name' | 'command' | 'heartbeat' | 'args' | 'resume'>> = {
  claude: {
    // The npm bin is a link to the native binary `bin/claude.exe`.
    programs: ['claude', 'claude.exe'],
    modelArgs: MODEL_ARGS,
    resumeArgs: ['--resume', '{session}'],
    exitKeys: ['/exit', 'Enter'],
    resetCommand: '/clear',
    state: 'claude-hooks',
  },
  codex: {
    // The npm bin is a node script (`codex.js`) whose child is the native `codex`.
    programs: ['codex', 'codex.js'],
    modelArgs: ['-m', '{model}'],
    resumeArgs: ['resume', '{session}'],
    exitKeys: ['/quit', 'Enter'],
    resetCommand: '/new',
    state: 'codex-notify',
  },
  pi: {
    // A node script that sets its process title: argv reads just `pi`.
    programs: ['pi'],
    modelArgs: MODEL_ARGS,
    resumeArgs: ['--session', '{session}'],
    exitKeys: ['C-d'],
    resetCommand: '/new',
    state: 'pi-extension',
  },
  opencode: {
    programs: ['opencode', 'opencode.exe'],
    modelArgs: ['--model', '{model}'],
    resumeArgs: ['--session', '{session}'],
    exitKeys: ['/exit', 'Enter'],
    resetCommand: '/new',
    state: 'opencode-events',
  },
};

export const BUILTIN_RUNTIME_NAMES: readonly string[] = [...Object.keys(REAL), STUB_RUNTIME].sort();

/** A runtime the fleet knows nothing about: its name is its program, it takes `--model`, and reports nothing. */
export function plainRuntime(name: string): RuntimeSpec {
  return {
    name,
    command: name,
    programs: [],
    modelArgs: MODEL_ARGS,
    args: [],
    resumeArgs: [],
    resume: false,
    exitKeys: [],
    resetCommand: null,
    heartbeat: false,
    state: 'none',
  };
}

export function builtinRuntimes(ctx: HostContext): Record<string, RuntimeSpec> {
  const runtimes: Record<string, RuntimeSpec> = {};
  for (const [name, spec] of Object.entries(REAL)) {
    // heartbeat: the integration (hooks, extension, notify) and the launcher's liveness ticker write it.
    runtimes[name] = {
      ...plainRuntime(name),
      ...spec,
      heartbeat: true,
      resume: true,
    };
  }
  runtimes[STUB_RUNTIME] = {
    ...plainRuntime(STUB_RUNTIME),
    command: posix.join(ctx.mosaicHome, 'tools', 'fleet', 'stub-agent.sh'),
    heartbeat: true,
  };
  return runtimes;
}

/**
 * The arguments that wire a runtime's own state signal to the fleet (its hooks, notify, extension), pointing at
 * files the reconciler installs in `toolsDir`. Nothing here is written into the operator's own runtime config:
 * every integration is passed on the command line.
 */
export function integrationArgs(spec: RuntimeSpec, toolsDir: string): string[] {
  switch (spec.state) {
    case 'claude-hooks':
      return ['--settings', posix.join(toolsDir, 'claude-settings.json')];
    case 'codex-notify':
      return [
        '-c',
        // TOML: a JSON string is a valid TOML basic string.
        `notify=[${JSON.stringify(posix.join(toolsDir, 'agent-state.sh'))},"codex-notify"]`,
        // The TUI otherwise copies its 400 MB binary into CODEX_HOME and leaves a daemon outside the pane.
        '-c',
        'features.daemon_auto_start=false',
        ...codexHookArgs(toolsDir),
      ];
    case 'pi-extension':
      return ['-e', posix.join(toolsDir, 'pi-extension.ts')];
    case 'opencode-events':
    case 'none':
      return [];
    default: {
      const never: never = spec.state;
      return never;
    }
  }
}

/**
 * Environment the integration needs (set by the launcher only where the operator has not set it): opencode takes
 * the fleet's plugin through OPENCODE_CONFIG_CONTENT, a config layer of its own above the operator's files; and
 * what the runtime's ready signal needs (src/runtimes/<name>/ready.ts).
 */
export function integrationEnv(spec: RuntimeSpec, toolsDir: string): Record<string, string> {
  const ready = readyEnv(spec, toolsDir);
  if (spec.state !== 'opencode-events') return ready;
  const plugin = `file://${posix.join(toolsDir, 'opencode-plugin.js')}`;
  return { OPENCODE_CONFIG_CONTENT: JSON.stringify({ plugin: [plugin] }), ...ready };
}

/** Codex hook events the fleet listens to (each maps to a state in agent-state.sh's `codex-hook`). */
const CODEX_HOOK_EVENTS = [
  'SessionStart',
  'UserPromptSubmit',
  'PreToolUse',
  'PermissionRequest',
  'PostToolUse',
  'Stop',
];

function snake(event: string): string {
  return event.replace(/([a-z])([A-Z])/g, '$1_$2').toLowerCase();
}

/** JSON with object keys sorted at every level, as Codex canonicalises a hook before hashing it. */
function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value !== null && typeof value === 'object') {
    const rec = value as Record<string, unknown>;
    return Object.fromEntries(
      Object.keys(rec)
        .sort()
        .map((k) => [k, canonical(rec[k])]),
    );
  }
  return value;
}

/**
 * Codex hooks given on the command line (`-c hooks.EVENT=[...]`), never in the operator's CODEX_HOME. Codex runs
 * a hook only once it is trusted: the trust record (`hooks.state`) is the hash of the hook's canonical JSON,
 * keyed by where it was defined (`/<session-flags>/config.toml` for `-c`), so it is passed along with them.
 */
function codexHookArgs(toolsDir: string): string[] {
  const script = posix.join(toolsDir, 'agent-state.sh');
  const quoted = /^[A-Za-z0-9_@%+=:,./-]+$/.test(script) ? script : `'${script}'`;
  const args: string[] = [];
  const trust: string[] = [];
  for (const event of CODEX_HOOK_EVENTS) {
    const command = `${quoted} codex-hook ${event}`;
    args.push('-c', `hooks.${event}=[{hooks=[{type="command",command=${JSON.stringify(command)}}]}]`);
    const identity = {
      event_name: snake(event),
      hooks: [{ type: 'command', command, timeout: 600, async: false }],
    };
    const hash = sha256Hex(JSON.stringify(canonical(identity)));
    trust.push(
      `${JSON.stringify(`/<session-flags>/config.toml:${snake(event)}:0:0`)}={trusted_hash="sha256:${hash}"}`,
    );
  }
  args.push('-c', `hooks.state={${trust.join(',')}}`);
  return args;
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
