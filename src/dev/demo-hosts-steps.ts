/**
 * The steps of `npm run demo:hosts`, in order (src/dev/demo-hosts.ts prints the headings and runs them): one
 * roster and a register; each host converging its share; the register's view of all of them; an agent moved
 * from h1 to h2 that never runs on both; h3 killed, its agents HOST-STALE, and one of them taken over by h1 only
 * after `takeover_after`.
 */
import type { RunResult } from '../exec.js';
import { healthy } from './demo-context.js';
import {
  condense,
  describeSamples,
  HOSTS,
  LEASE_S,
  sampleAgent,
  sessions,
  TAKEOVER_S,
  tmuxServerPid,
  type HostName,
  type HostsDemo,
  type SampleSummary,
} from './demo-hosts-context.js';
import type { DemoStep } from './demo-runner.js';

/** The agent moved between two live hosts, and the one moved off the dead host. */
const MOVED = { agent: 'cyd', from: 'h1', to: 'h2' } as const;
const TAKEN = { agent: 'ivy', from: 'h3', to: 'h1' } as const;
/** Cycles a host may need to start an agent it was waiting for: one claims, the next starts. */
const MOVE_CYCLES = 4;
const POLL_MS = 500;
const WAIT_MS = 30_000;

function expectOutput(text: string, pattern: RegExp, what: string): void {
  if (!pattern.test(text)) throw new Error(`${what}: the output does not say so:\n${text}`);
}

async function rosterAndRegister(h: HostsDemo): Promise<void> {
  h.writeRoster();
  h.write(h.s.dim('   $ cat ~/.config/mosaic/fleet/roster.yaml   (the same file on h1, h2 and h3)'));
  h.write(h.hosts.h1.indent(h.rosterText()));
  h.write();
  await h.hosts.h1.fleet(['validate']);
  h.write();
  await h.hosts.h1.fleet(['register', 'migrate']);
}

/** The same `fleet` command on every live host at once, as separate machines would run it; outputs in turn. */
async function onEveryHost(h: HostsDemo, args: readonly string[]): Promise<void> {
  const hosts = HOSTS.filter((host) => h.alive.has(host));
  const results = await Promise.all(hosts.map((host) => h.hosts[host].fleetQuiet(args)));
  h.check();
  for (const [i, host] of hosts.entries()) {
    const r = results[i];
    if (r !== undefined) h.hosts[host].present(args, r, condense);
    h.write();
  }
}

async function shares(h: HostsDemo): Promise<void> {
  h.write(
    h.s.dim(
      '   (The three hosts run each command at once, as three machines would; their outputs follow in turn. Long lists are cut, and the linger warning every command gives is left out: it is true of this machine, moot in a sandbox.)',
    ),
  );
  h.write();
  await onEveryHost(h, ['reconcile', '--yes']);
  // A host claims the agents of its share in one cycle and starts them in the next, once the claim is seen.
  h.write(h.s.dim('   (Each host claimed its three agents in the register; its next cycle starts them.)'));
  h.write();
  await onEveryHost(h, ['reconcile', '--yes']);
  await waitForShares(h);
  h.write();
  await onEveryHost(h, ['ps']);
}

/** Poll every host's `fleet ps --json` at once until each host's share is healthy. */
async function waitForShares(h: HostsDemo): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    h.check();
    const counts = await Promise.all(
      HOSTS.map(async (host) => {
        const rows = await h.hosts[host].ps();
        return h.share(host).filter((name) => {
          const row = rows.get(name);
          return row !== undefined && healthy(row);
        }).length;
      }),
    );
    const line = `waiting for heartbeats: ${HOSTS.map((host, i) => `${host} ${counts[i]}/${h.share(host).length}`).join(', ')}`;
    if (HOSTS.every((host, i) => counts[i] === h.share(host).length)) return h.progress.done(line);
    h.progress.update(line);
    if (Date.now() > deadline) {
      h.progress.done(line);
      throw new Error(`${line}: not done after ${WAIT_MS / 1000} s`);
    }
    await h.sleep(POLL_MS);
  }
}

async function allHosts(h: HostsDemo): Promise<void> {
  const r = await h.hosts.h2.fleet(['ps', '--all-hosts']);
  for (const agent of h.placement.keys()) expectOutput(r.stdout, new RegExp(`\\b${agent}\\b`), agent);
}

/** Reconcile `host` until `agent` runs there (one cycle claims, the next starts). */
async function reconcileUntilRunning(h: HostsDemo, host: HostName, agent: string): Promise<void> {
  for (let i = 0; i < MOVE_CYCLES; i++) {
    await h.hosts[host].fleet(['reconcile', '--yes'], condense);
    h.write();
    if ((await sessions(h.hosts[host])).includes(agent)) return;
  }
  throw new Error(`${agent} did not start on ${host} within ${MOVE_CYCLES} cycles`);
}

function showMove(h: HostsDemo, agent: string, from: HostName, to: HostName, why: string): void {
  h.write(h.s.dim(`   $ $EDITOR roster.yaml   (${why})`));
  h.write(`     - {name: ${agent}, runtime: stub, host: ${from}}`);
  h.write(`     + {name: ${agent}, runtime: stub, host: ${to}}`);
  h.write();
}

/**
 * Run `fn` while `agent` is sampled on these hosts' tmux servers, 50 ms apart; then say what was seen, and fail
 * if it ever ran on two hosts at once.
 */
async function sampled<T>(
  h: HostsDemo,
  agent: string,
  hosts: readonly HostName[],
  fn: () => Promise<T>,
): Promise<{ value: T; samples: SampleSummary }> {
  const sampler = sampleAgent(
    agent,
    hosts.map((host) => [host, h.hosts[host]] as const),
  );
  let value: T;
  try {
    value = await fn();
  } catch (error) {
    await sampler.stop();
    throw error;
  }
  const samples = await sampler.stop();
  const servers = `${hosts.map((host) => `${host}'s`).join(' and ')} tmux server${hosts.length > 1 ? 's' : ''}`;
  h.write(`   ${agent} sampled on ${servers}, 50 ms apart: ${describeSamples(samples)}`);
  if (samples.twice > 0) throw new Error(`${agent} ran on two hosts at once in ${samples.twice} samples`);
  return { value, samples };
}

async function move(h: HostsDemo): Promise<void> {
  const { agent, from, to } = MOVED;
  h.placement.set(agent, to);
  h.writeRoster();
  showMove(h, agent, from, to, 'the same change on every host');
  await sampled(h, agent, [from, to], async () => {
    const plan = await h.hosts[to].fleet(['reconcile', '--dry-run'], condense);
    expectOutput(plan.stdout, new RegExp(`${agent}: .*waits for ${from}`), `${to}'s plan waits for ${from}`);
    h.write();
    await h.hosts[from].fleet(['reconcile', '--yes'], condense);
    if ((await sessions(h.hosts[from])).includes(agent)) throw new Error(`${from} did not stop ${agent}`);
    h.write();
    await reconcileUntilRunning(h, to, agent);
    await h.hosts[to].waitFor(`waiting for ${agent}'s heartbeat on ${to}`, healthy, [agent]);
    h.write();
  });
}

/** Its manager and tmux server killed by their pids (its last cycle, the tick before this step, renewed its lease). */
async function killHost(h: HostsDemo, host: HostName): Promise<void> {
  const d = h.hosts[host];
  const tmuxPid = await tmuxServerPid(d);
  // Run from outside the host (a host does not kill itself): the plain prompt, not `h3$`.
  h.write(h.s.dim(`   $ kill -KILL ${d.sb.managerPid} ${tmuxPid}`));
  h.write(h.s.dim(`     (${host}'s systemd user manager and its tmux server: as if the machine were gone)`));
  process.kill(d.sb.managerPid, 'SIGKILL');
  process.kill(tmuxPid, 'SIGKILL');
  h.alive.delete(host);
  // Gone before anything is asked of the other hosts: its tmux server no longer answers.
  const deadline = Date.now() + WAIT_MS;
  while ((await sessions(d)).length > 0) {
    if (Date.now() > deadline) throw new Error(`${host}'s tmux server still answers after SIGKILL`);
    await h.sleep(50);
  }
  h.write();
}

interface HostView {
  hosts: { host: string; stale: boolean; valid_until: string }[];
}

/** The end of `host`'s lease when the register says it ran out (the register's clock); null while it runs. */
async function staleLeaseEnd(h: HostsDemo, host: HostName): Promise<number | null> {
  const r = await h.hosts.h1.fleetQuiet(['ps', '--all-hosts', '--json']);
  if (r.exitCode !== 0) throw new Error(`fleet ps --all-hosts --json exited ${r.exitCode}: ${r.stderr}`);
  const row = (JSON.parse(r.stdout) as HostView).hosts.find((x) => x.host === host);
  return row?.stale === true ? Date.parse(row.valid_until) : null;
}

async function showStale(h: HostsDemo, host: HostName, leaseEnd: number): Promise<void> {
  const at = new Date(leaseEnd).toISOString().slice(11, 19);
  h.progress.done(`${host}'s lease ran out at ${at} (the register's clock):`);
  const shown = await h.hosts.h1.fleet(['ps', '--all-hosts']);
  expectOutput(shown.stdout, new RegExp(`^${host}\\s+\\S+.*HOST-STALE`, 'm'), `${host}'s agents HOST-STALE`);
  h.write();
}

/** One cycle of every live host at once (as their timers would run them); `to`'s result is returned. */
async function cycle(h: HostsDemo, to: HostName, others: boolean): Promise<RunResult> {
  const hosts = [...h.alive].filter((host) => host === to || others);
  const results = await Promise.all(hosts.map((host) => h.hosts[host].fleetQuiet(['reconcile', '--yes'])));
  for (const [i, r] of results.entries()) {
    if (r.exitCode !== 0) throw new Error(`${hosts[i]}: fleet reconcile exited ${r.exitCode}: ${r.stderr}`);
  }
  const mine = results[hosts.indexOf(to)];
  if (mine === undefined) throw new Error(`${to} did not cycle`);
  return mine;
}

/**
 * The live hosts cycle (the taken-over agent's new host every round, the others often enough to keep their
 * leases) until the agent runs on its new host. Shown: the new host's first cycle and those that no longer wait
 * (the claim, the start), and `ps --all-hosts` once the dead host is stale. Returns the dead host's lease end.
 */
async function cycleUntilTakenOver(h: HostsDemo): Promise<number> {
  const { agent, from, to } = TAKEN;
  const deadline = Date.now() + (LEASE_S + TAKEOVER_S + 60) * 1000;
  let leaseEnd: number | null = null;
  let othersAt = 0;
  for (let round = 0; ; round++) {
    h.check();
    const roundStart = Date.now();
    const others = roundStart - othersAt > (LEASE_S * 1000) / 3;
    if (others) othersAt = roundStart;
    const known: number | null = leaseEnd;
    const [r, stale]: [RunResult, number | null] = await Promise.all([
      cycle(h, to, others),
      known === null ? staleLeaseEnd(h, from) : Promise.resolve(null),
    ]);
    if (leaseEnd === null && stale !== null) {
      leaseEnd = stale;
      await showStale(h, from, stale);
    }
    if (round === 0 || !r.stdout.includes(`waits for ${from}`)) {
      h.progress.done(`${to}'s cycle at ${new Date(roundStart).toISOString().slice(11, 19)}:`);
      h.hosts[to].present(['reconcile', '--yes'], r, condense);
      h.write();
    }
    if ((await sessions(h.hosts[to])).includes(agent)) {
      if (leaseEnd === null) throw new Error(`${to} started ${agent} before ${from}'s lease ran out`);
      return leaseEnd;
    }
    if (Date.now() > deadline) throw new Error(`${agent} did not start on ${to} in time`);
    const waited =
      leaseEnd === null ? '' : `; it ran out ${Math.round((Date.now() - leaseEnd) / 1000)} s ago`;
    h.progress.update(
      `h1 and h2 cycling (as their timers would); waiting for ${from}'s lease (${LEASE_S} s) to run out, then ${TAKEOVER_S} s more${waited}...`,
    );
    await h.sleep(Math.max(0, POLL_MS - (Date.now() - roundStart)));
  }
}

async function hostDies(h: HostsDemo): Promise<void> {
  const { agent, from, to } = TAKEN;
  await killHost(h, from);
  h.placement.set(agent, to);
  h.writeRoster(['h1', 'h2']);
  showMove(h, agent, from, to, `the operator moves ${agent} off the dead host`);
  // Only the new host is sampled: the dead one's tmux server is gone; the samples time the start.
  const { value: leaseEnd, samples: s } = await sampled(h, agent, [to], async () => {
    const plan = await h.hosts[to].fleet(['reconcile', '--dry-run'], condense);
    expectOutput(plan.stdout, new RegExp(`${agent}: .*waits for ${from}`), `${to}'s plan waits for ${from}`);
    h.write();
    return cycleUntilTakenOver(h);
  });
  const first = s.runs.find((r) => r.where === to);
  if (first === undefined) throw new Error(`the sampler never saw ${agent} on ${to}`);
  const after = (first.fromMs - leaseEnd) / 1000;
  h.write(
    `   ${agent} first seen on ${to} ${after.toFixed(1)} s after ${from}'s lease ran out (takeover_after ${TAKEOVER_S} s)`,
  );
  if (after < TAKEOVER_S) throw new Error(`${to} started ${agent} before takeover_after`);
  h.write();
  await h.hosts[to].waitFor(`waiting for ${agent}'s heartbeat on ${to}`, healthy, [agent]);
  // The register has what each host saw at its last cycle; one more (as the timers would) shows ivy running.
  await h.tick();
  h.write();
  await h.hosts.h2.fleet(['ps', '--all-hosts']);
  h.write();
}

/** A step that starts with a quiet cycle of every live host (their timers between two steps). */
function afterTick(run: (h: HostsDemo) => Promise<void>): (h: HostsDemo) => Promise<void> {
  return async (h) => {
    await h.tick();
    await run(h);
  };
}

export const HOSTS_STEPS: readonly DemoStep<HostsDemo>[] = [
  {
    title: 'One roster, three hosts, one register',
    why: 'Every host reads the same roster; `fleet register migrate` creates the fleet schema in the private PostgreSQL.',
    run: rosterAndRegister,
  },
  {
    title: 'Each host converges its share',
    why: 'h1, h2 and h3 each install and start only the agents whose host: is their name, and publish them to the register.',
    run: shares,
  },
  {
    title: 'One view of every host',
    why: '`fleet ps --all-hosts` on any host reads the register: all nine agents, each with its host.',
    run: afterTick(allHosts),
  },
  {
    title: `Move ${MOVED.agent} from ${MOVED.from} to ${MOVED.to}`,
    why: `${MOVED.to} waits until ${MOVED.from} has stopped ${MOVED.agent} and recorded that; both tmux servers are sampled throughout.`,
    run: afterTick(move),
  },
  {
    title: `${TAKEN.from} dies`,
    why: `Its agents turn HOST-STALE once its lease (${LEASE_S} s) runs out; ${TAKEN.agent}, moved to ${TAKEN.to}, starts there only after takeover_after (${TAKEOVER_S} s) more.`,
    run: afterTick(hostDies),
  },
];
