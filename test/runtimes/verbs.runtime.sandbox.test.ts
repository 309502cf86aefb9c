/**
 * The operator verbs with the real runtimes (claude, codex, pi) against our model server: `fleet send --verify`
 * is acknowledged by each runtime itself and the server receives exactly the text; a message with newlines and
 * shell metacharacters arrives as one prompt, byte for byte; an agent waiting for a permission answer is not
 * typed into; `fleet reset` clears a claude conversation; `fleet tail` shows claude's last reply; `fleet restart`
 * restarts an idle agent and refuses a busy one.
 */
import { expect, it } from 'vitest';
import { waitFor } from '../helpers/fleet.js';
import { describeRuntimes, type RuntimeName } from './bed.js';

/** The text parts of the last user message of a request (Anthropic `messages`, Responses `input`). */
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

const DEFAULT_PERMISSIONS = "runtimes:\n  claude:\n    args: ['--permission-mode', 'default']";

const AGENTS: { name: string; runtime: RuntimeName }[] = [
  { name: 'cc0', runtime: 'claude' },
  { name: 'cx0', runtime: 'codex' },
  { name: 'pi0', runtime: 'pi' },
];

describeRuntimes('operator verbs with real runtimes', ['claude', 'codex', 'pi'], (bed) => {
  it('starts a claude, a codex and a pi agent', async () => {
    const b = bed();
    await b.setup(AGENTS, DEFAULT_PERMISSIONS);
    const r = await b.fleet('reconcile');
    expect(r.code, r.stderr).toBe(0);
    for (const a of AGENTS) await b.waitState(a.name, 'idle', 90_000);
  }, 240_000);

  it('send --verify: each runtime acknowledges the prompt and the server receives exactly that text', async () => {
    const b = bed();
    for (const a of AGENTS) {
      const prompt = `verbs-send-${a.name}: say hello`;
      const startedAt = Date.now();
      const r = await b.fleet('send', a.name, prompt, '--verify', '--wait');
      expect(r.code, `${a.name}: ${r.stdout}${r.stderr}`).toBe(0);
      expect(r.stdout).toContain(`${a.name} took it`);
      const req = await b.server.waitFor((x) => x.text.includes(prompt) && x.atMs >= startedAt, 30_000);
      // Exactly that text, as one part of the user's message (Claude Code adds its own reminders beside it).
      expect(userTexts(req.body), a.name).toContain(prompt);
      await b.waitState(a.name, 'idle', 60_000);
    }
  }, 240_000);

  it('a message with newlines and shell metacharacters arrives as one prompt, byte for byte', async () => {
    const b = bed();
    const text = [
      'verbs-multi: first line',
      `  $(echo not-run); 'single' "double" | & > < * ? \\ \`tick\` $HOME ~`,
      'last line',
    ].join('\n');
    const startedAt = Date.now();
    const r = await b.fleet('send', 'cc0', text, '--verify');
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const req = await b.server.waitFor((x) => x.text.includes('verbs-multi') && x.atMs >= startedAt, 30_000);
    expect(userTexts(req.body)).toContain(text);
    // One prompt: no request carried a part of it alone.
    expect(
      b.server.requests.filter((x) => x.atMs >= startedAt && x.text.includes('verbs-multi')),
    ).toHaveLength(1);
    await b.waitState('cc0', 'idle', 60_000);
  }, 120_000);

  it('tail shows the last reply of a claude agent', async () => {
    const b = bed();
    b.server.on({ match: 'verbs-tail', text: 'the heron reply 42' });
    const r = await b.fleet('send', 'cc0', 'verbs-tail: answer me', '--wait');
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const t = await waitFor(
      'tail shows the reply',
      async () => {
        const x = await b.fleet('tail', 'cc0', '-n', '2');
        return x.code === 0 && x.stdout.includes('the heron reply 42') ? x : undefined;
      },
      20_000,
    );
    expect(t.stdout).toContain('> verbs-tail: answer me');
  }, 120_000);

  it('an agent waiting for a permission answer is not typed into (exit 1, the reason)', async () => {
    const b = bed();
    b.server.on({ match: 'verbs-tool', toolCall: { name: 'Bash', input: { command: 'touch verbs-file' } } });
    const r = await b.fleet('send', 'cc0', 'verbs-tool: make a file', '--verify');
    expect(r.code, r.stdout + r.stderr).toBe(0);
    await b.waitState('cc0', 'waiting', 30_000);
    const refused = await b.fleet('send', 'cc0', 'verbs-never-typed');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^fleet: cc0 is waiting for a permission answer.*nothing sent/);
    expect(refused.mutating).toEqual([]);
    // The dialog's screen animates; what matters is that the text never reached it.
    await new Promise((res) => setTimeout(res, 1000));
    expect(await b.capture('cc0')).not.toContain('verbs-never-typed');
    const restart = await b.fleet('restart', 'cc0');
    expect(restart.code).toBe(1);
    expect(restart.stderr).toMatch(
      /^fleet: cc0 is waiting \(\d+s\): not restarted; use --now, or retry when idle/,
    );
    await b.keys('cc0', 'Escape');
    await b.waitState('cc0', 'idle', 30_000);
  }, 120_000);

  it('reset clears a claude conversation: the next request carries no earlier message', async () => {
    const b = bed();
    const r = await b.fleet('reset', 'cc0');
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toBe('typed /clear into cc0\n');
    await new Promise((res) => setTimeout(res, 2000));
    await b.waitState('cc0', 'idle', 30_000);
    const startedAt = Date.now();
    const s = await b.fleet('send', 'cc0', 'verbs-after-reset: fresh?', '--verify');
    expect(s.code, s.stdout + s.stderr).toBe(0);
    const req = await b.server.waitFor(
      (x) => x.text.includes('verbs-after-reset') && x.atMs >= startedAt,
      30_000,
    );
    const body = JSON.stringify(req.body);
    expect(body).not.toContain('verbs-send-cc0');
    expect(body).not.toContain('verbs-multi');
    expect(body).not.toContain('verbs-tail');
    await b.waitState('cc0', 'idle', 60_000);
  }, 120_000);

  it('restart: an idle agent is restarted and resumes its conversation; history names it', async () => {
    const b = bed();
    const pid = (await b.ps('pi0')).session.pane_pid;
    const r = await b.fleet('restart', 'pi0');
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toBe('restarted mosaic-agent@pi0.service\n');
    await waitFor(
      'pi0 restarted',
      async () => {
        const x = await b.ps('pi0');
        return x.session.pane_pid !== null && x.session.pane_pid !== pid ? x : undefined;
      },
      60_000,
    );
    await b.waitState('pi0', 'idle', 60_000);
    const startedAt = Date.now();
    const s = await b.fleet('send', 'pi0', 'verbs-after-restart: which greeting?', '--verify');
    expect(s.code, s.stdout + s.stderr).toBe(0);
    const req = await b.server.waitFor(
      (x) => x.text.includes('verbs-after-restart') && x.atMs >= startedAt,
      30_000,
    );
    expect(JSON.stringify(req.body)).toContain('verbs-send-pi0');
    const h = await b.fleet('history', '-n', '1');
    expect(h.stdout).toMatch(/fleet send pi0|fleet restart pi0/);
  }, 180_000);
});
