/**
 * Graceful stop and resume, with the real runtimes: stopping an agent (its unit's ExecStop,
 * tools/fleet/stop-agent-session.sh) first types the adapter's exit keys so the runtime quits its own way, and
 * only ends the session after a grace period; starting it again resumes the conversation its heartbeat names
 * (tools/fleet/start-agent-session.sh), unless that conversation's transcript is gone.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import type { RecordedRequest } from '../fixtures/model-server.js';
import { waitFor } from '../helpers/fleet.js';
import { describeRuntimes, type Bed } from './bed.js';

// A runtime that ignores its exit keys: `sleep` echoes nothing back and quits for nothing typed.
const DEAF_RUNTIME = [
  'runtimes:',
  '  deaf:',
  '    command: sleep',
  "    args: ['600']",
  '    model_args: []',
  "    exit_keys: ['nothing-here', 'Enter']",
  // The classic permission dialog (Claude Code 2.1 starts in "auto" mode), for the dialog case below.
  '  claude:',
  "    args: ['--permission-mode', 'default']",
].join('\n');

const AGENTS = [
  { name: 'cc0', runtime: 'claude' as const },
  { name: 'cx0', runtime: 'codex' as const },
  { name: 'pi0', runtime: 'pi' as const },
];

async function systemctl(b: Bed, ...args: string[]): Promise<number> {
  const t0 = Date.now();
  await b.sb.systemctl(...args);
  return Date.now() - t0;
}

async function sessionExists(b: Bed, agent: string): Promise<boolean> {
  const r = await b.sb.run(['tmux', '-L', b.socket, 'has-session', '-t', `=${agent}`], { reject: false });
  return r.exitCode === 0;
}

/** One real turn: type the prompt, wait for the server to get it and the runtime to report idle again. */
async function turn(b: Bed, agent: string, prompt: string): Promise<RecordedRequest> {
  const startedAt = Date.now();
  await b.type(agent, prompt);
  const req = await b.server.waitFor((r) => r.text.includes(prompt) && r.atMs >= startedAt, 30_000);
  await waitFor(
    `${agent} idle after its turn`,
    () => {
      const hb = b.heartbeat(agent);
      return hb.state === 'idle' && Number(hb.since) * 1000 >= startedAt - 1000 ? hb : undefined;
    },
    60_000,
  );
  return req;
}

/** After a start: the runtime is up (a new pid in the heartbeat) and idle, as `fleet ps` reads it. */
async function restarted(b: Bed, agent: string, oldPid: string | undefined): Promise<Record<string, string>> {
  await waitFor(
    `${agent} started again`,
    () => {
      const hb = b.heartbeat(agent);
      return hb.pid !== undefined && hb.pid !== oldPid ? hb : undefined;
    },
    30_000,
  );
  // Idle from each runtime's own ready signal (Codex: its thread open; src/runtimes/<name>/ready.ts).
  await b.waitState(agent, 'idle', 90_000);
  return b.heartbeat(agent);
}

/** The argv of the agent's runtime process (the pane's process, which run-agent.sh exec'd). */
function argvOf(pid: string | undefined): string[] {
  if (pid === undefined) return [];
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  } catch {
    return [];
  }
}

describeRuntimes('graceful stop and resume (claude, codex, pi)', ['claude', 'codex', 'pi'], (bed) => {
  it('reconciles the agents; each is idle from its own signal', async () => {
    const b = bed();
    await b.setup(AGENTS, DEAF_RUNTIME);
    // A roster runtime with no heartbeat, added by hand to the same roster (bed.setup knows the real ones).
    const roster = join(b.sb.paths.mosaicHome, 'fleet', 'roster.yaml');
    const deafDir = b.workDir('deaf0');
    mkdirSync(deafDir, { recursive: true });
    writeFileSync(
      roster,
      `${readFileSync(roster, 'utf8')}  - name: deaf0\n    runtime: deaf\n    working_directory: ${deafDir}\n`,
    );
    writeFileSync(join(b.sb.paths.agentsDir, 'deaf0.env'), 'MOSAIC_STOP_GRACE_SECONDS=2\n', { mode: 0o600 });
    const r = await b.fleet('reconcile');
    expect(r.code, r.stderr).toBe(0);
    for (const a of AGENTS) await b.waitState(a.name, 'idle', 90_000);
    const env = readFileSync(join(b.sb.paths.agentsDir, 'cc0.env'), 'utf8');
    expect(env).toContain('MOSAIC_AGENT_EXIT_KEYS="/exit Enter"');
  }, 150_000);

  it('claude: a restart exits it its own way and resumes the same conversation', async () => {
    const b = bed();
    await turn(b, 'cc0', 'lifecycle-claude-first: remember the word pelican');
    const before = b.heartbeat('cc0');
    expect(before.session).toMatch(/^[0-9a-f-]{36}$/);
    expect(before.transcript && existsSync(before.transcript)).toBe(true);

    const ms = await systemctl(b, 'restart', 'mosaic-agent@cc0.service');
    // It quit on /exit: far sooner than the 15 s grace after which the session would have been killed.
    expect(ms).toBeLessThan(10_000);
    const after = await restarted(b, 'cc0', before.pid);
    expect(after.session).toBe(before.session);
    const argv = argvOf(after.pid);
    expect(argv.slice(1, 3)).toEqual(['--resume', before.session]);
    expect((await b.ps('cc0')).state?.session).toBe(before.session);

    // The first turn after the restart carries the conversation from before it.
    const req = await turn(b, 'cc0', 'lifecycle-claude-second: which word?');
    const messages = JSON.stringify((req.body as { messages?: unknown }).messages);
    expect(messages).toContain('lifecycle-claude-first');
  }, 120_000);

  it('claude: a stop fires its SessionEnd hook (state=exited), and the pane is gone', async () => {
    const b = bed();
    await systemctl(b, 'stop', 'mosaic-agent@cc0.service');
    const hb = b.heartbeat('cc0');
    expect([hb.state, hb.event]).toEqual(['exited', 'SessionEnd']);
    expect(await sessionExists(b, 'cc0')).toBe(false);
  }, 60_000);

  it('a conversation whose transcript was deleted is not resumed: the start is fresh and succeeds', async () => {
    const b = bed();
    const before = b.heartbeat('cc0');
    expect(before.transcript && existsSync(before.transcript)).toBe(true);
    rmSync(before.transcript);
    await systemctl(b, 'start', 'mosaic-agent@cc0.service');
    const after = await restarted(b, 'cc0', before.pid);
    expect(after.session).toMatch(/^[0-9a-f-]{36}$/);
    expect(after.session).not.toBe(before.session);
    expect(argvOf(after.pid)).not.toContain('--resume');
    const row = await b.ps('cc0');
    expect(row.flags).toEqual([]);
  }, 120_000);

  it('claude: a stop while a permission dialog is open refuses the tool call (never approves it) and exits', async () => {
    const b = bed();
    await b.waitState('cc0', 'idle', 60_000);
    b.server.on({
      match: 'lifecycle-tool-probe',
      toolCall: { name: 'Bash', input: { command: 'touch probe-file' } },
    });
    await b.type('cc0', 'lifecycle-tool-probe: make a file');
    await b.waitState('cc0', 'waiting', 30_000);
    // The exit keys end in Enter, which would answer "Yes" to the dialog: the stop sends Escape first.
    const ms = await systemctl(b, 'stop', 'mosaic-agent@cc0.service');
    expect(ms).toBeLessThan(10_000);
    expect(existsSync(join(b.workDir('cc0'), 'probe-file'))).toBe(false);
    const hb = b.heartbeat('cc0');
    expect([hb.state, hb.event]).toEqual(['exited', 'SessionEnd']);
  }, 60_000);

  it('codex: a restart exits it its own way and resumes the same conversation (codex resume ID)', async () => {
    const b = bed();
    await turn(b, 'cx0', 'lifecycle-codex-first: remember the word heron');
    const before = b.heartbeat('cx0');
    expect(before.session).toBeTruthy();

    const ms = await systemctl(b, 'restart', 'mosaic-agent@cx0.service');
    expect(ms).toBeLessThan(10_000);
    const after = await restarted(b, 'cx0', before.pid);
    // The pane's process is node's codex.js; its argv carries the subcommand and the id, before the options.
    expect(argvOf(after.pid).slice(2, 4)).toEqual(['resume', before.session]);
    // Codex says nothing until its first turn: the launcher recorded the resumed conversation itself, so a
    // second restart before any turn still resumes it.
    expect([after.session, after.transcript]).toEqual([before.session, before.transcript]);
    expect((await b.ps('cx0')).state?.session).toBe(before.session);

    const req = await turn(b, 'cx0', 'lifecycle-codex-second: which word?');
    expect(JSON.stringify((req.body as { input?: unknown }).input)).toContain('lifecycle-codex-first');
    expect(b.heartbeat('cx0').session).toBe(before.session);
  }, 120_000);

  it('pi: a stop quits it its own way (its extension reports session_shutdown)', async () => {
    const b = bed();
    await turn(b, 'pi0', 'lifecycle-pi-first: hello');
    // Half-typed input, which would keep Ctrl+D from quitting: the stop clears the line first (C-u).
    await b.keys('pi0', '-l', 'half typed words');
    const ms = await systemctl(b, 'stop', 'mosaic-agent@pi0.service');
    expect(ms).toBeLessThan(10_000);
    const hb = await waitFor(
      'pi0 reported exited',
      () => {
        const x = b.heartbeat('pi0');
        return x.state === 'exited' ? x : undefined;
      },
      3_000,
    );
    expect([hb.state, hb.event]).toEqual(['exited', 'session_shutdown']);
    // The ticker saw the process exit after that, and kept the runtime's own, better record.
    await new Promise((r) => setTimeout(r, 2500));
    expect(b.heartbeat('pi0').event).toBe('session_shutdown');
  }, 60_000);

  it('pi: its session file deleted while it runs (created again without its header): the next start is fresh, not a dead pane', async () => {
    const b = bed();
    await systemctl(b, 'start', 'mosaic-agent@pi0.service');
    await b.waitState('pi0', 'idle', 90_000);
    await turn(b, 'pi0', 'lifecycle-pi-kept: hello');
    const before = b.heartbeat('pi0');
    expect(before.transcript && existsSync(before.transcript)).toBe(true);
    rmSync(before.transcript);
    // pi appends by path: the next turn creates the file again, holding only its own lines.
    await turn(b, 'pi0', 'lifecycle-pi-after-rm: hello');
    expect(readFileSync(before.transcript, 'utf8')).not.toContain('"type":"session"');
    // `pi --session ID` finds no session in it and exits 1: the start script starts pi fresh instead.
    await systemctl(b, 'restart', 'mosaic-agent@pi0.service');
    const after = await restarted(b, 'pi0', before.pid);
    expect(after.session).not.toBe(before.session);
    // pi sets its process title (argv reads `pi`): the pane's start command shows what was asked of it.
    const pane = (await b.ps('pi0')).session as { pane_dead: boolean; start_command?: string };
    expect(pane.pane_dead).toBe(false);
    expect(pane.start_command).toContain(' pi ');
    expect(pane.start_command).not.toContain('--session');
  }, 120_000);

  it('a runtime that ignores its exit keys is still ended after the grace period', async () => {
    const b = bed();
    const ls = await b.sb.tmux(
      b.socket,
      'list-panes',
      '-t',
      '=deaf0:',
      '-F',
      '#{pane_dead} #{pane_current_command}',
    );
    expect(ls.stdout.trim()).toBe('0 sleep');
    const ms = await systemctl(b, 'stop', 'mosaic-agent@deaf0.service');
    // MOSAIC_STOP_GRACE_SECONDS=2 in its env file: the keys (~1 s), the grace (2 s), then the kill.
    expect(ms).toBeGreaterThanOrEqual(2000);
    expect(ms).toBeLessThan(8000);
    expect(await sessionExists(b, 'deaf0')).toBe(false);
  }, 60_000);
});
