/**
 * Claude Code's transcript (`$HOME/.claude/projects/<cwd, / → ->/<session-id>.jsonl`, DOMAIN.md section 10):
 * `type: "assistant"` lines carry `message.usage` in Anthropic's meaning, which is already ours (input excludes
 * the cache, output includes thinking). A reply with several content blocks is written as one line per block,
 * each with the same usage and `message.id`: the caller counts an id once. Pure.
 */
import { isRecord, NONE, str, timeOf, usage, type UsageReader } from '../../spend/usage.js';

export const claudeUsage: UsageReader = (value) => {
  if (!isRecord(value) || value.type !== 'assistant') return NONE;
  const message = value.message;
  if (!isRecord(message) || !isRecord(message.usage)) return NONE;
  const u = message.usage;
  const id = str(message.id) ?? str(value.requestId) ?? str(value.uuid);
  if (id === null) return { kind: 'invalid', why: 'assistant usage without message.id' };
  const details = isRecord(u.output_tokens_details) ? u.output_tokens_details : {};
  return usage(id, str(message.model) ?? 'unknown', timeOf(value.timestamp), {
    input: u.input_tokens,
    cache_read: u.cache_read_input_tokens,
    cache_write: u.cache_creation_input_tokens,
    output: u.output_tokens,
    reasoning: details.thinking_tokens,
  });
};
