/**
 * The operator verbs end to end on the real sandbox (systemd user manager + tmux), with a scripted runtime whose
 * reported state the test sets (a file it reads each second) and which echoes what is typed into it:
 * `fleet restart` (state respected, --now, unknown names, journaled, who ran it), `send`, `reset`, `tail`, `watch`
 * (read-only, no resize, no viewer left), `history` newest first, and a closed stdout. Real runtimes:
 * test/runtimes/verbs.runtime.sandbox.test.ts.
 */
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { FLEET_BIN, runFleet, type CliResult } from '../helpers/cli.js';
import { uniqueSocket, waitFor } from '../helpers/fleet.js';
import { describeSandbox } from '../sandbox.js';

/** A runtime that reports the state written in $MOSAIC_HOME/ctl-<name> and echoes each line typed into it. */
const FAKE = `#!/usr/bin/env bash
hb="$MOSAIC_HOME/fleet/run/$MOSAIC_AGENT_NAME.hb"
ctl="$MOSAIC_HOME/ctl-$MOSAIC_AGENT_NAME"
mkdir -p "$MOSAIC_HOME/fleet/run"
state=idle; since=$(date +%s); event=start
write() { printf 'ts=%s\\nstate=%s\\nsince=%s\\nevent=%s\\npid=%s\\n' "$(date +%s)" "$state" "$since" "$event" "$$" >"$hb.tmp" && mv "$hb.tmp" "$hb"; }
set_state() { [[ "$1" != "$state" ]] && since=$(date +%s); state=$1; event=$2; write; }
echo "fake $MOSAIC_AGENT_NAME ready"
while true; do
  want=$(cat "$ctl" 2>/dev/null || echo idle)
  [[ "$want" != "$state" ]] && set_state "$want" ctl
  write
  if IFS= read -r -t 1 line; then
    echo "got: $line"
    if [[ "$want" == idle ]]; then set_state busy prompt; sleep 1; set_state idle done; fi
  fi
done
`;

interface Row {
  name: string;
  state: { value: string } | null;
  session: { pane_pid: number | null };
}

describeSandbox('operator verbs (sandbox, scripted runtime)', (sandbox) => {
  const socket = uniqueSocket('fleet-verbs');
  const fleet = (...args: string[]): Promise<CliResult> =>
    runFleet(sandbox().env, args, { logDir: sandbox().root });
  const tmux = (...args: string[]) => sandbox().tmux(socket, ...args);
  const ctl = (agent: string, state: string) =>
    writeFileSync(join(sandbox().paths.mosaicHome, `ctl-${agent}`), `${state}\n`);
  const row = async (agent: string): Promise<Row> => {
    const r = await fleet('ps', '--json', agent);
    expect(r.code, r.stderr).toBe(0);
    return (JSON.parse(r.stdout) as { agents: Row[] }).agents[0];
  };
  const waitState = async (agent: string, state: string) => {
    let last: Row | undefined;
    await waitFor(
      `${agent} ${state}`,
      async () => {
        last = await row(agent);
        return last.state?.value === state ? true : undefined;
      },
      20_000,
      () => `last row: ${JSON.stringify(last)}\nheartbeat: ${readHb(agent)}`,
    );
  };
  const readHb = (agent: string) => {
    try {
      return readFileSync(join(sandbox().paths.runDir, `${agent}.hb`), 'utf8');
    } catch {
      return '(none)';
    }
  };
  const screen = async (agent: string) => (await tmux('capture-pane', '-p', '-J', '-t', `=${agent}:`)).stdout;

  it('sets up two agents running the scripted runtime', async () => {
    const sb = sandbox();
    const script = join(sb.root, 'fake-agent.sh');
    writeFileSync(script, FAKE);
    chmodSync(script, 0o755);
    mkdirSync(join(sb.paths.mosaicHome, 'fleet'), { recursive: true });
    writeFileSync(
      join(sb.paths.mosaicHome, 'fleet', 'roster.yaml'),
      [
        'version: 1',
        `tmux: {socket_name: ${socket}}`,
        'runtimes:',
        `  fake: {command: ${script}, heartbeat: true, reset_command: /reset, model_args: []}`,
        'agents:',
        '  - {name: a, runtime: fake}',
        '  - {name: b, runtime: fake}',
        '',
      ].join('\n'),
    );
    ctl('a', 'idle');
    ctl('b', 'idle');
    const r = await fleet('reconcile');
    expect(r.code, r.stderr).toBe(0);
    await waitState('a', 'idle');
    await waitState('b', 'idle');
  });

  it('restart: a busy agent is named and left alone, the other restarted; journaled; --now overrides', async () => {
    const before = { a: (await row('a')).session.pane_pid, b: (await row('b')).session.pane_pid };
    ctl('b', 'busy');
    await waitState('b', 'busy');
    const r = await fleet('restart', 'a', 'b');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^fleet: b is busy \(\d+s\): not restarted; use --now, or retry when idle\n$/);
    expect(r.stdout).toBe('restarted mosaic-agent@a.service\n');
    await waitFor('a restarted', async () => {
      const x = await row('a');
      return x.session.pane_pid !== null && x.session.pane_pid !== before.a ? x : undefined;
    });
    expect((await row('b')).session.pane_pid).toBe(before.b);

    const now = await fleet('restart', 'b', '--now');
    expect(now.code, now.stderr).toBe(0);
    await waitFor('b restarted', async () =>
      (await row('b')).session.pane_pid !== before.b ? true : undefined,
    );
    ctl('b', 'idle');

    const unknown = await fleet('restart', 'a', 'nobody');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/^fleet: no agent named "nobody" in the manifests/);
    expect(unknown.mutating).toEqual([]);

    const h = await fleet('history', '-n', '2');
    expect(h.code, h.stderr).toBe(0);
    const heads = h.stdout.split('\n').filter((l) => /^\d{4}-/.test(l));
    expect(heads).toHaveLength(2);
    expect(heads[0]).toContain('fleet restart b --now  by ');
    expect(heads[1]).toContain('fleet restart a b  by ');
    expect(h.stdout).toContain('restarted mosaic-agent@a.service');
    expect(existsSync(join(sandbox().paths.stateDir, 'lock'))).toBe(false);
  }, 60_000);

  it('send: one paste of any characters, verified by the runtime; refused while waiting for a permission', async () => {
    await waitState('a', 'idle');
    const text = `it's "quoted"; $(echo no) \`x\` | & > * \\ done`;
    const r = await fleet('send', 'a', text, '--verify');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('a took it');
    await waitFor('echo', async () => ((await screen('a')).includes(`got: ${text}`) ? true : undefined));

    ctl('a', 'waiting');
    await waitState('a', 'waiting');
    const refused = await fleet('send', 'a', 'do not type me');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^fleet: a is waiting for a permission answer.*nothing sent/);
    expect(refused.mutating).toEqual([]);
    ctl('a', 'idle');
    await waitState('a', 'idle');
    expect(await screen('a')).not.toContain('do not type me');
  }, 60_000);

  it('reset types the runtime reset command; tail shows the screen', async () => {
    const r = await fleet('reset', 'a');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('typed /reset into a\n');
    await waitFor('reset echo', async () => ((await screen('a')).includes('got: /reset') ? true : undefined));
    const t = await fleet('tail', 'a', '-n', '100');
    expect(t.code, t.stderr).toBe(0);
    expect(t.stdout).toContain('got: /reset');
    const h = await fleet('history', '-n', '1', '--json');
    const doc = JSON.parse(h.stdout) as { entries: { command: string; actions: { kind: string }[] }[] };
    expect(doc.entries[0]?.command).toBe('fleet reset a');
    expect(doc.entries[0]?.actions[0]?.kind).toBe('reset');
  }, 60_000);

  it('watch: read-only viewer; the agent window keeps its size and input; no viewer session left', async () => {
    const sb = sandbox();
    const size = async () =>
      (await tmux('display-message', '-p', '-t', '=a:', '#{window_width}x#{window_height}')).stdout.trim();
    const sizeBefore = await size();
    const screenBefore = await screen('a');
    const outer = uniqueSocket('fleet-outer');
    const envArgs = Object.entries(sb.env)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${k}=${v ?? ''}`);
    await sb.tmux(
      outer,
      'new-session',
      '-d',
      '-s',
      'o',
      '-x',
      '61',
      '-y',
      '17',
      'env',
      '-u',
      'TMUX',
      ...envArgs,
      process.execPath,
      FLEET_BIN,
      'watch',
      'a',
    );
    const viewers = async () =>
      (await tmux('list-sessions', '-F', '#{session_name}')).stdout
        .split('\n')
        .filter((s) => s.startsWith('fleet-watch-a-'));
    await waitFor('viewer attached', async () => {
      const c = await tmux('list-clients', '-F', '#{client_session} #{client_flags}');
      return /fleet-watch-a-\S+ .*read-only/.test(c.stdout) ? true : undefined;
    });
    expect(await size()).toBe(sizeBefore);
    // Keys typed in the viewer do not reach the agent.
    await sb.tmux(outer, 'send-keys', '-t', '=o:', 'typed-in-viewer');
    await new Promise((r) => setTimeout(r, 1500));
    expect(await screen('a')).not.toContain('typed-in-viewer');
    expect(await size()).toBe(sizeBefore);
    await sb.tmux(outer, 'send-keys', '-t', '=o:', 'C-b', 'd');
    // `fleet watch` has exited (its pane, and so the outer server, is gone) and left no viewer behind.
    await waitFor('fleet watch exited', async () => {
      const r = await sb.run(['tmux', '-L', outer, 'has-session'], { reject: false });
      return r.exitCode !== 0 ? true : undefined;
    });
    expect(await viewers()).toEqual([]);
    expect(await size()).toBe(sizeBefore);
    expect((await tmux('show-options', '-w', '-t', '=a:')).stdout).not.toMatch(/window-size|fleet-watch/);
    expect(screenBefore.split('\n')[0]).toBe((await screen('a')).split('\n')[0]);
    await sb.run(['tmux', '-L', outer, 'kill-server'], { reject: false });
  }, 60_000);

  it('a closed stdout loses no journal entry, leaves no lock and prints no stack trace', async () => {
    const sb = sandbox();
    const journal = join(sb.paths.stateDir, 'journal.jsonl');
    const entries = () =>
      readFileSync(journal, 'utf8')
        .split('\n')
        .filter((l) => l !== '').length;
    const n = entries();
    const child = spawn(process.execPath, [FLEET_BIN, 'restart', 'a', '--now'], {
      env: { ...sb.env, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((r) => child.on('close', (c) => r(c)));
    expect(stderr).not.toMatch(/at .*\.js:\d+|Error:/);
    expect(code).toBe(0);
    expect(entries()).toBe(n + 1);
    expect(existsSync(join(sb.paths.stateDir, 'lock'))).toBe(false);

    // `fleet history | head -1`: a reader that leaves after the first line.
    const h = spawn('sh', ['-c', `"${process.execPath}" "${FLEET_BIN}" history -n 50 | head -1`], {
      env: { ...sb.env, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    h.stdout.on('data', (d: Buffer) => (out += d.toString()));
    h.stderr.on('data', (d: Buffer) => (err += d.toString()));
    await new Promise((r) => h.on('close', r));
    expect(out.split('\n').filter((l) => l !== '')).toHaveLength(1);
    expect(err).toBe('');
  }, 60_000);

  it('argument errors start with fleet:, --interval needs --watch', async () => {
    const r = await fleet('restart');
    expect(r.code).toBe(1);
    expect(r.stderr).toBe("fleet: missing required argument 'agent'\n");
    const i = await fleet('reconcile', '--interval', '5');
    expect(i.code).toBe(1);
    expect(i.stderr).toBe('fleet: --interval only makes sense with --watch\n');
  });
});
