/**
 * What the steps of `npm run demo:hosts` (src/dev/demo-hosts-steps.ts) work with: three hosts, each a sandbox of
 * its own (private systemd user manager, tmux directory and home; its name from MOSAIC_HOST) with the demo's usual
 * context (src/dev/demo-context.ts), one private PostgreSQL cluster they share as the register, the one roster
 * every host reads, a sampler of two hosts' tmux servers, and the killing of a host.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { demoContext, SOCKET, type DemoContext, type DemoOutput } from './demo-context.js';
import type { DemoResource } from './demo-runner.js';
import { createDatabase, startCluster, type PgCluster } from './pg-cluster.js';
import { startSandbox, type Sandbox } from './sandbox.js';

export const HOSTS = ['h1', 'h2', 'h3'] as const;
export type HostName = (typeof HOSTS)[number];

/** Short, so that the death of a host shows within seconds; a real fleet keeps the defaults (60s, 5m). */
export const LEASE_S = 10;
export const TAKEOVER_S = 5;
const REGISTER_ENV = 'FLEET_REGISTER_URL';
const SAMPLE_MS = 50;

/** Each host's share at the start: three stub agents each. */
const FIRST_PLACEMENT: Record<string, HostName> = {
  ada: 'h1',
  bea: 'h1',
  cyd: 'h1',
  dan: 'h2',
  eve: 'h2',
  fay: 'h2',
  gus: 'h3',
  hal: 'h3',
  ivy: 'h3',
};

export interface HostsDemo extends DemoOutput {
  cluster: PgCluster;
  /** Each host's demo context: the real `fleet` CLI run in its sandbox, its prompt `h1$`. */
  hosts: Record<HostName, DemoContext>;
  /** The hosts still alive (a killed host is never asked anything again). */
  alive: Set<HostName>;
  /** Where the roster puts each agent now. */
  placement: Map<string, HostName>;
  /** The agents the roster puts on a host. */
  share(host: HostName): string[];
  /** Write the roster (from `placement`) where these hosts read it: `<mosaic home>/fleet/roster.yaml`. */
  writeRoster(to?: readonly HostName[]): void;
  rosterText(): string;
  /**
   * One quiet cycle of every live host at once, as their timers would run between two steps, so that no lease
   * runs out while a reader reads. Run only when the roster has not changed since the hosts' last cycle.
   */
  tick(): Promise<void>;
}

export function rosterText(placement: ReadonlyMap<string, HostName>): string {
  return [
    '# One roster for the whole fleet; every host converges the agents whose host: is its name.',
    'version: 1',
    'tmux: {socket_name: mosaic-fleet, holder_session: _holder}',
    `register: {url_env: ${REGISTER_ENV}, lease: ${LEASE_S}s, takeover_after: ${TAKEOVER_S}s}`,
    'reconcile: {restart: {policy: immediate}}',
    'agents:',
    ...[...placement].map(([name, host]) => `  - {name: ${name}, runtime: stub, host: ${host}}`),
    '',
  ].join('\n');
}

function firstLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split('\n')[0] ?? message;
}

/**
 * Start the register and the three hosts at once (initdb takes a few seconds), pushing each onto `resources` as
 * soon as it exists so that a failure or a signal halfway still stops it.
 */
export async function startHosts(out: DemoOutput, resources: DemoResource[]): Promise<HostsDemo> {
  out.progress.update(
    'starting a private PostgreSQL and three private systemd user managers (h1, h2, h3)...',
  );
  const clusterStarted = startCluster().then(async (cluster) => {
    resources.push({
      cleanup: `stopping PostgreSQL (pid ${cluster.pid() ?? '?'}) and removing its directory`,
      where: cluster.dir,
      stop: () => cluster.destroy(),
      force: () => void cluster.kill(),
    });
    await createDatabase(cluster.socketDir, 'fleet');
    return cluster;
  });
  const sandboxesStarted = Promise.allSettled(
    HOSTS.map((host) => startSandbox({ tmpPrefix: `fleet-demo-${host}-`, env: { MOSAIC_HOST: host } })),
  );
  const [cluster, settled] = await Promise.allSettled([clusterStarted, sandboxesStarted]);
  const sandboxes = settled.status === 'fulfilled' ? settled.value : [];
  const started = sandboxes.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  if (started.length > 0) {
    resources.push({
      cleanup: 'stopping the three hosts (managers, tmux servers, cgroups, temp dirs)',
      where: started.map((sb) => sb.root).join(', '),
      stop: async () => {
        await Promise.all(started.map((sb) => sb.stop()));
      },
      force: () => started.forEach((sb) => sb.forceStop()),
    });
  }
  if (cluster.status === 'rejected') throw new Error(`PostgreSQL: ${firstLine(cluster.reason)}`);
  const failed = sandboxes.find((r) => r.status === 'rejected');
  if (failed !== undefined) throw new Error(firstLine(failed.reason));
  if (started.length !== HOSTS.length) throw new Error('the sandboxes did not start');
  out.progress.done(
    `starting a private PostgreSQL and three private systemd user managers (h1, h2, h3)... ${out.s.ok('ok')}`,
  );
  out.check();
  return hostsDemo(out, cluster.value, started);
}

function hostsDemo(out: DemoOutput, cluster: PgCluster, sandboxes: Sandbox[]): HostsDemo {
  const dsn = cluster.dsn('fleet');
  const hosts = {} as Record<HostName, DemoContext>;
  for (const [i, host] of HOSTS.entries()) {
    const sb = sandboxes[i];
    if (sb === undefined) throw new Error(`no sandbox for ${host}`);
    // The DSN reaches each host's `fleet` through its environment, never through the (shared) roster.
    hosts[host] = demoContext(out, sb, {
      prompt: `${host}$`,
      rootName: `$${host.toUpperCase()}`,
      env: { [REGISTER_ENV]: dsn },
    });
  }
  const placement = new Map(Object.entries(FIRST_PLACEMENT));
  const demo: HostsDemo = {
    ...out,
    cluster,
    hosts,
    alive: new Set(HOSTS),
    placement,
    share: (host) => [...placement].filter(([, h]) => h === host).map(([name]) => name),
    rosterText: () => rosterText(placement),
    writeRoster: (to = HOSTS) => {
      for (const host of to) {
        const dir = join(hosts[host].sb.paths.mosaicHome, 'fleet');
        mkdirSync(dir, { recursive: true });
        writeFileSync(join(dir, 'roster.yaml'), rosterText(placement));
      }
    },
    tick: () => tick(demo),
  };
  return demo;
}

async function tick(h: HostsDemo): Promise<void> {
  const live = HOSTS.filter((host) => h.alive.has(host));
  const results = await Promise.all(live.map((host) => h.hosts[host].fleetQuiet(['reconcile', '--yes'])));
  for (const [i, r] of results.entries()) {
    if (r.exitCode !== 0) throw new Error(`${live[i]}: fleet reconcile exited ${r.exitCode}: ${r.stderr}`);
  }
}

/** The agent sessions on a host's tmux server now (none when the server is not running). */
export async function sessions(d: DemoContext): Promise<string[]> {
  const r = await d.sb.run(['tmux', '-L', SOCKET, 'list-sessions', '-F', '#{session_name}'], {
    reject: false,
    timeoutMs: 5_000,
  });
  if (r.exitCode !== 0) return [];
  return r.stdout.split('\n').filter((s) => s !== '' && s !== '_holder');
}

export interface SampleSummary {
  samples: number;
  /** From the first sample to the last (a busy machine answers slower than every 50 ms). */
  elapsedMs: number;
  /** Runs of the same answer, in order, with the time of their first sample: `h1 ×40`, `nowhere ×12`, `h2 ×30`. */
  runs: { where: string; count: number; fromMs: number }[];
  /** Samples in which the agent ran on more than one host. */
  twice: number;
}

/** Sample these hosts' tmux servers for `agent`, 50 ms apart (plus the time tmux takes to answer), until stopped. */
export function sampleAgent(
  agent: string,
  hosts: readonly (readonly [HostName, DemoContext])[],
): { stop(): Promise<SampleSummary> } {
  const summary: SampleSummary = { samples: 0, elapsedMs: 0, runs: [], twice: 0 };
  const startMs = Date.now();
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const fromMs = Date.now();
      const found = await Promise.all(hosts.map(async ([, d]) => (await sessions(d)).includes(agent)));
      const on = hosts.filter((_, i) => found[i] === true).map(([name]) => name);
      const where = on.length === 0 ? 'nowhere' : on.join('+');
      summary.samples += 1;
      summary.elapsedMs = Date.now() - startMs;
      if (on.length > 1) summary.twice += 1;
      const last = summary.runs[summary.runs.length - 1];
      if (last?.where === where) last.count += 1;
      else summary.runs.push({ where, count: 1, fromMs });
      await new Promise((resolve) => setTimeout(resolve, SAMPLE_MS));
    }
  })();
  return {
    stop: async () => {
      stopped = true;
      await loop;
      return summary;
    },
  };
}

export function describeSamples(s: SampleSummary): string {
  const runs = s.runs.map((r) => `${r.where} ×${r.count}`).join(' → ');
  return `${s.samples} samples in ${(s.elapsedMs / 1000).toFixed(1)} s: ${runs}; on two hosts at once: ${s.twice}`;
}

/**
 * `fleet` output made readable at three hosts' length: the linger warning left out (true of this machine, moot
 * in a sandbox; said once in step 2), and runs of more than five alike lines (`+ create`, `created`) cut to two.
 */
export function condense(text: string): string {
  const lines = text.split('\n').filter((l) => !l.includes('linger is off'));
  const out: string[] = [];
  const key = (l: string): string => {
    const m = /^(\s*)(\S+)(?: (\S+))?/.exec(l);
    if (m === null) return '';
    // A plan line starts with its marker (+, ~, >, !): the verb after it tells the lines apart.
    return `${m[1]}${m[2]}${(m[2] ?? '').length === 1 ? ` ${m[3] ?? ''}` : ''}`;
  };
  for (let i = 0; i < lines.length;) {
    const line = lines[i] ?? '';
    let j = i;
    while (line.trim() !== '' && j + 1 < lines.length && key(lines[j + 1] ?? '') === key(line)) j++;
    const run = j - i + 1;
    if (run > 5) {
      out.push(line, lines[i + 1] ?? '', `${/^\s*/.exec(line)?.[0] ?? ''}... (${run - 2} more)`);
    } else {
      // One blank line where the warning left two.
      for (const l of lines.slice(i, j + 1))
        if (!(l.trim() === '' && out[out.length - 1]?.trim() === '')) out.push(l);
    }
    i = j + 1;
  }
  return out.join('\n');
}

/** The pid of a host's tmux server (the one its agents run in). */
export async function tmuxServerPid(d: DemoContext): Promise<number> {
  const r = await d.sb.tmux(SOCKET, 'display-message', '-p', '#{pid}');
  const pid = Number(r.stdout.trim());
  // Never kill(0) or kill(-1): those would signal this process group, or every process we may signal.
  if (!Number.isInteger(pid) || pid <= 1)
    throw new Error(`tmux server pid is not usable: ${r.stdout.trim()}`);
  return pid;
}
