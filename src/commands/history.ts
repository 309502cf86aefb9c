/**
 * `fleet history [-n N] [--json]`: what the reconciler and the operator verbs did, from the journal: newest first,
 * each with who ran it (a person, the timer, watch mode; entries written before that was recorded say unknown).
 */
import type { GlobalOptions } from '../options.js';
import { UserError } from '../errors.js';
import { readJournal, type JournalEntry } from '../apply/journal.js';
import { resolvePaths } from '../paths.js';
import { ranByText, type RanBy } from '../engine/verbs.js';

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
  // Newest first: the last entry appended is the latest run.
  const entries = all.slice(-limit).reverse() as (JournalEntry & {
    ran_by?: RanBy;
    source?: { commit?: string };
  })[];
  if (o.json) {
    process.stdout.write(`${JSON.stringify({ format_version: 1, entries }, null, 2)}\n`);
    return 0;
  }
  if (entries.length === 0) {
    process.stdout.write('Nothing has been applied in this home yet.\n');
    return 0;
  }
  for (const e of entries) {
    const s = e.summary;
    // The git source's commit the run converged to (docs/hosts.md), when the host follows one.
    const commit = typeof e.source?.commit === 'string' ? `  manifests ${e.source.commit.slice(0, 12)}` : '';
    process.stdout.write(
      `${e.started_at}  ${e.result.toUpperCase().padEnd(6)} ${e.command}  by ${ranByText(e.ran_by)}  (${s.done} done, ${s.failed} failed, ${s.not_run} not run)${commit}\n`,
    );
    for (const a of e.actions) {
      const mark = a.outcome === 'done' ? ' ' : a.outcome === 'failed' ? '!' : '-';
      // The reason too: each step a budget takes (a pause, a downgrade, a resume) says why (docs/spend.md).
      const why = a.reason ? ` (${a.reason})` : '';
      process.stdout.write(`  ${mark} ${a.message}${why}${a.error ? `: ${a.error}` : ''}\n`);
    }
  }
  return 0;
}
