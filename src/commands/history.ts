/**
 * `fleet history [--json]`: what the reconciler did, from the apply journal.
 */
import type { GlobalOptions } from '../cli.js';
import { UserError } from '../errors.js';
import { readJournal } from '../apply/journal.js';
import { resolvePaths } from '../paths.js';

export async function historyCommand(o: GlobalOptions & { json: boolean; limit: string }): Promise<number> {
  const limit = Number.parseInt(o.limit, 10);
  if (!Number.isFinite(limit) || limit < 1)
    throw new UserError(`--limit must be a positive number, got "${o.limit}"`);
  const paths = resolvePaths(o);
  let all;
  try {
    all = await readJournal(paths.stateDir);
  } catch (error) {
    throw new UserError(`cannot read the journal in ${paths.stateDir}: ${(error as Error).message}`, 1, {
      cause: error,
    });
  }
  const entries = all.slice(-limit);
  if (o.json) {
    process.stdout.write(`${JSON.stringify({ format_version: 1, entries }, null, 2)}\n`);
    return 0;
  }
  if (entries.length === 0) {
    process.stdout.write('No reconcile has been applied in this home yet.\n');
    return 0;
  }
  for (const e of entries) {
    const s = e.summary;
    process.stdout.write(
      `${e.started_at}  ${e.result.toUpperCase().padEnd(6)} ${e.command}  (${s.done} done, ${s.failed} failed, ${s.not_run} not run)\n`,
    );
    for (const a of e.actions) {
      const mark = a.outcome === 'done' ? ' ' : a.outcome === 'failed' ? '!' : '-';
      process.stdout.write(`  ${mark} ${a.message}${a.error ? `: ${a.error}` : ''}\n`);
    }
  }
  return 0;
}
