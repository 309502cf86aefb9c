/**
 * An upgrade loses no restart (issue 20, defect 6), on the real sandbox. Four stub agents are installed by the
 * release of commit 7e6304b (2026-11-24), built from that commit here; their processes carry no digests and
 * none of the keys added since. Then the current release reconciles under `when-idle`, again and again:
 * every agent is restarted exactly once, at most `max_unavailable` (1) down at any moment, each ends with the
 * new keys in its /proc/PID/environ, the operator's own lines in the env files survive, and no
 * `--dry-run --detailed-exitcode` in between exits 0 while an agent still runs with the old environment.
 */
import { execFile, execFileSync } from 'node:child_process';
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { readMosaicEnviron } from '../../src/observe/proc.js';
import { REPO, runFleet, type CliResult } from '../helpers/cli.js';
import { uniqueSocket, waitFor } from '../helpers/fleet.js';
import { describeSandbox, sandboxRequired, type Sandbox } from '../sandbox.js';

const OLD = '7e6304b';
const AGENTS = ['u1', 'u2', 'u3', 'u4'];
/** Keys the current release manages that 7e6304b did not write: what the running agents lack. */
const NEW_KEYS = ['MOSAIC_AGENT_STATE', 'MOSAIC_AGENT_ARGS', 'MOSAIC_ENV_DIGEST'];

function commitPresent(): boolean {
  try {
    execFileSync('git', ['-C', REPO, 'cat-file', '-e', `${OLD}^{commit}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function run(argv: string[], cwd: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(argv[0] ?? '', argv.slice(1), { cwd, maxBuffer: 64 * 1024 * 1024 }, (error, _out, stderr) =>
      error ? reject(new Error(`${argv.join(' ')} failed in ${cwd}: ${stderr}`)) : resolve(),
    );
  });
}

/** The old release's CLI, built from its own sources: `git archive`, this checkout's node_modules, its build. */
async function buildOld(dir: string): Promise<string> {
  await run(['sh', '-c', `git -C '${REPO}' archive ${OLD} | tar -x -C '${dir}'`], dir);
  symlinkSync(join(REPO, 'node_modules'), join(dir, 'node_modules'));
  // Its package.json's build script: tsc, then the standalone schema validator.
  await run(
    [process.execPath, join(REPO, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'],
    dir,
  );
  await run([process.execPath, 'scripts/build-validator.mjs'], dir);
  const bin = join(dir, 'bin', 'fleet.js');
  if (!existsSync(join(dir, 'dist', 'main.js')))
    throw new Error(`the ${OLD} build left no dist/main.js in ${dir}`);
  return bin;
}

function oldFleet(sb: Sandbox, bin: string, args: string[]): Promise<CliResult & { code: number }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [bin, ...args],
      { env: { ...sb.env, NO_COLOR: '1' }, timeout: 120_000 },
      (error, stdout, stderr) =>
        resolve({
          code: error ? (typeof error.code === 'number' ? error.code : 1) : 0,
          stdout,
          stderr,
          commands: [],
          mutating: [],
        }),
    );
  });
}

function fleet(sb: Sandbox, args: string[]): Promise<CliResult> {
  return runFleet(sb.env, args, { logDir: sb.root });
}

function roster(sb: Sandbox, socket: string, restart: string | null): string {
  return [
    'version: 1',
    `tmux: {socket_name: ${socket}}`,
    ...(restart === null ? [] : [`reconcile: {restart: {${restart}}}`]),
    `defaults: {working_directory: ${sb.root}}`,
    'agents:',
    ...AGENTS.flatMap((a) => [`  - name: ${a}`, '    runtime: stub', '    model_hint: m1']),
    '',
  ].join('\n');
}

/** Each agent's live pane pid on the socket (absent: down). */
async function panes(sb: Sandbox, socket: string): Promise<Map<string, number>> {
  const r = await sb.run(
    ['tmux', '-L', socket, 'list-panes', '-a', '-F', '#{session_name} #{pane_dead} #{pane_pid}'],
    {
      reject: false,
    },
  );
  const out = new Map<string, number>();
  for (const line of r.stdout.split('\n')) {
    const [name, dead, pid] = line.split(' ');
    if (name !== undefined && AGENTS.includes(name) && dead === '0') out.set(name, Number(pid));
  }
  return out;
}

/** Whether the process runs with the current release's environment (the keys 7e6304b never wrote). */
function hasNewEnvironment(pid: number): boolean {
  const env = readMosaicEnviron('/proc', pid) ?? {};
  return NEW_KEYS.every((k) => env[k] !== undefined);
}

const present = commitPresent();

describeSandbox(
  'an upgrade from 7e6304b restarts every agent once, by its policy, and forgets none',
  (sandbox) => {
    const socket = uniqueSocket('fleet-upg');
    let oldDir = '';
    let oldBin = '';

    beforeAll(async () => {
      if (!present) return;
      oldDir = mkdtempSync(join(tmpdir(), 'fleet-7e6304b-'));
      oldBin = await buildOld(oldDir);
    }, 300_000);

    afterAll(() => {
      if (oldDir !== '') rmSync(oldDir, { recursive: true, force: true });
    });

    it.skipIf(!present && !sandboxRequired())(
      'upgrades four agents installed by 7e6304b',
      async () => {
        if (!present) {
          throw new Error(
            `commit ${OLD} is not in this clone (${REPO}); the upgrade test needs the full history: git fetch --unshallow`,
          );
        }
        const sb = sandbox();
        mkdirSync(join(sb.paths.mosaicHome, 'fleet'), { recursive: true });
        const rosterPath = join(sb.paths.mosaicHome, 'fleet', 'roster.yaml');
        writeFileSync(rosterPath, roster(sb, socket, null));
        const installed = await oldFleet(sb, oldBin, ['reconcile']);
        expect(installed.code, `${installed.stdout}\n${installed.stderr}`).toBe(0);
        const before = await waitFor(
          'the old release’s agents running',
          async () => {
            const p = await panes(sb, socket);
            return p.size === AGENTS.length ? p : undefined;
          },
          30_000,
        );
        for (const [name, pid] of before) expect(hasNewEnvironment(pid), name).toBe(false);
        // The operator's own lines, which every rewrite must keep.
        for (const a of AGENTS) {
          appendFileSync(
            join(sb.paths.agentsDir, `${a}.env`),
            `# the operator's note for ${a}\nOPERATOR_TOKEN=keep-${a}\n`,
          );
        }

        // The current release, restarting running agents only when idle (the stub prints once a minute: idle after 2 s
        // of quiet), one at a time.
        writeFileSync(
          rosterPath,
          roster(sb, socket, 'policy: when-idle, settle_seconds: 2, max_unavailable: 1'),
        );
        const seen = new Map<string, Set<number>>(AGENTS.map((a) => [a, new Set([before.get(a) ?? 0])]));
        let sampling = true;
        let maxDown = 0;
        const sampler = (async () => {
          while (sampling) {
            const p = await panes(sb, socket);
            maxDown = Math.max(maxDown, AGENTS.filter((a) => !p.has(a)).length);
            for (const [name, pid] of p) seen.get(name)?.add(pid);
            await new Promise((r) => setTimeout(r, 25));
          }
        })();
        let converged = false;
        try {
          for (let cycle = 0; cycle < 12 && !converged; cycle++) {
            const r = await fleet(sb, ['reconcile']);
            expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
            // Settled: every agent back up, and quiet long enough to count as idle for the next run.
            await waitFor(
              'every agent up',
              async () => ((await panes(sb, socket)).size === AGENTS.length ? true : undefined),
              30_000,
            );
            await new Promise((r) => setTimeout(r, 2_500));
            const now = await panes(sb, socket);
            const old = AGENTS.filter((a) => !hasNewEnvironment(now.get(a) ?? 0));
            const dry = await fleet(sb, ['reconcile', '--dry-run', '--detailed-exitcode']);
            if (old.length > 0) {
              expect(dry.code, `${old.join(', ')} still run the old environment, yet:\n${dry.stdout}`).toBe(
                2,
              );
              for (const a of old)
                expect(dry.stdout, a).toMatch(
                  new RegExp(`${a}: (restart now: )?running agent: its environment differs`),
                );
            } else {
              converged = dry.code === 0;
            }
          }
        } finally {
          sampling = false;
          await sampler;
        }
        expect(converged, 'the fleet converged').toBe(true);
        expect(maxDown).toBeLessThanOrEqual(1);
        const after = await panes(sb, socket);
        for (const a of AGENTS) {
          // Exactly one restart: the old pane and the new one, nothing in between.
          expect([...(seen.get(a) ?? [])].sort(), a).toEqual([before.get(a), after.get(a)].sort());
          expect(after.get(a), a).not.toBe(before.get(a));
          const pid = after.get(a) ?? 0;
          expect(hasNewEnvironment(pid), a).toBe(true);
          const envFile = readFileSync(join(sb.paths.agentsDir, `${a}.env`), 'utf8');
          expect(envFile, a).toContain(`# the operator's note for ${a}\n`);
          expect(envFile, a).toContain(`OPERATOR_TOKEN=keep-${a}\n`);
          // And the agent itself has the operator's key: its process started from the file as it is now.
          expect(readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0'), a).toContain(
            `OPERATOR_TOKEN=keep-${a}`,
          );
        }
      },
      600_000,
    );
  },
);
