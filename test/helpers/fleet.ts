/**
 * Sandbox fixtures for observation tests: real agent units and real tmux sessions running the stub agent.
 *
 * The unit written here is a deliberately simple stand-in for the reconciler's rendered unit (a oneshot that
 * runs the product's own start-agent-session.sh with the agent's env file), so `ps` and `observe` can be tested
 * without the reconciler.
 */
import { randomBytes } from 'node:crypto';
import { chmod, copyFile, mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Sandbox } from '../sandbox.js';

export const REPO = resolve(import.meta.dirname, '..', '..');
const TOOLS = ['start-agent-session.sh', 'stub-agent.sh'];

/** A socket name no other test (or person) uses. */
export function uniqueSocket(prefix = 'fleet-test'): string {
  return `${prefix}-${randomBytes(4).toString('hex')}`;
}

export function testAgentTemplate(sb: Sandbox): string {
  return [
    '[Unit]',
    'Description=Mosaic test agent %i',
    '',
    '[Service]',
    'Type=oneshot',
    'RemainAfterExit=yes',
    `EnvironmentFile=${sb.paths.agentsDir}/%i.env`,
    `ExecStart=${sb.paths.toolsDir}/start-agent-session.sh %i`,
    '',
    '[Install]',
    'WantedBy=default.target',
    '',
  ].join('\n');
}

/** Copy the product's session scripts into the sandbox's tools dir and install the test agent template. */
export async function installAgentTemplate(sb: Sandbox): Promise<void> {
  await mkdir(sb.paths.toolsDir, { recursive: true });
  for (const tool of TOOLS) {
    const to = join(sb.paths.toolsDir, tool);
    await copyFile(join(REPO, 'framework', 'tools', 'fleet', tool), to);
    await chmod(to, 0o755);
  }
  await mkdir(sb.paths.agentsDir, { recursive: true });
  await mkdir(workDir(sb), { recursive: true });
  await sb.writeUnit('mosaic-agent@.service', testAgentTemplate(sb));
  await sb.systemctl('daemon-reload');
}

export function workDir(sb: Sandbox): string {
  return join(sb.root, 'work');
}

export interface TestAgentEnv {
  socket: string;
  /** Program the pane runs (default: the stub agent in the tools dir). */
  runtimeCommand?: string;
  runtime?: string;
  model?: string;
  /** Stub heartbeat interval in seconds (default 1). */
  heartbeatInterval?: number;
}

export async function writeAgentEnv(sb: Sandbox, name: string, e: TestAgentEnv): Promise<void> {
  const lines = [
    `MOSAIC_AGENT_NAME=${name}`,
    `MOSAIC_AGENT_RUNTIME=${e.runtime ?? 'stub'}`,
    `MOSAIC_AGENT_RUNTIME_COMMAND=${e.runtimeCommand ?? join(sb.paths.toolsDir, 'stub-agent.sh')}`,
    `MOSAIC_AGENT_MODEL=${e.model ?? ''}`,
    `MOSAIC_AGENT_WORKDIR=${workDir(sb)}`,
    `MOSAIC_TMUX_SOCKET=${e.socket}`,
    `MOSAIC_HOME=${sb.paths.mosaicHome}`,
    `MOSAIC_HEARTBEAT_INTERVAL=${e.heartbeatInterval ?? 1}`,
    '',
  ];
  await writeFile(join(sb.paths.agentsDir, `${name}.env`), lines.join('\n'));
}

/** Write a roster into `<home>/fleet/roster.yaml`. */
export async function writeRoster(sb: Sandbox, yaml: string, file = 'roster.yaml'): Promise<string> {
  const dir = join(sb.paths.mosaicHome, 'fleet');
  await mkdir(dir, { recursive: true });
  const path = join(dir, file);
  await writeFile(path, yaml);
  return path;
}

export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | null | undefined | false> | T | null | undefined | false,
  timeoutMs = 10_000,
  /** More to say on a timeout (e.g. a watcher's output so far). */
  detail: () => string = () => '',
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== null && v !== undefined && v !== false) return v;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      const more = detail();
      throw new Error(
        `timed out waiting for ${what}${last instanceof Error ? `: ${last.message}` : ''}${more ? `\n${more}` : ''}`,
      );
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Every session of a host's tmux socket (its holder included) with its pane's pid and whether it is dead; empty when no server runs. */
export async function panesOf(
  sb: Sandbox,
  socket: string,
): Promise<Map<string, { pid: number; dead: boolean }>> {
  const r = await sb.run(
    ['tmux', '-L', socket, 'list-panes', '-a', '-F', '#{session_name} #{pane_pid} #{pane_dead}'],
    { reject: false },
  );
  const out = new Map<string, { pid: number; dead: boolean }>();
  if (r.exitCode !== 0) return out;
  for (const line of r.stdout.split('\n').filter(Boolean)) {
    const [name, pid, dead] = line.split(' ');
    out.set(name ?? '', { pid: Number(pid), dead: dead === '1' });
  }
  return out;
}
