/**
 * A running agent is precious, end to end on the real sandbox (systemd user manager + tmux) with the stub
 * runtime: restart only when the agent's own environment would change, a bounded number at a time, never two
 * copies after a socket change, never for a start known to fail, never forgotten after a crash, and never for
 * another Mosaic home's units. Real runtimes' when-idle and resume: test/runtimes/.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readMosaicEnviron } from '../../src/observe/proc.js';
import { expect, it } from 'vitest';
import { runFleet, type CliResult } from '../helpers/cli.js';
import { uniqueSocket, waitFor } from '../helpers/fleet.js';
import { describeSandbox, type Sandbox } from '../sandbox.js';

interface Row {
  name: string;
  flags: string[];
  session: { pane_pid: number | null; socket: string };
}

function fleet(sb: Sandbox, args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return runFleet({ ...sb.env, FLEET_BACKOFF_INITIAL_SECONDS: '0.001', ...env }, args, { logDir: sb.root });
}

function roster(
  socket: string,
  agents: string[],
  opts: { model?: string; restart?: string; workdir?: (a: string) => string } = {},
): string {
  return [
    'version: 1',
    `tmux: {socket_name: ${socket}}`,
    `reconcile: {restart: {${opts.restart ?? 'policy: immediate, max_unavailable: 1'}}}`,
    'agents:',
    ...agents.flatMap((a) => [
      `  - name: ${a}`,
      '    runtime: stub',
      `    model_hint: ${opts.model ?? 'm1'}`,
      ...(opts.workdir ? [`    working_directory: ${opts.workdir(a)}`] : []),
    ]),
    '',
  ].join('\n');
}

function writeRoster(sb: Sandbox, text: string): void {
  mkdirSync(join(sb.paths.mosaicHome, 'fleet'), { recursive: true });
  writeFileSync(join(sb.paths.mosaicHome, 'fleet', 'roster.yaml'), text);
}

async function rows(sb: Sandbox): Promise<Record<string, Row>> {
  const r = await fleet(sb, ['ps', '--json']);
  expect(r.code, r.stderr).toBe(0);
  return Object.fromEntries((JSON.parse(r.stdout) as { agents: Row[] }).agents.map((a) => [a.name, a]));
}

async function allOk(sb: Sandbox, names: string[]): Promise<Record<string, Row>> {
  return waitFor(
    `${names.join(', ')} ok`,
    async () => {
      const r = await rows(sb);
      return names.every((n) => r[n]?.flags.length === 0 && r[n]?.session.pane_pid !== null) ? r : undefined;
    },
    30_000,
  );
}

/** MOSAIC_* variables of a live process, from /proc (what the running agent really sees). */
function environOf(pid: number): Record<string, string> {
  return readMosaicEnviron('/proc', pid) ?? {};
}

/** Every session of the agents on a socket, listed by the sandbox's own tmux. */
async function sessionsOn(sb: Sandbox, socket: string): Promise<string[]> {
  const r = await sb.run(['tmux', '-L', socket, 'list-sessions', '-F', '#{session_name}'], { reject: false });
  return r.exitCode === 0 ? r.stdout.split('\n').filter((l) => l !== '' && l !== '_holder') : [];
}

describeSandbox('lifecycle: a running agent is precious', (sandbox) => {
  const socket = uniqueSocket('fleet-life');
  const AGENTS = ['l1', 'l2', 'l3', 'l4', 'l5'];

  it('installs five agents', async () => {
    const sb = sandbox();
    writeRoster(sb, roster(socket, AGENTS));
    const r = await fleet(sb, ['reconcile']);
    expect(r.code, r.stderr).toBe(0);
    await allOk(sb, AGENTS);
  });

  it('a comment added to the installed unit template restarts nothing', async () => {
    const sb = sandbox();
    const before = await rows(sb);
    const unit = join(sb.paths.unitDir, 'mosaic-agent@.service');
    writeFileSync(unit, `# an operator's note\n${readFileSync(unit, 'utf8')}`);
    const r = await fleet(sb, ['reconcile']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.mutating.filter((c) => c.argv.includes('restart'))).toEqual([]);
    const after = await rows(sb);
    for (const a of AGENTS) expect(after[a]?.session.pane_pid, a).toBe(before[a]?.session.pane_pid);
  });

  it('budget: 5 agents need a restart under max_unavailable 1; at most one is down at any moment; all converge within 5 cycles', async () => {
    const sb = sandbox();
    const before = await rows(sb);
    writeRoster(sb, roster(socket, AGENTS, { model: 'm2' }));
    let sampling = true;
    let maxDown = 0;
    const sampler = (async () => {
      while (sampling) {
        const r = await sb.run(
          ['tmux', '-L', socket, 'list-panes', '-a', '-F', '#{session_name} #{pane_dead}'],
          {
            reject: false,
          },
        );
        const live = new Set(
          r.stdout
            .split('\n')
            .filter((l) => l.endsWith(' 0'))
            .map((l) => l.split(' ')[0]),
        );
        maxDown = Math.max(maxDown, AGENTS.filter((a) => !live.has(a)).length);
        await new Promise((res) => setTimeout(res, 20));
      }
    })();
    let cycles = 0;
    try {
      for (cycles = 1; cycles <= 5; cycles++) {
        const r = await fleet(sb, ['reconcile']);
        expect(r.code, r.stderr).toBe(0);
        const restarted = r.mutating.filter(
          (c) => c.argv[2] === 'restart' && String(c.argv[3]).startsWith('mosaic-agent@'),
        );
        expect(
          restarted.flatMap((c) => c.argv.slice(3)),
          `cycle ${cycles}`,
        ).toHaveLength(1);
        await allOk(sb, AGENTS);
        const dry = await fleet(sb, ['reconcile', '--dry-run', '--detailed-exitcode']);
        if (dry.code === 0) break;
      }
    } finally {
      sampling = false;
      await sampler;
    }
    expect(cycles).toBeLessThanOrEqual(5);
    expect(maxDown).toBeLessThanOrEqual(1);
    const after = await rows(sb);
    for (const a of AGENTS) {
      const pid = after[a]?.session.pane_pid ?? 0;
      expect(pid, a).not.toBe(before[a]?.session.pane_pid);
      expect(environOf(pid).MOSAIC_AGENT_MODEL, a).toBe('m2');
    }
  }, 240_000);

  it('a start known to fail (missing working directory) keeps the running session; the plan warns and stays pending', async () => {
    const sb = sandbox();
    const before = await rows(sb);
    writeRoster(
      sb,
      roster(socket, AGENTS, { model: 'm2', workdir: (a) => (a === 'l1' ? '/nonexistent/dir' : sb.root) }),
    );
    const dry = await fleet(sb, ['reconcile', '--dry-run', '--detailed-exitcode']);
    expect(dry.code, dry.stdout).toBe(2);
    expect(dry.stdout).toContain('working directory /nonexistent/dir does not exist');
    expect(dry.stdout).toMatch(/Held back[^\n]*\n\s+l1: restart/);
    const r = await fleet(sb, ['reconcile']);
    expect(r.code, r.stderr).toBe(0);
    const after = await rows(sb);
    expect(after.l1?.session.pane_pid).toBe(before.l1?.session.pane_pid);
    expect(after.l1?.flags).toEqual([]);
    const again = await fleet(sb, ['reconcile', '--dry-run', '--detailed-exitcode']);
    expect(again.code).toBe(2);
    // Back to a directory that exists: now it restarts, once.
    writeRoster(sb, roster(socket, AGENTS, { model: 'm2', workdir: () => sb.root }));
    for (let i = 0; i < 6; i++) {
      const c = await fleet(sb, ['reconcile']);
      expect(c.code, c.stderr).toBe(0);
      await allOk(sb, AGENTS);
      if ((await fleet(sb, ['reconcile', '--dry-run', '--detailed-exitcode'])).code === 0) break;
    }
    expect((await fleet(sb, ['reconcile', '--dry-run', '--detailed-exitcode'])).code).toBe(0);
  }, 240_000);

  it('a start known to fail (program not on the manager’s PATH) keeps the running session; the plan names the program and the PATH', async () => {
    const sb = sandbox();
    const before = await rows(sb);
    const text = roster(socket, AGENTS, { model: 'm2', workdir: () => sb.root })
      .replace('agents:\n', 'runtimes:\n  ghost:\n    command: ghost-agent-not-installed\nagents:\n')
      .replace(/(name: l1\n\s+runtime: )stub/, '$1ghost');
    writeRoster(sb, text);
    const dry = await fleet(sb, ['reconcile', '--dry-run', '--detailed-exitcode']);
    expect(dry.code, dry.stdout).toBe(2);
    const path = (await sb.systemctl('show-environment')).stdout.match(/^PATH=(.*)$/m)?.[1] ?? '?';
    expect(dry.stdout).toContain(
      `runtime program 'ghost-agent-not-installed' is not on the user manager's PATH (${path}): l1`,
    );
    const r = await fleet(sb, ['reconcile']);
    expect(r.code, r.stderr).toBe(0);
    expect((await rows(sb)).l1?.session.pane_pid).toBe(before.l1?.session.pane_pid);
    // Back to the stub: its env file is written back, and the agent, which never saw the ghost, keeps running.
    writeRoster(sb, roster(socket, AGENTS, { model: 'm2', workdir: () => sb.root }));
    const back = await fleet(sb, ['reconcile']);
    expect(back.code, back.stderr).toBe(0);
    expect(back.stdout).not.toContain('restart mosaic-agent@l1');
    expect((await rows(sb)).l1?.session.pane_pid).toBe(before.l1?.session.pane_pid);
    const after = await fleet(sb, ['reconcile', '--dry-run', '--detailed-exitcode']);
    expect(after.code, after.stdout).toBe(0);
  }, 240_000);

  it('crash injection: killed after each action of an update of 2 agents, the next run leaves every pane with the new value and then plans nothing', async () => {
    const sb = sandbox();
    writeRoster(
      sb,
      roster(socket, AGENTS, {
        model: 'm2',
        workdir: () => sb.root,
        restart: 'policy: immediate, max_unavailable: 10',
      }),
    );
    await fleet(sb, ['reconcile']);
    await allOk(sb, AGENTS);
    let model = 2;
    let points = 0;
    for (let k = 1; ; k++) {
      model += 1;
      const value = `m${model}`;
      const text = roster(socket, AGENTS, {
        model: 'm2',
        workdir: () => sb.root,
        restart: 'policy: immediate, max_unavailable: 10',
      })
        .replace(/(name: l1\n\s+runtime: stub\n\s+model_hint: )m2/, `$1${value}`)
        .replace(/(name: l2\n\s+runtime: stub\n\s+model_hint: )m2/, `$1${value}`);
      writeRoster(sb, text);
      const crashed = await fleet(sb, ['reconcile'], { FLEET_TEST_CRASH_AFTER: String(k) });
      if (crashed.code === 0) break; // fewer than k actions: every point has been tried
      points += 1;
      const next = await fleet(sb, ['reconcile']);
      expect(next.code, `after a kill at action ${k}: ${next.stderr}`).toBe(0);
      const after = await allOk(sb, AGENTS);
      for (const a of ['l1', 'l2']) {
        expect(
          environOf(after[a]?.session.pane_pid ?? 0).MOSAIC_AGENT_MODEL,
          `${a} after a kill at action ${k}`,
        ).toBe(value);
      }
      const dry = await fleet(sb, ['reconcile', '--dry-run', '--detailed-exitcode']);
      expect(dry.code, `plan after the kill at action ${k}:\n${dry.stdout}`).toBe(0);
      const tmp = readdirAll(sb.paths.agentsDir).filter((f) => f.endsWith('.tmp'));
      expect(tmp, `temp files after a kill at action ${k}`).toEqual([]);
    }
    expect(points).toBeGreaterThanOrEqual(3);
  }, 240_000);

  it('a socket change: after one reconcile each agent runs exactly once, on the new socket', async () => {
    const sb = sandbox();
    const next = uniqueSocket('fleet-life2');
    writeRoster(
      sb,
      roster(next, AGENTS, {
        model: 'm2',
        workdir: () => sb.root,
        restart: 'policy: immediate, max_unavailable: 10',
      }),
    );
    const r = await fleet(sb, ['reconcile']);
    expect(r.code, r.stderr).toBe(0);
    await allOk(sb, AGENTS);
    expect((await sessionsOn(sb, next)).sort()).toEqual(AGENTS);
    expect(await sessionsOn(sb, socket)).toEqual([]);
    const dry = await fleet(sb, ['reconcile', '--dry-run', '--detailed-exitcode']);
    expect(dry.code, dry.stdout).toBe(0);
  });

  it('another Mosaic home on the same unit directory is refused, naming the first home; the first fleet is untouched', async () => {
    const sb = sandbox();
    const before = await rows(sb);
    const unitsBefore = readFileSync(join(sb.paths.unitDir, 'mosaic-agent@.service'), 'utf8');
    const other = join(sb.root, 'other-home');
    mkdirSync(join(other, 'fleet'), { recursive: true });
    writeFileSync(join(other, 'fleet', 'roster.yaml'), roster(uniqueSocket('fleet-other'), ['o1']));
    for (const args of [['reconcile', '--dry-run'], ['reconcile'], ['reconcile', '--prune']]) {
      const r = await fleet(sb, ['--home', other, ...args]);
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.stderr).toContain(`units of another Mosaic home (${sb.paths.mosaicHome}`);
      expect(r.mutating).toEqual([]);
    }
    expect(readFileSync(join(sb.paths.unitDir, 'mosaic-agent@.service'), 'utf8')).toBe(unitsBefore);
    const after = await rows(sb);
    for (const a of AGENTS) expect(after[a]?.session.pane_pid).toBe(before[a]?.session.pane_pid);
    rmSync(other, { recursive: true, force: true });
  });
});

function readdirAll(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}
