/**
 * `fleet ps --all-hosts | --host NAME` and `fleet history --all-hosts | --host NAME`: the register's view of
 * every host (docs/hosts.md). Read-only; exit 1 with one line when the register cannot be read.
 */
import type { GlobalOptions } from '../options.js';
import { UserError } from '../errors.js';
import { registerDsn, withRegister } from '../register/connect.js';
import { readHistory, readView } from '../register/read.js';
import { requireSchema } from '../register/schema.js';
import { hostsToJson, renderHostsTable } from '../render/hosts.js';
import { registerSettingsOf } from './register.js';

export interface HostsOptions extends GlobalOptions {
  json: boolean;
  allHosts?: boolean;
  host?: string;
}

export async function psHostsCommand(o: HostsOptions): Promise<number> {
  const dsn = await registerDsn(await registerSettingsOf(o));
  const view = await withRegister(dsn, async (c) => {
    await requireSchema(c);
    return readView(c, o.host ?? null);
  });
  if (o.host !== undefined && view.hosts.length === 0)
    throw new UserError(`the register knows no host named ${JSON.stringify(o.host)}`);
  process.stdout.write(o.json ? `${JSON.stringify(hostsToJson(view), null, 2)}\n` : renderHostsTable(view));
  return 0;
}

export async function historyHostsCommand(o: HostsOptions & { limit: string }): Promise<number> {
  const limit = Number.parseInt(o.limit, 10);
  if (!Number.isFinite(limit) || limit < 1)
    throw new UserError(`--limit must be a positive number, got "${o.limit}"`);
  const dsn = await registerDsn(await registerSettingsOf(o));
  const entries = await withRegister(dsn, async (c) => {
    await requireSchema(c);
    return readHistory(c, o.host ?? null, limit);
  });
  if (o.json) {
    process.stdout.write(`${JSON.stringify({ format_version: 1, entries }, null, 2)}\n`);
    return 0;
  }
  if (entries.length === 0) process.stdout.write('The register holds no journal entry yet.\n');
  for (const { host, entry } of entries) {
    const e = entry as {
      started_at: string;
      result: string;
      command: string;
      summary: { done: number; failed: number; not_run: number };
      actions: { message: string; outcome: string; error?: string }[];
    };
    const s = e.summary;
    process.stdout.write(
      `${e.started_at}  ${host}  ${e.result.toUpperCase().padEnd(6)} ${e.command}  (${s.done} done, ${s.failed} failed, ${s.not_run} not run)\n`,
    );
    for (const a of e.actions) {
      const mark = a.outcome === 'done' ? ' ' : a.outcome === 'failed' ? '!' : '-';
      process.stdout.write(`  ${mark} ${a.message}${a.error ? `: ${a.error}` : ''}\n`);
    }
  }
  return 0;
}
