/**
 * `fleet register migrate`: create or upgrade the register's `fleet` schema (docs/hosts.md). The register is the
 * one the manifests name (`register:`), reached through the DSN in its environment variable or file.
 */
import type { GlobalOptions } from '../options.js';
import { UserError } from '../errors.js';
import { loadFleet } from '../engine/session.js';
import type { RegisterSettings } from '../model/desired.js';
import { resolvePaths } from '../paths.js';

/** The register settings of the manifests, or one clear line when they name none. */
export async function registerSettingsOf(o: GlobalOptions): Promise<RegisterSettings> {
  const paths = resolvePaths(o);
  const { desired } = await loadFleet(paths);
  if (desired.register === undefined)
    throw new UserError(`no manifest in ${paths.manifests} sets register: (docs/hosts.md)`);
  return desired.register;
}

export async function registerMigrateCommand(o: GlobalOptions): Promise<number> {
  const settings = await registerSettingsOf(o);
  const { registerDsn, withRegister } = await import('../register/connect.js');
  const { migrate } = await import('../register/schema.js');
  const { from, to } = await withRegister(await registerDsn(settings), migrate);
  process.stdout.write(
    from === to
      ? `The register's schema is up to date (version ${to}).\n`
      : `Migrated the register's schema from version ${from} to ${to}.\n`,
  );
  return 0;
}
