/**
 * A full disk under the Mosaic home (defect: `fleet reconcile` printed "internal error … ENOSPC" and left the
 * lock's temp file behind). A small tmpfs is mounted on the home inside the sandbox manager's private mount
 * namespace (so its units see it too), and `fleet` runs in that namespace (nsenter). For each write path the disk
 * is filled to leave just so many pages that this very write is the one refused: the run exits 1 with one line
 * naming the file and ENOSPC, no stack trace, no temp file anywhere under the home; once space is freed the next
 * run converges (exit 0, then an empty plan). The manifest cache is best effort: refused, it costs nothing but the
 * next run's parse (exit 0), and leaves no temp file either.
 */
import { execFile } from 'node:child_process';
import { readdirSync, statSync, writeFileSync, appendFileSync, rmSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { FLEET_BIN, REPO } from '../helpers/cli.js';
import { uniqueSocket } from '../helpers/fleet.js';
import { describeSandbox, type Sandbox } from '../sandbox.js';

const PAGE = 4096;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** `fleet ARGS` inside the manager's mount namespace, where the home is the small tmpfs. */
function fleetIn(sb: Sandbox, ...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      'nsenter',
      ['-t', String(sb.managerPid), '-m', '--', process.execPath, FLEET_BIN, ...args],
      { env: { ...sb.env, NO_COLOR: '1' }, cwd: REPO, timeout: 120_000 },
      (error, stdout, stderr) => {
        resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
      },
    );
  });
}

function roster(socket: string, model: string, note = ''): string {
  return [
    'version: 1',
    `tmux: {socket_name: ${socket}}`,
    'reconcile: {restart: {policy: immediate}}',
    // A runtime that writes nothing while it runs: the only writes under the home are the reconciler's.
    'runtimes:',
    "  sleeper: {command: sleep, model_args: [], args: ['100000']}",
    'agents:',
    '  - name: a',
    '    runtime: sleeper',
    `    model_hint: ${model}`,
    note,
    '',
  ].join('\n');
}

describeSandbox('a full disk under the home', (sandbox) => {
  it('each write path: exit 1, one line naming the file and ENOSPC, no temp file; with space, it converges', async () => {
    const sb = sandbox();
    const ns = ['nsenter', '-t', String(sb.managerPid), '-m', '--'];
    const home = sb.paths.mosaicHome;
    /** The home as this process sees the manager's namespace. */
    const seen = (p: string) => `/proc/${sb.managerPid}/root${p}`;
    await sb.run(['mkdir', '-p', home]);
    await sb.run([...ns, 'mount', '-t', 'tmpfs', '-o', 'size=2m,mode=755', 'fleet-full-disk', home]);
    try {
      const socket = uniqueSocket('fleet-disk');
      const rosterPath = seen(join(home, 'fleet', 'roster.yaml'));
      await sb.run(['mkdir', '-p', seen(join(home, 'fleet'))]);
      writeFileSync(rosterPath, roster(socket, 'm0'));
      const first = await fleetIn(sb, 'reconcile');
      expect(first.code, first.stderr).toBe(0);

      const filler = seen(join(home, 'filler'));
      const journal = seen(join(home, 'fleet', 'reconciler', 'journal.jsonl'));
      /** Fill the tmpfs, then give back exactly `pages` pages. */
      const fill = async (pages: number) => {
        // The journal's last page full, so any append needs a page of its own (blank lines are skipped on read).
        const size = statSync(journal).size;
        if (size % PAGE !== 0) appendFileSync(journal, '\n'.repeat(PAGE - (size % PAGE)));
        await sb.run([...ns, 'dd', 'if=/dev/zero', `of=${join(home, 'filler')}`, 'bs=64k'], {
          reject: false,
        });
        await sb.run([...ns, 'truncate', '-s', `-${pages * PAGE}`, join(home, 'filler')]);
      };
      const tempFiles = (dir: string): string[] =>
        readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
          e.isDirectory() ? tempFiles(join(dir, e.name)) : e.name.endsWith('.tmp') ? [join(dir, e.name)] : [],
        );
      const refused = (r: Run, file: string) => {
        expect(r.code, r.stdout + r.stderr).toBe(1);
        const lines = r.stderr.split('\n').filter((l) => l.trim() !== '');
        expect(lines, r.stderr).toHaveLength(1);
        expect(lines[0]).toMatch(/^fleet: cannot write \S+: ENOSPC \(no space left on device\)/);
        expect(lines[0]).toContain(join(home, file));
        expect(r.stderr).not.toMatch(/internal error|\n\s+at /);
        expect(tempFiles(seen(home))).toEqual([]);
      };
      const converges = async () => {
        rmSync(filler, { force: true });
        const r = await fleetIn(sb, 'reconcile');
        expect(r.code, r.stdout + r.stderr).toBe(0);
        const again = await fleetIn(sb, 'reconcile', '--dry-run', '--detailed-exitcode');
        expect(again.code, again.stdout).toBe(0);
        expect(tempFiles(seen(home))).toEqual([]);
      };

      // The lock: not a page to spare.
      writeFileSync(rosterPath, roster(socket, 'm1'));
      await fill(0);
      refused(await fleetIn(sb, 'reconcile'), 'fleet/reconciler/lock');
      await converges();

      // The env file: the lock takes the last page.
      writeFileSync(rosterPath, roster(socket, 'm2'));
      await fill(1);
      refused(await fleetIn(sb, 'reconcile'), 'fleet/agents/a.env');
      await converges();

      // A framework file (three pages) the operator deleted: two pages free, one for the lock.
      unlinkSync(seen(join(home, 'tools', 'fleet', 'agent-state.sh')));
      await fill(2);
      refused(await fleetIn(sb, 'reconcile'), 'tools/fleet/agent-state.sh');
      await converges();

      // The state file: the only action is a start (no file), then the state needs the page the lock took.
      await sb.systemctl('stop', 'mosaic-agent@a.service');
      await fill(1);
      refused(await fleetIn(sb, 'reconcile'), 'fleet/reconciler/state.json');
      await converges();

      // The journal: a verb that writes nothing but its journal entry.
      await fill(1);
      refused(await fleetIn(sb, 'send', 'a', 'hello'), 'fleet/reconciler/journal.jsonl');
      await converges();

      // The manifest cache: best effort. Refused, the run still succeeds, and no temp file is left.
      writeFileSync(rosterPath, roster(socket, 'm2', '# a comment: the manifests changed, the plan did not'));
      await fill(1);
      const cached = await fleetIn(sb, 'reconcile');
      expect(cached.code, cached.stderr).toBe(0);
      expect(cached.stderr).toBe('');
      expect(tempFiles(seen(home))).toEqual([]);
      await converges();
    } finally {
      await sb.run([...ns, 'umount', '-l', home], { reject: false });
    }
  }, 300_000);
});
