/**
 * The demo's steps, in order: each a title, why it matters, and a small function run against the sandbox
 * (src/dev/demo-context.ts). src/dev/demo.ts prints the headings and runs them.
 */
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../paths.js';
import { healthy, SOCKET, trimPlanDiffs, type DemoContext } from './demo-context.js';
import type { DemoStep } from './demo-runner.js';

/** The roster goes where an operator would put it: <mosaic home>/fleet/roster.yaml. */
export function installRoster(d: DemoContext): void {
  const fleetDir = join(d.sb.paths.mosaicHome, 'fleet');
  mkdirSync(fleetDir, { recursive: true });
  writeFileSync(join(fleetDir, 'roster.yaml'), readFileSync(join(packageRoot(), 'manifests', 'canary.yaml')));
}

function reviewerEnv(d: DemoContext): string {
  return join(d.sb.paths.agentsDir, 'reviewer0.env');
}

async function validate(d: DemoContext): Promise<void> {
  await d.fleet(['validate']);
}

async function planFresh(d: DemoContext): Promise<void> {
  await d.fleet(['reconcile', '--dry-run'], (t) => trimPlanDiffs(t));
  d.write();
  d.write(
    d.s.dim(
      '   (The linger warning is true of this machine: user units stop at logout unless linger is on. It does not matter inside the sandbox.)',
    ),
  );
}

async function apply(d: DemoContext): Promise<void> {
  await d.fleet(['reconcile'], (t) => trimPlanDiffs(t, true));
  d.write();
  await d.waitFor('waiting for heartbeats', healthy);
  d.write();
  await d.fleet(['ps']);
}

/** A crash: the program in coder0's pane killed. */
async function crashCoder(d: DemoContext): Promise<void> {
  const panePid = Number(
    (await d.sb.tmux(SOCKET, 'display-message', '-p', '-t', '=coder0:', '#{pane_pid}')).stdout.trim(),
  );
  // Never kill(0) or kill(-1): those would signal this process group, or every process we may signal.
  if (!Number.isInteger(panePid) || panePid <= 1)
    throw new Error(`coder0's pane pid is not usable: ${panePid}`);
  d.showCommand(['kill', '-KILL', String(panePid)]);
  d.write(d.s.dim(`     (the program in coder0's pane)`));
  process.kill(panePid, 'SIGKILL');
}

/** An operator disabling lead's unit. */
async function disableLead(d: DemoContext): Promise<void> {
  const disable = ['systemctl', '--user', 'disable', 'mosaic-agent@lead.service'];
  d.showCommand(disable);
  const disabled = await d.sb.run(disable, { reject: false, timeoutMs: 30_000 });
  if (disabled.exitCode !== 0) throw new Error(`${disable.join(' ')} failed: ${disabled.stderr.trim()}`);
  d.write(d.indent(d.shorten(disabled.stderr + disabled.stdout)));
}

/** A hand edit of a managed setting in reviewer0.env, plus lines of the operator's own. */
function editReviewer(d: DemoContext): void {
  const envPath = reviewerEnv(d);
  const envText = readFileSync(envPath, 'utf8');
  const model = /^MOSAIC_AGENT_MODEL=(.*)$/m.exec(envText)?.[1];
  if (model === undefined) throw new Error(`${envPath} has no MOSAIC_AGENT_MODEL line`);
  writeFileSync(
    envPath,
    `${envText.replace(/^MOSAIC_AGENT_MODEL=.*$/m, 'MOSAIC_AGENT_MODEL=hand-edited')}# site note\nMY_SETTING=kept\n`,
  );
  d.write(d.s.dim(`   $ $EDITOR ${d.shorten(envPath)}`));
  d.write(`     - MOSAIC_AGENT_MODEL=${model}`);
  d.write(`     + MOSAIC_AGENT_MODEL=hand-edited   (a key the reconciler manages)`);
  d.write(`     + # site note`);
  d.write(`     + MY_SETTING=kept                  (the operator's own lines)`);
  d.write();
}

async function breakIt(d: DemoContext): Promise<void> {
  await crashCoder(d);
  await disableLead(d);
  editReviewer(d);
  await d.waitFor(
    "waiting for tmux to report coder0's pane dead",
    (a) => a.flags.includes('DEAD') || a.flags.includes('MISSING'),
    ['coder0'],
  );
  d.write();
  await d.fleet(['ps']);
}

async function planAgain(d: DemoContext): Promise<void> {
  await d.fleet(['reconcile', '--dry-run'], (t) => trimPlanDiffs(t));
}

async function reconcile(d: DemoContext): Promise<void> {
  await d.fleet(['reconcile'], (t) => trimPlanDiffs(t, true));
  d.write();
  await d.waitFor('waiting for healthy agents', healthy);
  d.write();
  await d.fleet(['ps']);
  const backingOff = [...(await d.ps()).values()].filter((a) => a.flags.includes('BACKOFF'));
  if (backingOff.length > 0) {
    d.write();
    d.write(
      d.s.dim(
        `   (BACKOFF on ${backingOff.map((a) => a.name).join(', ')}: just respawned, so a new crash would wait before the next respawn instead of looping. It clears by itself.)`,
      ),
    );
  }
}

async function linesSurvived(d: DemoContext): Promise<void> {
  const envPath = reviewerEnv(d);
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
  d.write(
    d.s.dim(
      `   $ grep -n -e '^MOSAIC_AGENT_MODEL=' -e '^# site note' -e '^MY_SETTING=' ${d.shorten(envPath)}`,
    ),
  );
  const found = await d.sb.run(grep, { reject: false });
  d.write(d.indent(found.stdout));
  if (!/# site note\n\d+:MY_SETTING=kept/.test(found.stdout) || found.stdout.includes('hand-edited')) {
    throw new Error(`reviewer0.env does not read as expected after the reconcile:\n${found.stdout}`);
  }
}

async function history(d: DemoContext): Promise<void> {
  await d.fleet(['history']);
  d.write();
}

export const DEMO_STEPS: readonly DemoStep<DemoContext>[] = [
  {
    title: 'Validate the roster',
    why: 'The canary roster is copied into a fresh Mosaic home; `fleet validate` checks schema and semantics.',
    run: validate,
  },
  {
    title: 'Plan from a fresh home (dry run)',
    why: 'Nothing is installed yet: the plan creates the scripts, units and env files, then enables and starts. Changes nothing.',
    run: planFresh,
  },
  {
    title: 'Apply it',
    why: '`fleet reconcile` applies the same plan in one pass (one daemon-reload, one enable, one start), then the agents start writing heartbeats.',
    run: apply,
  },
  {
    title: 'Break it three ways',
    why: "A crash, an operator disabling a unit, a hand edit of a managed setting (plus lines of the operator's own).",
    run: breakIt,
  },
  {
    title: 'Plan again (dry run)',
    why: 'The plan names exactly those three drifts: rewrite the env file, enable the unit, respawn the dead pane.',
    run: planAgain,
  },
  {
    title: 'Reconcile',
    why: 'One run heals all three; only the agents that need it are touched.',
    run: reconcile,
  },
  {
    title: "The operator's lines survived",
    why: 'The reconciler rewrote only its own key in reviewer0.env; the note and MY_SETTING are still there.',
    run: linesSurvived,
  },
  {
    title: 'History',
    why: 'Every apply is journaled: what was done, in order, and whether it worked.',
    run: history,
  },
];
