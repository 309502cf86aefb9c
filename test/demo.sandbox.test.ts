/**
 * `npm run demo` (dist/dev/demo.js) as a user runs it: it must finish with exit 0 every time, show the three drifts
 * it made being named and healed, and leave nothing behind (no process, no cgroup, no temp dir), also when
 * interrupted with Ctrl-C halfway.
 */
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { sandboxRequired, sandboxUnavailableReason } from './sandbox.js';
import { runDemoScript, type DemoRun } from './helpers/demo-run.js';

const REPO = resolve(import.meta.dirname, '..');
const DEMO = join(REPO, 'dist', 'dev', 'demo.js');
const RUN_TIMEOUT_MS = 90_000;

/** Run the demo; `onStdout` sees the output so far and may act on it (e.g. send a signal). */
function runDemo(onStdout?: (soFar: string, pid: number) => void): Promise<DemoRun> {
  return runDemoScript(DEMO, { timeoutMs: RUN_TIMEOUT_MS, ...(onStdout ? { onStdout } : {}) });
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

/** The rows of the last `fleet ps` table in a piece of output, agent -> whole row. */
function lastPsRows(text: string): Record<string, string> {
  const tables = text.split('$ fleet ps\n');
  const table = tables[tables.length - 1] ?? '';
  const rows: Record<string, string> = {};
  for (const line of table.split('\n')) {
    const m = /^\s+(coder0|lead|reviewer0)\s/.exec(line);
    if (m?.[1] !== undefined) rows[m[1]] = line;
  }
  return rows;
}

function sandboxRoot(stdout: string): string {
  const m = /sandbox: (\/\S*fleet-demo-\S+) /.exec(stdout);
  expect(m, `the demo does not name its sandbox dir:\n${stdout}`).not.toBeNull();
  return m?.[1] ?? '';
}

function managerPid(stdout: string): number {
  const m = /systemd user manager\.\.\. ok \(pid (\d+)\)/.exec(stdout);
  expect(m, stdout).not.toBeNull();
  return Number(m?.[1]);
}

/** Processes (zombies aside: they hold nothing) whose cwd or environment points into `dir`. */
function processesUsing(dir: string): string[] {
  const found: string[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2)[0] === 'Z') continue;
      const environ = readFileSync(`/proc/${entry}/environ`, 'utf8');
      let cwd = '';
      try {
        cwd = readlinkSync(`/proc/${entry}/cwd`);
      } catch {
        // a kernel thread or a process that just exited
      }
      if (environ.includes(dir) || cwd.startsWith(dir)) {
        found.push(`${entry}: ${readFileSync(`/proc/${entry}/cmdline`, 'utf8').replace(/\0/g, ' ')}`);
      }
    } catch {
      // gone while we looked
    }
  }
  return found;
}

function expectNothingLeft(run: DemoRun): void {
  const root = sandboxRoot(run.stdout);
  const pid = managerPid(run.stdout);
  expect(run.stdout).toMatch(/cleaning up: stopping the sandbox .*\.\.\. done/);
  expect(existsSync(root), `${root} is still there`).toBe(false);
  expect(processesUsing(root)).toEqual([]);
  for (const cgroupRoot of ['/sys/fs/cgroup/systemd', '/sys/fs/cgroup/unified', '/sys/fs/cgroup']) {
    expect(existsSync(join(cgroupRoot, `fleet-sandbox-${pid}`)), `cgroup of manager ${pid} left`).toBe(false);
  }
}

describe('npm run demo (dist/dev/demo.js)', async () => {
  const reason = await sandboxUnavailableReason();
  if (reason !== null) {
    if (sandboxRequired()) {
      it('the sandbox starts (FLEET_REQUIRE_SANDBOX=1)', () => {
        throw new Error(`sandbox required but unavailable: ${reason}`);
      });
    } else {
      it.skip(`skipped: ${reason.split('\n')[0]}`, () => undefined);
    }
    return;
  }

  // The acceptance: exit 0 twice in a row (the second run must not trip over anything the first left).
  it.each([1, 2])(
    'run %i: installs, breaks three ways, heals with one reconcile, and leaves nothing behind',
    async () => {
      const run = await runDemo();
      expect(run.code, `${run.stdout}\n--- stderr ---\n${run.stderr}`).toBe(0);
      expect(run.stderr).toBe('');

      expect(section(run.stdout, /^1\. Validate/)).toMatch(/roster\.yaml: ok \(3 agents\)/);
      // 12 framework files (opencode's TUI plugin and its config among them: the ready signal), 2 units, 3 env files.
      expect(section(run.stdout, /^2\. Plan from a fresh home/)).toMatch(/Plan: 17 to add/);

      const applied = section(run.stdout, /^3\. Apply/);
      expect(applied).toMatch(/waiting for heartbeats\.\.\. 3\/3/);
      for (const row of Object.values(lastPsRows(applied)))
        expect(row).toMatch(/active\/enabled\s+yes .*healthy .* ok$/);
      expect(Object.keys(lastPsRows(applied)).sort()).toEqual(['coder0', 'lead', 'reviewer0']);

      const broken = lastPsRows(section(run.stdout, /^4\. Break it/));
      expect(broken.coder0).toMatch(/DEAD|MISSING/);
      expect(broken.lead).toMatch(/active\/disabled .*BOOT-ENABLE/);

      // The dry run names exactly the three drifts, and nothing about the agents that were left alone.
      const dry = section(run.stdout, /^5\. Plan again/);
      expect(dry).toMatch(/^\s+@ respawn \S*coder0 /m);
      expect(dry).toMatch(/^\s+\+ enable mosaic-agent@lead\.service /m);
      expect(dry).toMatch(/^\s+~ update \S*agents\/reviewer0\.env /m);
      expect(dry).toMatch(/^\s+-MOSAIC_AGENT_MODEL=hand-edited$/m);
      expect(dry).toMatch(/^\s+! restart mosaic-agent@reviewer0\.service /m);
      const actionLines = dry.split('\n').filter((l) => /^\s+[+~@>!-] \S/.test(l) && !/^\s{5}/.test(l));
      expect(actionLines, dry).toHaveLength(4);

      const healed = section(run.stdout, /^6\. Reconcile/);
      expect(healed).toMatch(/respawned coder0/);
      expect(healed).toMatch(/enabled mosaic-agent@lead\.service/);
      const finalRows = lastPsRows(healed);
      expect(Object.keys(finalRows).sort()).toEqual(['coder0', 'lead', 'reviewer0']);
      for (const row of Object.values(finalRows)) {
        // BACKOFF is allowed: it only says coder0 was just respawned.
        expect(row).toMatch(/active\/enabled\s+yes .*healthy .* (ok|BACKOFF)$/);
      }

      const kept = section(run.stdout, /^7\. The operator's lines survived/);
      expect(kept).toMatch(/^\s+\d+:MOSAIC_AGENT_MODEL=sonnet$/m);
      expect(kept).toMatch(/^\s+\d+:# site note\n\s+\d+:MY_SETTING=kept$/m);

      const history = section(run.stdout, /^8\. History/);
      expect(history.match(/ OK\s+fleet reconcile/g)).toHaveLength(2);

      expect(run.stdout).toMatch(/Demo done/);
      expectNothingLeft(run);
    },
    RUN_TIMEOUT_MS + 10_000,
  );

  it(
    'Ctrl-C during the first reconcile still stops the sandbox and leaves nothing behind',
    async () => {
      let sent = false;
      const run = await runDemo((soFar, pid) => {
        if (!sent && /^\s+\$ fleet reconcile$/m.test(soFar) && pid > 1) {
          sent = true;
          process.kill(pid, 'SIGINT');
        }
      });
      expect(sent, run.stdout).toBe(true);
      expect(run.code, `${run.stdout}\n--- stderr ---\n${run.stderr}`).toBe(130);
      expect(run.stderr).toMatch(/SIGINT: stopping the demo and cleaning up/);
      expect(run.stdout).not.toMatch(/Demo done/);
      // It stopped where it was: the fleet was never broken.
      expect(run.stdout).not.toMatch(/^4\. Break it/m);
      expectNothingLeft(run);
    },
    RUN_TIMEOUT_MS + 10_000,
  );
});
