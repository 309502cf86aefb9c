/**
 * `npm run demo:hosts` (dist/dev/demo-hosts.js) as a user runs it: exit 0, each host's share, `ps --all-hosts`,
 * the move that never ran on two hosts, the dead host's agents HOST-STALE and one taken over only after
 * takeover_after; then nothing left behind (no PostgreSQL, no manager, no process in a temp dir, no temp dir,
 * no cgroup), also after a Ctrl-C. Without PostgreSQL's binaries the demo says so in one line and exits 1.
 */
import {
  existsSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  writeFileSync,
  mkdtempSync,
  rmSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { describePostgres } from './helpers/postgres.js';
import { sandboxRequired, sandboxUnavailableReason } from './sandbox.js';
import { runDemoScript, type DemoRun } from './helpers/demo-run.js';

const REPO = resolve(import.meta.dirname, '..');
const DEMO = join(REPO, 'dist', 'dev', 'demo-hosts.js');
const RUN_TIMEOUT_MS = 240_000;

function runDemo(onStdout?: (soFar: string, pid: number) => void, nodeArgs: string[] = []): Promise<DemoRun> {
  return runDemoScript(DEMO, { timeoutMs: RUN_TIMEOUT_MS, nodeArgs, ...(onStdout ? { onStdout } : {}) });
}

/** The text between the heading `N. title` that matches `start` and the next numbered heading. */
function section(stdout: string, start: RegExp): string {
  const lines = stdout.split('\n');
  const from = lines.findIndex((l) => start.test(l));
  expect(from, `no heading ${String(start)} in:\n${stdout}`).toBeGreaterThanOrEqual(0);
  const rest = lines.slice(from + 1);
  const to = rest.findIndex((l) => /^\d+\. /.test(l));
  return (to === -1 ? rest : rest.slice(0, to)).join('\n');
}

/** The rows of the last `ps --all-hosts` table in a piece of output: `host/agent` -> row. */
function lastAllHosts(text: string): Record<string, string> {
  const tables = text.split(/\$ fleet ps --all-hosts\n/);
  const rows: Record<string, string> = {};
  for (const line of (tables[tables.length - 1] ?? '').split('\n')) {
    const m = /^\s+(h\d)\s+([a-z]+)\s/.exec(line);
    if (m !== null) rows[`${m[1]}/${m[2]}`] = line;
  }
  return rows;
}

/** What the demo says it started: the postmaster and its dir, each host's manager and temp dir. */
function started(stdout: string): { pids: number[]; dirs: string[] } {
  const pg = /register: PostgreSQL pid (\d+) in (\/\S+) /.exec(stdout);
  expect(pg, stdout).not.toBeNull();
  const hosts = [...stdout.matchAll(/^\s+h\d: systemd user manager pid (\d+) in (\/\S+) /gm)];
  expect(hosts, stdout).toHaveLength(3);
  return {
    pids: [Number(pg?.[1]), ...hosts.map((m) => Number(m[1]))],
    dirs: [pg?.[2] ?? '', ...hosts.map((m) => m[2] ?? '')],
  };
}

/** Processes (zombies aside) whose command line, cwd or environment points into `dir`. */
function processesUsing(dir: string): string[] {
  const found: string[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2)[0] === 'Z') continue;
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replace(/\0/g, ' ');
      const environ = readFileSync(`/proc/${entry}/environ`, 'utf8');
      let cwd = '';
      try {
        cwd = readlinkSync(`/proc/${entry}/cwd`);
      } catch {
        // a kernel thread or a process that just exited
      }
      if (cmdline.includes(dir) || environ.includes(dir) || cwd.startsWith(dir))
        found.push(`${entry}: ${cmdline}`);
    } catch {
      // gone while we looked
    }
  }
  return found;
}

function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

function expectNothingLeft(run: DemoRun): void {
  const { pids, dirs } = started(run.stdout);
  expect(run.stdout).toMatch(/cleaning up: stopping the three hosts .*\.\.\. done/);
  expect(run.stdout).toMatch(
    /cleaning up: stopping PostgreSQL \(pid \d+\) and removing its directory\.\.\. done/,
  );
  for (const pid of pids) expect(alive(pid), `pid ${pid} still runs`).toBe(false);
  for (const dir of dirs) {
    expect(existsSync(dir), `${dir} is still there`).toBe(false);
    expect(processesUsing(dir)).toEqual([]);
  }
  for (const pid of pids.slice(1)) {
    for (const root of ['/sys/fs/cgroup/systemd', '/sys/fs/cgroup/unified', '/sys/fs/cgroup']) {
      expect(existsSync(join(root, `fleet-sandbox-${pid}`)), `cgroup of manager ${pid} left`).toBe(false);
    }
  }
}

function checkShares(stdout: string): void {
  const shares = section(stdout, /^2\. Each host converges its share/);
  expect(shares).toMatch(/waiting for heartbeats: h1 3\/3, h2 3\/3, h3 3\/3/);
  for (const [host, agents] of [
    ['h1', ['ada', 'bea', 'cyd']],
    ['h2', ['dan', 'eve', 'fay']],
    ['h3', ['gus', 'hal', 'ivy']],
  ] as const) {
    const ps = shares.split(`${host}$ fleet ps\n`)[1]?.split(/\n\s*\n/)[0] ?? '';
    for (const agent of agents)
      expect(ps).toMatch(new RegExp(`^\\s+${agent}\\s+active/enabled\\s+yes .*healthy .* ok$`, 'm'));
    // The others are shown as another host's, never run here.
    expect(ps.match(/ remote /g), ps).toHaveLength(6);
  }
  const view = lastAllHosts(section(stdout, /^3\. One view of every host/));
  expect(Object.keys(view).sort()).toEqual([
    'h1/ada',
    'h1/bea',
    'h1/cyd',
    'h2/dan',
    'h2/eve',
    'h2/fay',
    'h3/gus',
    'h3/hal',
    'h3/ivy',
  ]);
  for (const row of Object.values(view)) expect(row).toMatch(/ running .* ok$/);
}

function checkMove(stdout: string): void {
  const move = section(stdout, /^4\. Move cyd from h1 to h2/);
  expect(move).toMatch(/h2\$ fleet reconcile --dry-run\n[\s\S]*cyd: start .*waits for h1 to stop it/);
  expect(move).toMatch(/h1\$ fleet reconcile --yes\n[\s\S]*stopped mosaic-agent@cyd\.service/);
  expect(move).toMatch(/claims it first: h1 recorded that it stopped it/);
  expect(move).toMatch(/started mosaic-agent@cyd\.service/);
  // On h1, then on neither, then on h2: never on both.
  expect(move).toMatch(
    /cyd sampled on h1.s and h2.s tmux servers, 50 ms apart: \d+ samples in [\d.]+ s: h1 ×\d+ → nowhere ×\d+ → h2 ×\d+; on two hosts at once: 0$/m,
  );
}

function checkDeath(stdout: string): void {
  const death = section(stdout, /^5\. h3 dies/);
  expect(death).toMatch(/^\s+\$ kill -KILL \d+ \d+$/m);
  expect(death).toMatch(/ivy: start .*waits for h3 to stop it/);
  const stale = death.split(/h3's lease ran out at /)[1] ?? '';
  for (const agent of ['gus', 'hal', 'ivy'])
    expect(stale).toMatch(new RegExp(`^\\s+h3\\s+${agent}\\s.*HOST-STALE$`, 'm'));
  expect(death).toMatch(/claims it first: h3's lease ran out \d+ s ago \(takeover after 5 s\)/);
  const after = /ivy first seen on h1 ([\d.]+) s after h3's lease ran out/.exec(death);
  expect(after, death).not.toBeNull();
  expect(Number(after?.[1])).toBeGreaterThanOrEqual(5);
  expect(death).toMatch(
    /ivy sampled on h1's tmux server, 50 ms apart: \d+ samples in [\d.]+ s: nowhere ×\d+ → h1 ×\d+;/,
  );
  const view = lastAllHosts(death);
  expect(view['h1/ivy']).toMatch(/ running .* ok$/);
  expect(view['h2/cyd']).toMatch(/ running .* ok$/);
  expect(view['h3/gus']).toMatch(/HOST-STALE$/);
}

describe('npm run demo:hosts without PostgreSQL', () => {
  it('says so in one line and exits 1, having started nothing', async () => {
    // The binaries hidden from this run only: existsSync says no for /usr/lib/postgresql.
    const dir = mkdtempSync(join(tmpdir(), 'fleet-nopg-'));
    const hide = join(dir, 'hide-postgres.mjs');
    writeFileSync(
      hide,
      [
        "import fs from 'node:fs';",
        "import { syncBuiltinESMExports } from 'node:module';",
        'const real = fs.existsSync;',
        "fs.existsSync = (p) => (String(p).startsWith('/usr/lib/postgresql') ? false : real(p));",
        'syncBuiltinESMExports();',
      ].join('\n'),
    );
    try {
      const run = await runDemo(undefined, ['--import', hide]);
      expect(run.code).toBe(1);
      expect(run.stdout).toBe('');
      expect(run.stderr).toBe(
        'demo:hosts: cannot run here: PostgreSQL is not installed (/usr/lib/postgresql/*/bin/postgres)\n',
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describePostgres('npm run demo:hosts (dist/dev/demo-hosts.js)', () => {
  it(
    'shows the shares, the move and the dead host, and leaves nothing behind',
    async (ctx) => {
      const reason = await sandboxUnavailableReason();
      if (reason !== null) {
        if (sandboxRequired()) throw new Error(`sandbox required but unavailable: ${reason}`);
        ctx.skip();
      }
      const run = await runDemo();
      expect(run.code, `${run.stdout}\n--- stderr ---\n${run.stderr}`).toBe(0);
      expect(run.stderr).toBe('');
      expect(section(run.stdout, /^1\. One roster/)).toMatch(/roster\.yaml: ok \(9 agents\)/);
      expect(section(run.stdout, /^1\. One roster/)).toMatch(
        /Migrated the register's schema from version 0 to 1/,
      );
      checkShares(run.stdout);
      checkMove(run.stdout);
      checkDeath(run.stdout);
      expect(run.stdout).toMatch(/Demo done/);
      expectNothingLeft(run);
    },
    RUN_TIMEOUT_MS + 10_000,
  );

  it(
    'Ctrl-C halfway still stops PostgreSQL and every host, and leaves nothing behind',
    async (ctx) => {
      const reason = await sandboxUnavailableReason();
      if (reason !== null) {
        if (sandboxRequired()) throw new Error(`sandbox required but unavailable: ${reason}`);
        ctx.skip();
      }
      let sent = false;
      const run = await runDemo((soFar, pid) => {
        if (!sent && /^\s+h1\$ fleet register migrate$/m.test(soFar) && pid > 1) {
          sent = true;
          process.kill(pid, 'SIGINT');
        }
      });
      expect(sent, run.stdout).toBe(true);
      expect(run.code, `${run.stdout}\n--- stderr ---\n${run.stderr}`).toBe(130);
      expect(run.stderr).toMatch(/SIGINT: stopping the demo and cleaning up/);
      expect(run.stdout).not.toMatch(/^2\. Each host/m);
      expectNothingLeft(run);
    },
    RUN_TIMEOUT_MS + 10_000,
  );
});
