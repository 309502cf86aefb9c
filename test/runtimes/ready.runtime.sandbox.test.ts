/**
 * Defect: a prompt sent right after a start was lost (opencode's first start installs a package with its TUI blank;
 * Codex takes keys read before its input box is up as one paste with their Enter, and never submits it). `fleet
 * send` now waits for each runtime's own ready signal (src/runtimes/<name>/ready.ts) and types nothing before it.
 * Four real runtimes, started together by one reconcile, each sent a prompt at once: each acknowledges it and the
 * model server receives exactly that text. Meanwhile `fleet ps` shows `idle` only with a ready signal behind it.
 */
import { expect, it } from 'vitest';
import { describeRuntimes, type RuntimeName } from './bed.js';

/** The text parts of the last user message of a request (Anthropic/chat `messages`, Responses `input`). */
function userTexts(body: unknown): string[] {
  const b = body as { messages?: unknown[]; input?: unknown[] };
  const items = (b.messages ?? b.input ?? []) as { role?: string }[];
  const last = [...items].reverse().find((m) => m.role === 'user');
  const out: string[] = [];
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (typeof v === 'object' && v !== null)
      for (const [k, x] of Object.entries(v)) {
        if (k === 'text' && typeof x === 'string') out.push(x);
        else walk(x);
      }
    else if (typeof v === 'string') out.push(v);
  };
  walk((last as { content?: unknown } | undefined)?.content);
  return out;
}

const AGENTS: { name: string; runtime: RuntimeName }[] = [
  { name: 'cc1', runtime: 'claude' },
  { name: 'cx1', runtime: 'codex' },
  { name: 'pi1', runtime: 'pi' },
  { name: 'o1', runtime: 'opencode' },
];

/**
 * The events that may stand behind `idle`: each runtime's own word that it is up (first four) or that a turn
 * ended, never a guess from silence.
 */
const IDLE_EVENTS = new Set([
  'SessionStart',
  'session_start',
  'tui.ready',
  'ready:open-file',
  'Stop',
  'agent_end',
  'agent-turn-complete',
  'session.status',
  'session.idle',
]);

describeRuntimes('send right after a start (real runtimes)', ['claude', 'codex', 'pi', 'opencode'], (bed) => {
  it('fleet send --verify right after reconcile: every runtime takes the prompt, the server gets exactly it', async () => {
    const b = bed();
    await b.setup(AGENTS);
    const r = await b.fleet('reconcile');
    expect(r.code, r.stderr).toBe(0);
    const startedAt = Date.now();
    const prompts = new Map(AGENTS.map((a) => [a.name, `ready-send-${a.name}: say hello`]));
    // Sent at once, together: none of them has had time to start. ps is read meanwhile.
    const sends = AGENTS.map((a) =>
      b.fleet('send', a.name, prompts.get(a.name) ?? '', '--verify', '--timeout', '300'),
    );
    const seen: string[] = [];
    const looking = (async () => {
      for (let i = 0; i < 6; i++) {
        const doc = JSON.parse((await b.fleet('ps', '--json')).stdout) as {
          agents: { name: string; state: { value: string; event: string | null } | null }[];
        };
        for (const row of doc.agents)
          if (row.state?.value === 'idle' && row.state.event !== null && !IDLE_EVENTS.has(row.state.event))
            seen.push(`${row.name}: idle from ${row.state.event}`);
      }
    })();
    const results = await Promise.all(sends);
    await looking;
    for (const [i, a] of AGENTS.entries()) {
      const res = results[i];
      const why = `${a.name}: ${res?.stdout}${res?.stderr}; heartbeat ${JSON.stringify(b.heartbeat(a.name))}`;
      expect(res?.code, why).toBe(0);
      expect(res?.stdout).toContain(`${a.name} took it`);
      const prompt = prompts.get(a.name) ?? '';
      const req = await b.server.waitFor((x) => x.text.includes(prompt) && x.atMs >= startedAt, 60_000);
      expect(userTexts(req.body), a.name).toContain(prompt);
      // One prompt: no request carried a part of it alone (a runtime's side turn that titles the session quotes it
      // whole, so it may show up twice).
      for (const x of b.server.requests.filter((y) => y.text.includes(`ready-send-${a.name}`)))
        expect(x.text, a.name).toContain(prompt);
    }
    expect(seen).toEqual([]);
  }, 600_000);
});
