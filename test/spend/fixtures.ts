/**
 * Record lines shaped as DOMAIN.md section 10 says each runtime writes them, with the model server's figures for
 * request n (input 1000n+234, output 100n+56, cache read 1000n+789, cache write 1000n+12; the OpenAI shapes
 * as prompt = input + cached, completion including reasoning 100n+34).
 */
export function served(n: number) {
  return {
    input: 1000 * n + 234,
    output: 100 * n + 56,
    cache_read: 1000 * n + 789,
    cache_write: 1000 * n + 12,
    reasoning: 100 * n + 34,
  };
}

/** Claude Code: one line per content block, each with the same usage, message.id and requestId. */
export function claudeLines(n: number, blocks = 1, at = '2026-12-07T10:00:00.000Z'): string[] {
  const s = served(n);
  return Array.from({ length: blocks }, (_, b) =>
    JSON.stringify({
      parentUuid: null,
      type: 'assistant',
      uuid: `u-${n}-${b}`,
      timestamp: at,
      requestId: `req_${n}`,
      message: {
        id: `msg_${n}`,
        type: 'message',
        role: 'assistant',
        model: 'claude-sonnet-4-5',
        content: [
          b === 0 ? { type: 'text', text: 'hi' } : { type: 'tool_use', id: `t${n}`, name: 'Bash', input: {} },
        ],
        usage: {
          input_tokens: s.input,
          output_tokens: s.output,
          cache_read_input_tokens: s.cache_read,
          cache_creation_input_tokens: s.cache_write,
        },
      },
    }),
  );
}

export function codexLines(n: number, at = '2026-12-07T10:00:00.000Z'): string[] {
  const s = served(n);
  return [
    JSON.stringify({ timestamp: at, type: 'turn_context', payload: { cwd: '/w', model: 'gpt-test' } }),
    JSON.stringify({
      timestamp: at,
      type: 'token_usage_record',
      payload: {
        response_id: `resp_${n}`,
        usage: {
          input_tokens: s.input + s.cache_read,
          cached_input_tokens: s.cache_read,
          cache_write_input_tokens: 0,
          output_tokens: s.output,
          reasoning_output_tokens: s.reasoning,
          total_tokens: s.input + s.cache_read + s.output,
        },
      },
    }),
    JSON.stringify({
      timestamp: at,
      type: 'event_msg',
      payload: { type: 'token_count', info: { last_token_usage: { input_tokens: s.input + s.cache_read } } },
    }),
  ];
}

export function piLine(n: number, at = '2026-12-07T10:00:00.000Z'): string {
  const s = served(n);
  return JSON.stringify({
    type: 'message',
    id: `e${n}`,
    parentId: null,
    timestamp: at,
    message: {
      role: 'assistant',
      content: [],
      provider: 'local',
      model: 'm',
      responseId: `msg_${n}`,
      usage: {
        input: s.input,
        output: s.output,
        cacheRead: s.cache_read,
        cacheWrite: s.cache_write,
        totalTokens: s.input + s.output + s.cache_read + s.cache_write,
        cost: { input: 0, output: 0, cacheRead: 0, cacheWrite: 0, total: 0 },
      },
    },
  });
}

/** opencode's message.updated event data: openai-compatible converted (input − cached, output − reasoning). */
export function opencodeEvent(n: number, final = true): Record<string, unknown> {
  const s = served(n);
  return {
    sessionID: 'ses_1',
    info: {
      id: `msg_${n}`,
      sessionID: 'ses_1',
      role: 'assistant',
      modelID: 'm',
      providerID: 'local',
      time: { created: 1_796_000_000_000, ...(final ? { completed: 1_796_000_001_000 } : {}) },
      tokens: final
        ? {
            input: s.input,
            output: s.output - s.reasoning,
            reasoning: s.reasoning,
            cache: { read: s.cache_read, write: s.cache_write },
            total: s.input + s.output + s.cache_read + s.cache_write,
          }
        : { input: 0, output: 0, reasoning: 0, cache: { read: 0, write: 0 } },
      cost: 0,
    },
  };
}
