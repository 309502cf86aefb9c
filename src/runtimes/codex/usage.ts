/**
 * Codex's session rollout (`$CODEX_HOME/sessions/YYYY/MM/DD/rollout-<time>-<thread-id>.jsonl`, DOMAIN.md section
 * 10): `type: "token_usage_record"` lines, one per response, in OpenAI's meaning (input includes cached tokens,
 * output includes reasoning), converted here to ours. The model is named by the turn's `turn_context` line before
 * it. The `event_msg` `token_count` lines repeat the same figures and are not counted. Pure.
 */
import { count, isRecord, NONE, str, timeOf, usage, type UsageReader } from '../../spend/usage.js';

export const codexUsage: UsageReader = (value, memo) => {
  if (!isRecord(value) || !isRecord(value.payload)) return NONE;
  const p = value.payload;
  if (value.type === 'turn_context' || value.type === 'session_meta') {
    const model = str(p.model);
    if (model !== null) memo.model = model;
    return NONE;
  }
  if (value.type !== 'token_usage_record') return NONE;
  if (!isRecord(p.usage)) return { kind: 'invalid', why: 'token_usage_record without usage' };
  const u = p.usage;
  const id = str(p.response_id);
  if (id === null) return { kind: 'invalid', why: 'token_usage_record without response_id' };
  const input = count(u.input_tokens);
  const cached = count(u.cached_input_tokens);
  if (input === null || cached === null || cached > input) {
    return { kind: 'invalid', why: 'bad input_tokens / cached_input_tokens' };
  }
  return usage(id, str(p.model) ?? memo.model ?? 'unknown', timeOf(value.timestamp), {
    input: input - cached,
    cache_read: cached,
    cache_write: u.cache_write_input_tokens,
    output: u.output_tokens,
    reasoning: u.reasoning_output_tokens,
  });
};
