/**
 * Codex: notify and hooks given on the command line (`-c`), never in the operator's CODEX_HOME, with the trust
 * record Codex wants before it runs a hook.
 */
import { posix } from 'node:path';
import { sha256Hex } from '../../crypto-lazy.js';
import { realRuntime, type RuntimeAdapter } from '../adapter.js';

export const codex: RuntimeAdapter = {
  name: 'codex',
  spec: () =>
    realRuntime('codex', {
      // The npm bin is a node script (`codex.js`) whose child is the native `codex`.
      programs: ['codex', 'codex.js'],
      modelArgs: ['-m', '{model}'],
      resumeArgs: ['resume', '{session}'],
      exitKeys: ['/quit', 'Enter'],
      resetCommand: '/new',
      state: 'codex-notify',
    }),
  integration: {
    state: 'codex-notify',
    args: (toolsDir) => [
      '-c',
      // TOML: a JSON string is a valid TOML basic string.
      `notify=[${JSON.stringify(posix.join(toolsDir, 'agent-state.sh'))},"codex-notify"]`,
      // The TUI otherwise copies its 400 MB binary into CODEX_HOME and leaves a daemon outside the pane.
      '-c',
      'features.daemon_auto_start=false',
      ...codexHookArgs(toolsDir),
    ],
    env: () => ({}),
    lastMessages: null,
  },
};

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
