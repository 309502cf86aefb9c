/**
 * Crash injection for workspaces (docs/workspaces.md, docs/reliability.md): `fleet reconcile` of a fresh
 * three-agent fleet with a worktree each is SIGKILLed after each action k (FLEET_TEST_CRASH_AFTER=k), for every k
 * until a run completes. Whatever the point, the next run ends with every worktree present, locked with the
 * fleet's reason, on its branch, each agent's pane working in it, and the plan after that empty.
 *
 * The points are split between two test files by parity (crash-odd / crash-even), each with a sandbox per point,
 * so the two halves run on both of vitest's workers instead of one file being the suite's tail.
 */
import { readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { runFleet, type CliResult } from '../helpers/cli.js';
import { uniqueSocket, waitFor, writeRoster } from '../helpers/fleet.js';
import { describeSandbox, withSandbox, type Sandbox } from '../sandbox.js';
import { gitEnv, listWorktrees, makeRepo } from './git-repo.js';

const GIT = gitEnv();
const AGENTS = ['w1', 'w2', 'w3'];

function fleet(sb: Sandbox, args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return runFleet({ ...sb.env, ...GIT, FLEET_BACKOFF_INITIAL_SECONDS: '0.001', ...env }, args, {
    logDir: sb.root,
  });
}

function roster(socket: string, repo: string): string {
  return [
    'version: 1',
    `tmux: {socket_name: ${socket}}`,
    `defaults: {workspace: {repo: ${repo}}}`,
    'agents:',
    ...AGENTS.flatMap((name) => [`  - name: ${name}`, '    runtime: stub']),
    '',
  ].join('\n');
}

export function crashSuite(parity: 1 | 2): void {
  const which = parity === 1 ? 'odd' : 'even';
  describeSandbox(
    `workspaces: a reconcile killed after any action converges on the next run (${which} points)`,
    () => {
      it(`SIGKILL after each ${which} action of a three-agent workspace setup`, async () => {
        let points = 0;
        for (let k = parity; ; k += 2) {
          const done = await withSandbox(
            async (sb) => {
              const socket = uniqueSocket('fleet-wsc');
              const repo = makeRepo(GIT, join(sb.root, 'src', 'app'));
              await writeRoster(sb, roster(socket, repo));
              const crashed = await fleet(sb, ['reconcile'], { FLEET_TEST_CRASH_AFTER: String(k) });
              if (crashed.code === 0) return true;
              expect(crashed.stderr, `the kill at action ${k}`).not.toMatch(/internal error/);
              const next = await fleet(sb, ['reconcile']);
              expect(next.code, `run after the kill at ${k}:\n${next.stdout}${next.stderr}`).toBe(0);
              const listed = listWorktrees(GIT, repo);
              for (const name of AGENTS) {
                const path = `${repo}.worktrees/${name}`;
                expect(
                  listed.find((w) => w.path === path),
                  `${name}'s worktree after the kill at ${k}`,
                ).toEqual({ path, branch: `fleet/${name}`, locked: `mosaic fleet: agent ${name}` });
                const pid = await waitFor(`${name}'s pane after the kill at ${k}`, async () => {
                  const r = await sb.run(
                    ['tmux', '-L', socket, 'list-panes', '-t', `=${name}:0.0`, '-F', '#{pane_pid}'],
                    { reject: false },
                  );
                  return r.exitCode === 0 ? Number(r.stdout.trim()) : null;
                });
                expect(readlinkSync(`/proc/${pid}/cwd`), `${name}'s pane works in its worktree`).toBe(path);
              }
              const dry = await fleet(sb, ['reconcile', '--dry-run', '--detailed-exitcode']);
              expect(dry.code, `plan after the kill at ${k}:\n${dry.stdout}${dry.stderr}`).toBe(0);
              return false;
            },
            { env: GIT },
          );
          if (done) break;
          points++;
        }
        // At least every worktree action and the agents' starts were crash points (half of them in each file).
        expect(points).toBeGreaterThan(AGENTS.length);
      }, 900_000);
    },
  );
}
