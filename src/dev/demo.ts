/**
 * `npm run demo`: the reconciler's main job in one command, against a real systemd user manager and real tmux
 * in a private sandbox (src/dev/sandbox.ts): install the canary fleet from a fresh home, break it three ways the
 * way a crash or an operator would, let one `fleet reconcile` name and heal exactly those drifts, and clean up.
 *
 * Every `fleet` step is the real CLI (`node bin/fleet.js ...`) run with the sandbox environment; its output is
 * shown as printed, except that the sandbox's temp dir is abbreviated and long diffs are trimmed. Nothing
 * outside the sandbox's temp dir is touched, and the sandbox is stopped on success, failure and Ctrl-C/SIGTERM.
 */
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { RunResult } from '../exec.js';
import { packageRoot } from '../paths.js';
import { sandboxStaticReason, startSandbox, type Sandbox } from './sandbox.js';

const SOCKET = 'mosaic-fleet';
const AGENTS = ['lead', 'coder0', 'reviewer0'] as const;
const WAIT_TIMEOUT_MS = 30_000;
const POLL_MS = 250;
/** A new file's diff is all `+` lines: its first content line says what it is, the rest is noise here. */
const CREATE_DIFF_LINES = 4;
/** An update's diff is the point of the plan; show it whole unless it is very long. */
const UPDATE_DIFF_LINES = 24;
/** Flags that mean something is wrong. BACKOFF only says a respawn just happened and the next would wait. */
const BAD_FLAGS = ['DRIFT', 'BOOT-ENABLE', 'STALE', 'DEAD', 'MISSING'];

/** Raised out of whatever the demo was doing when SIGINT/SIGTERM arrives. */
class Interrupted extends Error {
  constructor(readonly signal: NodeJS.Signals) {
    super(`interrupted by ${signal}`);
  }
}

interface PsAgent {
  name: string;
  flags: string[];
  heartbeat: { health: string };
}

interface Style {
  heading(s: string): string;
  dim(s: string): string;
  ok(s: string): string;
  bad(s: string): string;
}

function style(color: boolean): Style {
  const wrap =
    (open: string) =>
    (s: string): string =>
      color ? `\x1b[${open}m${s}\x1b[0m` : s;
  return { heading: wrap('1;36'), dim: wrap('2'), ok: wrap('32'), bad: wrap('1;31') };
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Long diffs trimmed. In plan text a diff is the block of 4-space-indented lines under an action line; under
 * `+ create` it is a whole new file. `repeat`: the plan was shown already (the apply prints it again), so only
 * the action lines stay.
 */
export function trimPlanDiffs(text: string, repeat = false): string {
  const out: string[] = [];
  let block: string[] = [];
  let limit = UPDATE_DIFF_LINES;
  const flush = (): void => {
    const keep = repeat ? 0 : limit;
    out.push(...block.slice(0, keep));
    const more = block.length - keep;
    if (more > 0) {
      out.push(repeat ? `    ... (${more}-line diff, shown in the dry run)` : `    ... (${more} more lines)`);
    }
    block = [];
  };
  for (const line of text.split('\n')) {
    if (line.startsWith('    ')) {
      block.push(line);
      continue;
    }
    flush();
    if (line.trim() !== '') limit = line.startsWith('+ create ') ? CREATE_DIFF_LINES : UPDATE_DIFF_LINES;
    out.push(line);
  }
  flush();
  return out.join('\n');
}

interface DemoIO {
  out: NodeJS.WriteStream;
  err: NodeJS.WriteStream;
  env: NodeJS.ProcessEnv;
}

/** The demo proper. Returns the exit code: 0 done, 1 failed, 128+n interrupted by signal n. */
export async function runDemo(
  io: DemoIO = { out: process.stdout, err: process.stderr, env: process.env },
): Promise<number> {
  const tty = io.out.isTTY === true;
  const s = style(tty && (io.env.NO_COLOR ?? '') === '');
  const pauseEnv = io.env.DEMO_PAUSE_MS;
  const pauseMs = pauseEnv !== undefined && /^\d+$/.test(pauseEnv) ? Number(pauseEnv) : tty ? 600 : 0;
  const write = (text = ''): void => {
    io.out.write(`${text}\n`);
  };

  const staticReason = sandboxStaticReason();
  if (staticReason !== null) {
    io.err.write(`demo: cannot run here: ${staticReason}\n`);
    return 1;
  }

  // Signals: the first stops the demo and cleans up; a second stops waiting for a clean manager exit; a third
  // leaves at once (whatever is left is in the temp dir named at the start).
  let interrupted: NodeJS.Signals | null = null;
  let signals = 0;
  let sandbox: Sandbox | null = null;
  let wake: (() => void) | null = null;
  const onSignal = (signal: NodeJS.Signals): void => {
    signals += 1;
    if (signals === 1) {
      interrupted = signal;
      io.err.write(`\n${s.bad(`${signal}:`)} stopping the demo and cleaning up (again to force)\n`);
      wake?.();
    } else if (signals === 2) {
      io.err.write(`${s.bad(`${signal}:`)} forcing: killing the sandbox's systemd manager\n`);
      sandbox?.forceStop();
    } else {
      io.err.write(
        `${s.bad(`${signal}:`)} leaving now; the sandbox may be left in ${sandbox?.root ?? '/tmp'}\n`,
      );
      process.exit(128 + (signal === 'SIGINT' ? 2 : 15));
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const check = (): void => {
    if (interrupted !== null) throw new Interrupted(interrupted);
  };
  /** Sleep that a signal cuts short. */
  const sleep = async (ms: number): Promise<void> => {
    check();
    if (ms > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, ms);
        function done(): void {
          clearTimeout(timer);
          wake = null;
          resolve();
        }
        wake = done;
      });
    }
    check();
  };

  let step = 0;
  const heading = async (title: string, why: string): Promise<void> => {
    if (step > 0) await sleep(pauseMs);
    check();
    step += 1;
    write();
    write(s.heading(`${step}. ${title}`));
    write(s.dim(`   ${why}`));
    write();
  };
  /** Progress on one line, rewritten in place on a TTY; a log (not a TTY) gets only the final line. */
  const progress = {
    update(text: string): void {
      if (tty) io.out.write(`\r\x1b[K   ${text}`);
    },
    done(text: string): void {
      if (tty) io.out.write(`\r\x1b[K`);
      write(`   ${text}`);
    },
  };

  let code = 0;
  try {
    progress.update('starting a private systemd user manager...');
    sandbox = await startSandbox({ tmpPrefix: 'fleet-demo-' });
    const sb = sandbox;
    progress.done(`starting a private systemd user manager... ${s.ok('ok')} (pid ${sb.managerPid})`);
    check();

    const home = sb.env.HOME ?? join(sb.root, 'home');
    const rootPattern = new RegExp(`(?<=^|[\\s'"(=])[ab]?${escapeRegExp(sb.root)}`, 'gm');
    const homePattern = new RegExp(`(?<=^|[\\s'"(=])[ab]?${escapeRegExp(home)}`, 'gm');
    /** The sandbox's home shown as ~ and the rest of its temp dir as $SANDBOX: paths a reader can take in. */
    const shorten = (text: string): string => text.replace(homePattern, '~').replace(rootPattern, '$SANDBOX');
    const indent = (text: string): string =>
      text
        .replace(/\n+$/, '')
        .split('\n')
        .map((l) => (l === '' ? '' : `   ${l}`))
        .join('\n');
    const showCommand = (argv: readonly string[]): void => write(s.dim(`   $ ${argv.join(' ')}`));

    write(s.dim(`   sandbox: ${sb.root} (removed at the end; shown below as $SANDBOX, its home as ~)`));
    write(s.dim(`   roster:  manifests/canary.yaml (three stub agents on tmux socket ${SOCKET})`));

    const fleetBin = join(packageRoot(), 'bin', 'fleet.js');
    const fleetRaw = (args: readonly string[]): Promise<RunResult> =>
      sb.run([process.execPath, fleetBin, ...args], {
        reject: false,
        timeoutMs: 120_000,
        cwd: home,
        // The CLI writes to a pipe here; NO_COLOR keeps its choice the same whatever the caller set.
        env: { NO_COLOR: '1' },
      });
    /** Run `fleet ARGS`, show its output indented; a non-zero exit fails the demo. */
    const fleet = async (args: readonly string[], shape: (t: string) => string = (t) => t) => {
      check();
      showCommand(['fleet', ...args]);
      const r = await fleetRaw(args);
      // Interrupted meanwhile: the output of a command cut short by the cleanup would only confuse.
      check();
      const text = shape(shorten(r.stdout + (r.stderr === '' ? '' : `\n${r.stderr}`)));
      write(indent(text));
      if (r.exitCode !== 0) throw new Error(`\`fleet ${args.join(' ')}\` exited with ${r.exitCode}`);
      return r;
    };
    const ps = async (): Promise<Map<string, PsAgent>> => {
      const r = await fleetRaw(['ps', '--json']);
      if (r.exitCode !== 0)
        throw new Error(`\`fleet ps --json\` exited with ${r.exitCode}: ${r.stderr.trim()}`);
      const doc = JSON.parse(r.stdout) as { agents: PsAgent[] };
      return new Map(doc.agents.map((a) => [a.name, a]));
    };
    /** Poll `fleet ps --json` until `ready` holds for each of `names`, showing how many do. */
    const waitFor = async (
      label: string,
      ready: (a: PsAgent) => boolean,
      names: readonly string[] = AGENTS,
    ): Promise<void> => {
      const deadline = Date.now() + WAIT_TIMEOUT_MS;
      let rows = new Map<string, PsAgent>();
      for (;;) {
        check();
        rows = await ps();
        const n = names.filter((name) => {
          const row = rows.get(name);
          return row !== undefined && ready(row);
        }).length;
        const line = `${label}... ${n}/${names.length}`;
        if (n === names.length) {
          progress.done(line);
          return;
        }
        progress.update(line);
        if (Date.now() > deadline) {
          progress.done(line);
          const state = names.map((name) => {
            const row = rows.get(name);
            return `${name}: ${row === undefined ? 'not listed' : `${row.flags.join(',') || 'ok'}, heartbeat ${row.heartbeat.health}`}`;
          });
          throw new Error(`${label}: not done after ${WAIT_TIMEOUT_MS / 1000} s (${state.join('; ')})`);
        }
        await sleep(POLL_MS);
      }
    };
    const healthy = (a: PsAgent): boolean =>
      a.heartbeat.health === 'healthy' && !a.flags.some((f) => BAD_FLAGS.includes(f));

    // The roster goes where an operator would put it: <mosaic home>/fleet/roster.yaml.
    const fleetDir = join(sb.paths.mosaicHome, 'fleet');
    mkdirSync(fleetDir, { recursive: true });
    writeFileSync(
      join(fleetDir, 'roster.yaml'),
      readFileSync(join(packageRoot(), 'manifests', 'canary.yaml')),
    );

    await heading(
      'Validate the roster',
      'The canary roster is copied into a fresh Mosaic home; `fleet validate` checks schema and semantics.',
    );
    await fleet(['validate']);

    await heading(
      'Plan from a fresh home (dry run)',
      'Nothing is installed yet: the plan creates the scripts, units and env files, then enables and starts. Changes nothing.',
    );
    await fleet(['reconcile', '--dry-run'], (t) => trimPlanDiffs(t));
    write();
    write(
      s.dim(
        '   (The linger warning is true of this machine: user units stop at logout unless linger is on. It does not matter inside the sandbox.)',
      ),
    );

    await heading(
      'Apply it',
      '`fleet reconcile` applies the same plan in one pass (one daemon-reload, one enable, one start), then the agents start writing heartbeats.',
    );
    await fleet(['reconcile'], (t) => trimPlanDiffs(t, true));
    write();
    await waitFor('waiting for heartbeats', healthy);
    write();
    await fleet(['ps']);

    await heading(
      'Break it three ways',
      "A crash, an operator disabling a unit, a hand edit of a managed setting (plus lines of the operator's own).",
    );
    const panePid = Number(
      (await sb.tmux(SOCKET, 'display-message', '-p', '-t', '=coder0:', '#{pane_pid}')).stdout.trim(),
    );
    // Never kill(0) or kill(-1): those would signal this process group, or every process we may signal.
    if (!Number.isInteger(panePid) || panePid <= 1)
      throw new Error(`coder0's pane pid is not usable: ${panePid}`);
    showCommand(['kill', '-KILL', String(panePid)]);
    write(s.dim(`     (the program in coder0's pane)`));
    process.kill(panePid, 'SIGKILL');

    const disable = ['systemctl', '--user', 'disable', 'mosaic-agent@lead.service'];
    showCommand(disable);
    const disabled = await sb.run(disable, { reject: false, timeoutMs: 30_000 });
    if (disabled.exitCode !== 0) throw new Error(`${disable.join(' ')} failed: ${disabled.stderr.trim()}`);
    write(indent(shorten(disabled.stderr + disabled.stdout)));

    const envPath = join(sb.paths.agentsDir, 'reviewer0.env');
    const envText = readFileSync(envPath, 'utf8');
    const model = /^MOSAIC_AGENT_MODEL=(.*)$/m.exec(envText)?.[1];
    if (model === undefined) throw new Error(`${envPath} has no MOSAIC_AGENT_MODEL line`);
    writeFileSync(
      envPath,
      `${envText.replace(/^MOSAIC_AGENT_MODEL=.*$/m, 'MOSAIC_AGENT_MODEL=hand-edited')}# site note\nMY_SETTING=kept\n`,
    );
    write(s.dim(`   $ $EDITOR ${shorten(envPath)}`));
    write(`     - MOSAIC_AGENT_MODEL=${model}`);
    write(`     + MOSAIC_AGENT_MODEL=hand-edited   (a key the reconciler manages)`);
    write(`     + # site note`);
    write(`     + MY_SETTING=kept                  (the operator's own lines)`);
    write();
    await waitFor(
      "waiting for tmux to report coder0's pane dead",
      (a) => a.flags.includes('DEAD') || a.flags.includes('MISSING'),
      ['coder0'],
    );
    write();
    await fleet(['ps']);

    await heading(
      'Plan again (dry run)',
      'The plan names exactly those three drifts: rewrite the env file, enable the unit, respawn the dead pane.',
    );
    await fleet(['reconcile', '--dry-run'], (t) => trimPlanDiffs(t));

    await heading('Reconcile', 'One run heals all three; only the agents that need it are touched.');
    await fleet(['reconcile'], (t) => trimPlanDiffs(t, true));
    write();
    await waitFor('waiting for healthy agents', healthy);
    write();
    await fleet(['ps']);
    const backingOff = [...(await ps()).values()].filter((a) => a.flags.includes('BACKOFF'));
    if (backingOff.length > 0) {
      write();
      write(
        s.dim(
          `   (BACKOFF on ${backingOff.map((a) => a.name).join(', ')}: just respawned, so a new crash would wait before the next respawn instead of looping. It clears by itself.)`,
        ),
      );
    }

    await heading(
      "The operator's lines survived",
      'The reconciler rewrote only its own key in reviewer0.env; the note and MY_SETTING are still there.',
    );
    const grep = [
      'grep',
      '-n',
      '-e',
      '^MOSAIC_AGENT_MODEL=',
      '-e',
      '^# site note',
      '-e',
      '^MY_SETTING=',
      envPath,
    ];
    write(
      s.dim(`   $ grep -n -e '^MOSAIC_AGENT_MODEL=' -e '^# site note' -e '^MY_SETTING=' ${shorten(envPath)}`),
    );
    const found = await sb.run(grep, { reject: false });
    write(indent(found.stdout));
    if (!/# site note\n\d+:MY_SETTING=kept/.test(found.stdout) || found.stdout.includes('hand-edited')) {
      throw new Error(`reviewer0.env does not read as expected after the reconcile:\n${found.stdout}`);
    }

    await heading('History', 'Every apply is journaled: what was done, in order, and whether it worked.');
    await fleet(['history']);
    write();
  } catch (error) {
    if (error instanceof Interrupted || interrupted !== null) {
      code = 128 + ((interrupted ?? 'SIGINT') === 'SIGINT' ? 2 : 15);
    } else if (sandbox === null) {
      // The sandbox never came up (e.g. mount refused in a container): one line says why.
      code = 1;
      const message = error instanceof Error ? error.message : String(error);
      progress.done('starting a private systemd user manager... failed');
      io.err.write(`demo: cannot run here: ${message.split('\n')[0] ?? message}\n`);
    } else {
      code = 1;
      const message = error instanceof Error ? error.message : String(error);
      io.err.write(`\n${s.bad('demo failed:')} ${message}\n`);
    }
  } finally {
    if (sandbox !== null) {
      progress.update('cleaning up: stopping the sandbox (manager, tmux servers, cgroups, temp dir)...');
      await sandbox.stop();
      progress.done(
        `cleaning up: stopping the sandbox (manager, tmux servers, cgroups, temp dir)... ${s.ok('done')}`,
      );
    }
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  if (code === 0) {
    write();
    write(s.ok('Demo done: the fleet was installed, broken three ways and healed by one reconcile.'));
  }
  return code;
}

// Run when executed (`node dist/dev/demo.js`), not when imported.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await runDemo();
}
