/**
 * The package's own files the reconciler installs: unit templates (systemd/) and framework files
 * (framework/tools/fleet/*.sh, framework/fleet/roster.schema.json). Read once per process from the package
 * root and handed to the pure renderers, which never touch the filesystem themselves.
 */
import { readdir, readFile } from './fs-async.js';
import { join } from 'node:path';
import { InternalError } from './errors.js';
import { packageRoot } from './paths.js';
import { isInstallableFrameworkPath, ROSTER_SCHEMA_PATH, type FrameworkAssets } from './render/framework.js';
import {
  AGENT_TEMPLATE_UNIT,
  HOLDER_UNIT,
  RECONCILE_SERVICE,
  RECONCILE_TIMER,
  WATCH_SERVICE,
} from './base/names.js';
import type { UnitTemplates } from './render/units.js';
import type { ConvergenceTemplates } from './render/convergence.js';

export interface Assets {
  templates: UnitTemplates;
  convergence: ConvergenceTemplates;
  framework: FrameworkAssets;
}

let cached: Promise<Assets> | undefined;

/** Load (once) the unit templates and framework files shipped with this package. */
export function loadAssets(root: string = packageRoot()): Promise<Assets> {
  if (root !== packageRoot()) return readAssets(root);
  cached ??= readAssets(root).catch((error: unknown) => {
    // A failed read is not cached: the next caller gets a fresh attempt and the same clear error.
    cached = undefined;
    throw error;
  });
  return cached;
}

async function readAssets(root: string): Promise<Assets> {
  // A missing asset means a broken installation of the reconciler itself, not an operator mistake.
  const read = async (rel: string): Promise<string> => {
    try {
      return await readFile(join(root, rel), 'utf8');
    } catch (error) {
      throw new InternalError(`package file ${join(root, rel)} cannot be read; reinstall mosaic-fleet`, {
        cause: error,
      });
    }
  };
  const [holder, agent, reconcileService, reconcileTimer, watchService] = await Promise.all([
    read(join('systemd', HOLDER_UNIT)),
    read(join('systemd', AGENT_TEMPLATE_UNIT)),
    read(join('systemd', RECONCILE_SERVICE)),
    read(join('systemd', RECONCILE_TIMER)),
    read(join('systemd', WATCH_SERVICE)),
  ]);

  let scripts: string[];
  try {
    scripts = (await readdir(join(root, 'framework', 'tools', 'fleet')))
      .filter((f) => /\.(sh|json|ts|js)$/.test(f))
      .sort();
  } catch (error) {
    throw new InternalError(`package directory ${join(root, 'framework', 'tools', 'fleet')} cannot be read`, {
      cause: error,
    });
  }
  const relPaths = [...scripts.map((f) => `tools/fleet/${f}`), ROSTER_SCHEMA_PATH].filter(
    isInstallableFrameworkPath,
  );
  const files = await Promise.all(
    relPaths.map(async (relPath) => ({ relPath, content: await read(join('framework', relPath)) })),
  );
  return {
    templates: { holder, agent },
    convergence: { reconcileService, reconcileTimer, watchService },
    framework: { files },
  };
}
