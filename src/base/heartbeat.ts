/**
 * The heartbeat format: `<home>/fleet/run/<agent>.hb`, written by agent-state.sh (and the stub agent), read by
 * observation (health, STATE), the verbs (did the runtime take a prompt, where is its transcript) and watch mode
 * (is a waiting agent's news worth a cycle). One parser, so the three cannot read the same file differently.
 *
 * The rule: the text is split into lines at `\n`; each line is trimmed of surrounding whitespace (spaces, tabs,
 * and so a CRLF's `\r`); a line without `=` at position 1 or later is ignored; the key is what comes before the
 * first `=`, the value what comes after it, both trimmed; a later line of the same key wins. `ts` is the write
 * time in unix seconds, digits with an optional fraction; anything else (`ts=x`, `ts=-1`, `ts=1e9`) is unknown.
 * Pure.
 */

/** A heartbeat file's name ends so: `<agent>.hb`. */
export const HEARTBEAT_SUFFIX = '.hb';

/** `coder0` → `coder0.hb`. */
export function heartbeatFileName(agent: string): string {
  return `${agent}${HEARTBEAT_SUFFIX}`;
}

/**
 * The agent whose heartbeat a file name in the run directory is, else null. A name starting with `.` is a
 * writer's temp file (`.<agent>.hb.<pid>`, src/base/temp-files.ts), never a heartbeat.
 */
export function heartbeatAgent(fileName: string): string | null {
  if (!fileName.endsWith(HEARTBEAT_SUFFIX) || fileName.startsWith('.')) return null;
  const agent = fileName.slice(0, -HEARTBEAT_SUFFIX.length);
  return agent === '' ? null : agent;
}

/** Every `key=value` line of heartbeat text, by the rule above. */
export function heartbeatKeys(text: string): Record<string, string> {
  const keys: Record<string, string> = {};
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    const eq = line.indexOf('=');
    if (eq <= 0) continue;
    const key = line.slice(0, eq).trim();
    if (key !== '') keys[key] = line.slice(eq + 1).trim();
  }
  return keys;
}

const TS = /^\d+(\.\d+)?$/;

/** The write time in unix seconds; null when `ts` is absent or not a plain number. */
export function heartbeatTs(keys: Readonly<Record<string, string>>): number | null {
  const text = keys.ts;
  return text !== undefined && TS.test(text) ? Number(text) : null;
}

/** What a runtime's heartbeat said at one moment (state, since when, which event). */
export interface HeartbeatState {
  state: string;
  /** Unix seconds the state began; null when absent or malformed. */
  since: number | null;
  event: string;
}

/**
 * The state fields of heartbeat text; null when it carries no state (the liveness ticker alone, or a writer
 * caught between truncating and writing).
 */
export function heartbeatState(text: string): HeartbeatState | null {
  const kv = heartbeatKeys(text);
  const state = kv.state;
  if (state === undefined || state === '') return null;
  const since = kv.since;
  return {
    state,
    since: since !== undefined && TS.test(since) ? Number(since) : null,
    event: kv.event ?? '',
  };
}
