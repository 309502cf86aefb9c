/**
 * The real-runtime test bed: the agent runtimes installed by scripts/install-runtimes.sh (a cache outside
 * node_modules), our own model server on loopback, and the private systemd + tmux sandbox, with a temp HOME
 * prepared as an operator would (DOMAIN.md section 9). No real API key, no network beyond loopback.
 *
 * No vitest here, so a scratch script can start a bed too; test/runtimes/bed.ts adds the describe block.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startModelServer, type ModelServer } from '../fixtures/model-server.js';
import { runFleet, type CliResult } from '../helpers/cli.js';
import { uniqueSocket, waitFor } from '../helpers/fleet.js';
import { startSandbox, type Sandbox } from '../../src/dev/sandbox.js';
import { REPO } from '../helpers/cli.js';

export type RuntimeName = 'claude' | 'codex' | 'pi' | 'opencode';

/** Where scripts/install-runtimes.sh put the runtimes (it prints its own default, so both always agree). */
export function runtimesDir(): string {
  const fromEnv = process.env.FLEET_RUNTIMES_DIR;
  if (fromEnv) return fromEnv;
  return execFileSync('bash', [join(REPO, 'scripts', 'install-runtimes.sh'), '--print-dir'], {
    encoding: 'utf8',
  }).trim();
}

export function binDir(runtime: RuntimeName): string {
  return join(runtimesDir(), runtime, 'node_modules', '.bin');
}

/** Why these runtimes cannot be used here; null when they can. */
export function runtimesUnavailableReason(names: readonly RuntimeName[]): string | null {
  const missing = names.filter((n) => !existsSync(join(binDir(n), n)));
  if (missing.length === 0) return null;
  return `runtimes not installed: ${missing.join(', ')} (run scripts/install-runtimes.sh; looked in ${runtimesDir()})`;
}

export function runtimesRequired(): boolean {
  return process.env.FLEET_REQUIRE_RUNTIMES === '1';
}

/** A key that looks like one to the runtimes, and is nobody's. */
export const TEST_API_KEY = 'sk-fleet-test-0123456789abcdefghijklmnop';

export interface Bed {
  sb: Sandbox;
  server: ModelServer;
  socket: string;
  /** The sandbox HOME: the operator's own ~/.claude.json, ~/.codex, ~/.pi live here. */
  home: string;
  workDir(agent: string): string;
  /** Write the roster (one socket, the given agents) and each agent's operator env lines; create workdirs. */
  setup(
    agents: { name: string; runtime: RuntimeName; model?: string; host?: string }[],
    extraYaml?: string,
  ): Promise<void>;
  fleet(...args: string[]): Promise<CliResult>;
  /** `fleet ps --json` row of one agent. */
  ps(agent: string): Promise<PsRow>;
  /** Type a prompt the way a person does: the text, then Enter as a separate key. */
  type(agent: string, text: string): Promise<void>;
  keys(agent: string, ...keys: string[]): Promise<void>;
  capture(agent: string): Promise<string>;
  /** Wait until `fleet ps` shows the agent in `state` (read from the heartbeat the runtime's hooks wrote). */
  waitState(agent: string, state: string, timeoutMs?: number): Promise<PsRow>;
  heartbeat(agent: string): Record<string, string>;
}

export interface PsRow {
  name: string;
  flags: string[];
  drift_reason: string | null;
  state: { value: string; for_seconds: number | null; event: string | null; session: string | null } | null;
  heartbeat: { health: string; age_seconds: number | null };
  session: { exists: boolean | null; pane_pid: number | null; command: string | null; pane_dead: boolean };
}

function operatorEnv(runtime: RuntimeName, server: ModelServer): string[] {
  switch (runtime) {
    case 'claude':
      return [
        `ANTHROPIC_BASE_URL=${server.url}`,
        `ANTHROPIC_API_KEY=${TEST_API_KEY}`,
        'CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1',
        'DISABLE_AUTOUPDATER=1',
      ];
    case 'codex':
      return [`FLEET_TEST_KEY=${TEST_API_KEY}`];
    case 'pi':
      return ['PI_OFFLINE=1'];
    case 'opencode':
      return [
        'OPENCODE_DISABLE_AUTOUPDATE=1',
        'OPENCODE_DISABLE_MODELS_FETCH=1',
        'OPENCODE_DISABLE_LSP_DOWNLOAD=1',
      ];
  }
}

const DEFAULT_MODEL: Record<RuntimeName, string> = {
  claude: 'claude-sonnet-4-5',
  codex: 'm',
  pi: 'local/m',
  opencode: 'local/m',
};

/** The operator's own runtime configuration in HOME, as section 9 says each runtime needs it. */
async function prepareHome(home: string, server: ModelServer, workDirs: string[]): Promise<void> {
  const projects: Record<string, unknown> = {};
  for (const w of workDirs)
    projects[w] = { hasTrustDialogAccepted: true, hasCompletedProjectOnboarding: true };
  await writeFile(
    join(home, '.claude.json'),
    JSON.stringify({
      hasCompletedOnboarding: true,
      projects,
      customApiKeyResponses: { approved: [TEST_API_KEY.slice(-20)], rejected: [] },
    }),
  );
  await mkdir(join(home, '.codex'), { recursive: true });
  await writeFile(
    join(home, '.codex', 'config.toml'),
    [
      'model = "m"',
      'model_provider = "local"',
      '[model_providers.local]',
      'name = "local"',
      `base_url = "${server.url}/v1"`,
      'wire_api = "responses"',
      'env_key = "FLEET_TEST_KEY"',
      ...workDirs.flatMap((w) => [`[projects."${w}"]`, 'trust_level = "trusted"']),
      '',
    ].join('\n'),
  );
  await mkdir(join(home, '.pi', 'agent'), { recursive: true });
  await writeFile(
    join(home, '.pi', 'agent', 'models.json'),
    JSON.stringify({
      providers: {
        local: { baseUrl: server.url, api: 'anthropic-messages', apiKey: 'x', models: [{ id: 'm' }] },
      },
    }),
  );
  await mkdir(join(home, '.config', 'opencode'), { recursive: true });
  await writeFile(
    join(home, '.config', 'opencode', 'opencode.json'),
    JSON.stringify({
      $schema: 'https://opencode.ai/config.json',
      model: 'local/m',
      autoupdate: false,
      provider: {
        local: {
          npm: '@ai-sdk/openai-compatible',
          options: { baseURL: `${server.url}/v1`, apiKey: 'x' },
          models: { m: {} },
        },
      },
    }),
  );
}

/** For several beds as several hosts of one fleet (test/register/move-busy.runtime.sandbox.test.ts). */
export interface BedOptions {
  /** A model server shared with other beds: not closed by this bed's stop(). */
  server?: ModelServer;
  /** The tmux socket (default: a unique one), so that hosts can share one roster. */
  socket?: string;
  /** Where the agents' working directories are (default: in the sandbox), so that hosts can share them. */
  workRoot?: string;
  /** More environment for the sandbox (MOSAIC_HOST, a register's DSN). */
  env?: Record<string, string>;
}

export async function startBed(
  needs: readonly RuntimeName[],
  opts: BedOptions = {},
): Promise<{ bed: Bed; stop: () => Promise<void> }> {
  const server = opts.server ?? (await startModelServer());
  const ownServer = opts.server === undefined;
  const path = [...needs.map(binDir), process.env.PATH ?? '/usr/bin:/bin'].join(':');
  let sb: Sandbox;
  try {
    sb = await startSandbox({
      path,
      tmpPrefix: 'fleet-rt-',
      env: { MOSAIC_TICK_SECONDS: '2', ...opts.env },
    });
  } catch (error) {
    if (ownServer) await server.close();
    throw error;
  }
  // systemd gives units its own default PATH, not the one it was started with: put the runtimes on the user
  // manager's PATH the way an operator would (`systemctl --user set-environment`).
  await sb.systemctl('set-environment', `PATH=${path}`);
  const socket = opts.socket ?? uniqueSocket('fleet-rt');
  const home = sb.env.HOME ?? join(sb.root, 'home');
  const workDir = (agent: string): string => join(opts.workRoot ?? join(sb.root, 'work'), agent);
  const logDir = join(sb.root, 'logs');
  await mkdir(logDir, { recursive: true });
  const fleet = (...args: string[]): Promise<CliResult> =>
    runFleet(sb.env, args, { logDir, timeoutMs: 360_000 });
  const tmux = (...args: string[]) => sb.tmux(socket, ...args);
  const ps = async (agent: string): Promise<PsRow> => {
    const r = await fleet('ps', '--json', agent);
    if (r.code !== 0) throw new Error(`fleet ps failed (${r.code}): ${r.stderr}`);
    const doc = JSON.parse(r.stdout) as { agents: PsRow[] };
    const row = doc.agents.find((a) => a.name === agent);
    if (row === undefined) throw new Error(`no row for ${agent} in fleet ps`);
    return row;
  };
  const capture = async (agent: string): Promise<string> =>
    (await tmux('capture-pane', '-p', '-t', `=${agent}:0.0`)).stdout;
  const bed: Bed = {
    sb,
    server,
    socket,
    home,
    workDir,
    async setup(agents, extraYaml = '') {
      await mkdir(sb.paths.agentsDir, { recursive: true });
      for (const a of agents) {
        await mkdir(workDir(a.name), { recursive: true });
        const envFile = join(sb.paths.agentsDir, `${a.name}.env`);
        if (!existsSync(envFile)) {
          // The operator's own lines, written before the fleet ever ran: the reconciler merges its keys in.
          await writeFile(
            envFile,
            `# ${a.runtime} against the test model server\n${operatorEnv(a.runtime, server).join('\n')}\n`,
          );
          await chmod(envFile, 0o600);
        }
      }
      await prepareHome(
        home,
        server,
        agents.map((a) => workDir(a.name)),
      );
      const roster = [
        'version: 1',
        `tmux: {socket_name: ${socket}}`,
        extraYaml,
        'agents:',
        ...agents.flatMap((a) => [
          `  - name: ${a.name}`,
          `    runtime: ${a.runtime}`,
          `    model_hint: ${a.model ?? DEFAULT_MODEL[a.runtime]}`,
          `    working_directory: ${workDir(a.name)}`,
          ...(a.host === undefined ? [] : [`    host: ${a.host}`]),
        ]),
        '',
      ].join('\n');
      await mkdir(join(sb.paths.mosaicHome, 'fleet'), { recursive: true });
      await writeFile(join(sb.paths.mosaicHome, 'fleet', 'roster.yaml'), roster);
    },
    fleet,
    ps,
    async type(agent, text) {
      const target = `=${agent}:0.0`;
      const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
      const startedAt = Date.now();
      // A TUI that reported itself ready (its start hook) may still be drawing, and drops keys until its input
      // box is up; on a loaded machine that takes seconds. So type, and wait to see the text echoed; type
      // once more if it never shows. Still nothing: Enter anyway, and the caller's own wait says what happened
      // (opencode draws its input box before its first-start install is done, and takes no keys until then).
      const probe = text.slice(0, 20);
      const count = (screen: string) => screen.split(probe).length - 1;
      const before = count(await capture(agent));
      let echoed = false;
      for (let attempt = 0; attempt < 2 && !echoed; attempt++) {
        await tmux('send-keys', '-t', target, '-l', text);
        const until = Date.now() + 6_000;
        while (Date.now() < until) {
          if (count(await capture(agent)) > before) {
            echoed = true;
            break;
          }
          await sleep(250);
        }
      }
      // Text followed at once by Enter is taken as a paste by some TUIs (codex) and not submitted.
      await sleep(700);
      const typed = await capture(agent);
      await tmux('send-keys', '-t', target, 'Enter');
      // An Enter can be lost the same way: submitted means the model server got the prompt or the screen moved
      // on. Neither within 8 s: press it once more (an empty Enter is nothing to every runtime here).
      if (!echoed) return;
      const until = Date.now() + 8_000;
      while (Date.now() < until) {
        if (server.requests.some((r) => r.atMs >= startedAt && r.text.includes(text))) return;
        if ((await capture(agent)) !== typed) return;
        await sleep(250);
      }
      await tmux('send-keys', '-t', target, 'Enter');
    },
    async keys(agent, ...keys) {
      await tmux('send-keys', '-t', `=${agent}:0.0`, ...keys);
    },
    capture,
    async waitState(agent, state, timeoutMs = 60_000) {
      let last: PsRow | undefined;
      try {
        return await waitFor(
          `${agent} state ${state}`,
          async () => {
            last = await ps(agent);
            return last.state?.value === state ? last : undefined;
          },
          timeoutMs,
        );
      } catch (error) {
        const screen = await capture(agent).catch(() => '(no pane)');
        throw new Error(
          `${(error as Error).message}; last ps row: ${JSON.stringify(last)}; heartbeat: ${JSON.stringify(bed.heartbeat(agent))}\nscreen:\n${screen}`,
        );
      }
    },
    heartbeat(agent) {
      const file = join(sb.paths.runDir, `${agent}.hb`);
      if (!existsSync(file)) return {};
      return Object.fromEntries(
        readFileSync(file, 'utf8')
          .split('\n')
          .filter((l) => l.includes('='))
          .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
      );
    },
  };
  return {
    bed,
    stop: async () => {
      await sb.stop();
      if (ownServer) await server.close();
    },
  };
}
