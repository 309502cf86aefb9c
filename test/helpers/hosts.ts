/**
 * Several hosts simulated on one machine for the register tests: each host a sandbox of its own (private systemd
 * user manager, tmux directory, home; its name through MOSAIC_HOST), the roster they read (one git repository
 * they all follow, or a copy per host), and the probes those tests need: a host's tmux sessions and pane pids, its tmux server's pid, `fleet` run on it, and
 * a watch-mode reconciler (`fleet reconcile --watch`) running on it as the host's own long-lived process.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FLEET_BIN, REPO, runFleet, type CliResult } from './cli.js';
import { panesOf } from './fleet.js';
import type { Sandbox } from '../sandbox.js';
import type { Remote } from './remote.js';

export interface Pane {
  pid: number;
  dead: boolean;
}

export interface Watcher {
  pid: number;
  output(): string;
  /** SIGTERM, and wait for the exit (a no-op once it exited). */
  stop(): Promise<void>;
  /** SIGKILL, and wait for the exit: the host's reconciler dies with the host. */
  kill(): Promise<void>;
}

export interface Host {
  name: string;
  sb: Sandbox;
  socket: string;
  fleet(...args: string[]): Promise<CliResult>;
  /** `fleet` with extra environment (another DSN, say). */
  fleetEnv(env: Record<string, string>, ...args: string[]): Promise<CliResult>;
  /** The agents' sessions on the host's fleet socket (no holder session); [] when no server runs. */
  sessions(): Promise<string[]>;
  /** Session name -> its pane's pid and whether it is dead; empty when no server runs. */
  panes(): Promise<Map<string, Pane>>;
  /** The pid of the tmux server of the fleet socket; null when none runs. */
  tmuxServerPid(): Promise<number | null>;
  /** Start `fleet reconcile --watch --interval S` on this host. */
  watch(intervalS: number): Watcher;
}

export function hostOf(name: string, sb: Sandbox, socket: string): Host {
  const logDir = sb.root;
  const panes = async (): Promise<Map<string, Pane>> => {
    const out = await panesOf(sb, socket);
    out.delete('_holder');
    return out;
  };
  return {
    name,
    sb,
    socket,
    fleet: (...args) => runFleet(sb.env, args, { logDir }),
    fleetEnv: (env, ...args) => runFleet({ ...sb.env, ...env }, args, { logDir }),
    panes,
    async sessions() {
      return [...(await panes()).keys()].sort();
    },
    async tmuxServerPid() {
      const r = await sb.run(['tmux', '-L', socket, 'display-message', '-p', '#{pid}'], { reject: false });
      const pid = Number(r.stdout.trim());
      return r.exitCode === 0 && Number.isInteger(pid) && pid > 1 ? pid : null;
    },
    watch: (intervalS) => startWatcher(sb, intervalS),
  };
}

function startWatcher(sb: Sandbox, intervalS: number): Watcher {
  let out = '';
  const child: ChildProcess = spawn(
    process.execPath,
    [FLEET_BIN, 'reconcile', '--watch', '--interval', String(intervalS)],
    { env: sb.env, cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  child.stdout?.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const end = async (signal: NodeJS.Signals): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    await exited;
  };
  return {
    pid: child.pid ?? -1,
    output: () => out,
    stop: () => end('SIGTERM'),
    kill: () => end('SIGKILL'),
  };
}

/**
 * The hosts follow one git repository (docs/hosts.md, "The git source"): each host's manifests directory holds only
 * its own small manifest naming the repository's `main`. The hosts' sandboxes must run with `remote.env` (git's
 * private configuration).
 */
export function followRepository(hosts: readonly Host[], remote: Remote): void {
  for (const h of hosts) {
    mkdirSync(h.sb.paths.manifests, { recursive: true });
    writeFileSync(
      join(h.sb.paths.manifests, 'source.yaml'),
      `version: 1\nsource: {git: "${remote.url}", ref: main}\n`,
    );
  }
}

/**
 * The roster, committed and pushed to the repository the hosts follow: the new commit. Each host takes it at its
 * next fetch: a `fleet reconcile` (by hand, the timer), a watcher's start, resync or manifest change.
 */
export function publishRoster(remote: Remote, text: string, message = 'roster'): string {
  return remote.push({ 'roster.yaml': text }, message);
}

/** The roster copied into each host's manifests directory: for tests of one host, or hosts reading different ones. */
export function copyRoster(hosts: readonly Host[], text: string): void {
  for (const h of hosts) {
    mkdirSync(h.sb.paths.manifests, { recursive: true });
    writeFileSync(join(h.sb.paths.manifests, 'roster.yaml'), text);
  }
}

/** `fleet ps --all-hosts --json`, parsed. */
export interface HostsView {
  now: string;
  hosts: { host: string; valid_until: string; stale: boolean; commit: string | null }[];
  agents: { host: string; agent: string; state: string; flags: string[]; pid: number | null }[];
}

export async function psAllHosts(h: Host): Promise<HostsView> {
  const r = await h.fleet('ps', '--all-hosts', '--json');
  if (r.code !== 0) throw new Error(`fleet ps --all-hosts on ${h.name} failed (${r.code}): ${r.stderr}`);
  return JSON.parse(r.stdout) as HostsView;
}
