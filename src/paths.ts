/**
 * Where things live (DOMAIN.md section 3). Resolved once from flags and the environment.
 */
import { homedir, hostname } from 'node:os';
import { join, resolve } from 'node:path';
import type { HostContext } from './model/desired.js';

export interface FleetPaths {
  userHome: string;
  /** `$MOSAIC_HOME`, `--home`, or `~/.config/mosaic`. */
  mosaicHome: string;
  /** `--manifests` (file or directory), default `<home>/fleet`. */
  manifests: string;
  /** Active user unit directory: `--unit-dir`, or `$XDG_CONFIG_HOME/systemd/user`. */
  unitDir: string;
  agentsDir: string;
  runDir: string;
  toolsDir: string;
  /** The reconciler's own bookkeeping: state file, journal, lock, backups. */
  stateDir: string;
  archiveDir: string;
}

export interface PathFlags {
  home?: string | undefined;
  manifests?: string | undefined;
  unitDir?: string | undefined;
}

export function resolvePaths(flags: PathFlags, env: NodeJS.ProcessEnv = process.env): FleetPaths {
  const userHome = env.HOME && env.HOME !== '' ? env.HOME : homedir();
  const xdgConfig =
    env.XDG_CONFIG_HOME && env.XDG_CONFIG_HOME !== '' ? env.XDG_CONFIG_HOME : join(userHome, '.config');
  const mosaicHome = resolve(
    flags.home ?? (env.MOSAIC_HOME && env.MOSAIC_HOME !== '' ? env.MOSAIC_HOME : join(xdgConfig, 'mosaic')),
  );
  const fleetDir = join(mosaicHome, 'fleet');
  return {
    userHome,
    mosaicHome,
    manifests: resolve(flags.manifests ?? fleetDir),
    unitDir: resolve(flags.unitDir ?? join(xdgConfig, 'systemd', 'user')),
    agentsDir: join(fleetDir, 'agents'),
    runDir: join(fleetDir, 'run'),
    toolsDir: join(mosaicHome, 'tools', 'fleet'),
    stateDir: join(fleetDir, 'reconciler'),
    archiveDir: join(fleetDir, 'archive'),
  };
}

/**
 * This host's name in the fleet: `$MOSAIC_HOST` (set by `--host-name`), else the machine's hostname. Agents'
 * `host:` is matched against it, and the register knows the host by it (docs/hosts.md).
 */
export function fleetHostName(env: NodeJS.ProcessEnv = process.env): string {
  const name = env.MOSAIC_HOST;
  return name !== undefined && name !== '' ? name : hostname();
}

export function hostContext(paths: FleetPaths): HostContext {
  return { userHome: paths.userHome, mosaicHome: paths.mosaicHome, hostname: fleetHostName() };
}

/** Where the package's own assets (framework/, systemd/, manifests/) are, from dist/ or src/. */
export function packageRoot(): string {
  return resolve(new URL('.', import.meta.url).pathname, '..');
}
