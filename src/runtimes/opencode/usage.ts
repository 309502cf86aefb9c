/**
 * opencode's storage (SQLite `$XDG_DATA_HOME/opencode/opencode.db`, DOMAIN.md section 10): a message row is
 * rewritten in place (tokens 0 → final), so it is read from the `event` table's `message.updated` events, whose
 * data holds the message (`info`). opencode counts reasoning outside output; ours includes it. Its `input` is
 * already without the cache. Successive events of one message repeat growing figures: the caller counts an id's
 * growth only. Pure.
 */
import { count, isRecord, NONE, str, timeOf, usage, type UsageReader } from '../../spend/usage.js';

/** The message an event's data carries (`{info: message}`, or the message itself). */
function messageOf(value: Record<string, unknown>): Record<string, unknown> | null {
  if (isRecord(value.info)) return value.info;
  if (isRecord(value.properties) && isRecord(value.properties.info)) return value.properties.info;
  return value;
}

export const opencodeUsage: UsageReader = (value) => {
  if (!isRecord(value)) return NONE;
  const m = messageOf(value);
  if (m === null || m.role !== 'assistant' || !isRecord(m.tokens)) return NONE;
  const t = m.tokens;
  const id = str(m.id);
  if (id === null) return { kind: 'invalid', why: 'assistant message without an id' };
  const cache = isRecord(t.cache) ? t.cache : {};
  const output = count(t.output);
  const reasoning = count(t.reasoning);
  if (output === null || reasoning === null) return { kind: 'invalid', why: 'bad output / reasoning count' };
  const model = str(m.modelID) ?? 'unknown';
  const time = isRecord(m.time) ? (timeOf(m.time.completed) ?? timeOf(m.time.created)) : null;
  return usage(id, model, time, {
    input: t.input,
    cache_read: cache.read,
    cache_write: cache.write,
    output: output + reasoning,
    reasoning,
  });
};

/** The session an event's message belongs to (to give it to the agent working in that session's directory). */
export function opencodeSessionOf(value: unknown): string | null {
  if (!isRecord(value)) return null;
  const m = messageOf(value);
  return str(value.sessionID) ?? (m === null ? null : str(m.sessionID));
}
