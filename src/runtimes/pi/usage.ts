/**
 * pi's session file (`$PI_CODING_AGENT_DIR/sessions/--<cwd, / → ->--/<time>_<uuid>.jsonl`, DOMAIN.md section 10):
 * `type: "message"` lines whose `message.role` is `assistant` carry `message.usage` already in our meaning (pi
 * converts the OpenAI shapes itself: input without the cache, output with reasoning). Pure.
 */
import { isRecord, NONE, str, timeOf, usage, type UsageReader } from '../../spend/usage.js';

export const piUsage: UsageReader = (value) => {
  if (!isRecord(value) || value.type !== 'message') return NONE;
  const m = value.message;
  if (!isRecord(m) || m.role !== 'assistant' || !isRecord(m.usage)) return NONE;
  const u = m.usage;
  const id = str(m.responseId) ?? str(value.responseId) ?? str(value.id);
  if (id === null) return { kind: 'invalid', why: 'assistant message without an id' };
  const model = str(m.model) ?? 'unknown';
  return usage(id, model, timeOf(value.timestamp) ?? timeOf(m.timestamp), {
    input: u.input,
    cache_read: u.cacheRead,
    cache_write: u.cacheWrite,
    output: u.output,
    reasoning: 0,
  });
};
