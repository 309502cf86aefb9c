/**
 * The register's part of a reconcile or watch cycle, after apply (never before it: local convergence does not
 * wait for the register). Builds the publication from the cycle's observation and the host's journal, publishes
 * it, and decides what to say: a register problem once (not every cycle, not every timer run: the last problem
 * said is kept in `fleet/reconciler/register.json`), and once that it is reachable again. A fleet without
 * `register:` returns at once and never loads the PostgreSQL client.
 */
import { join } from 'node:path';
import { writeFileAtomic } from '../base/atomic.js';
import { readJournal } from '../apply/journal.js';
import { homeOfStateDir } from '../base/safe-path.js';
import { readFile } from '../fs-async.js';
import type { Plan } from '../model/plan.js';
import type { DesiredFleet } from '../model/desired.js';
import type { Observed } from '../model/observed.js';
import { packageRoot, type FleetPaths } from '../paths.js';
import { observeFor, type Session } from '../engine/session.js';
import { registerDsn, registerProblem, withRegister, type RegisterError } from './connect.js';
import { publish, type HostLease, type Published } from './publish.js';
import { statusRows } from './rows.js';
import { claimsOf } from './ownership.js';
import { releasesDue } from './observe.js';
import type { LastContact, OwnershipDecision } from '../model/register.js';
import { requireSchema } from './schema.js';
import { noticePath, readNotice, type NoticeState } from './notice.js';

export interface CycleInput {
  desired: DesiredFleet;
  observed: Observed;
  paths: FleetPaths;
  /** The manifest commit converged (git source), when known. */
  commit?: string | null;
  /** The plan's ownership decisions: its claims are made with the publication. */
  ownership?: readonly OwnershipDecision[];
}

export interface PublishOutcome {
  /** Null when nothing was published (no register, or a problem). */
  published: Published | null;
  problem: RegisterError | null;
  /** One line to say now, or null (a problem already said, or nothing to say). */
  notice: string | null;
}

let bootId: string | undefined;
let version: string | undefined;

async function lease(input: CycleInput, leaseSeconds: number): Promise<HostLease> {
  bootId ??= (await readFile('/proc/sys/kernel/random/boot_id', 'utf8').catch(() => 'unknown')).trim();
  version ??= (JSON.parse(await readFile(join(packageRoot(), 'package.json'), 'utf8')) as { version: string })
    .version;
  return {
    host: input.observed.hostname,
    bootId,
    version,
    commit: input.commit ?? null,
    tenantId: input.desired.tenantId,
    leaseSeconds,
  };
}

/** Publish this cycle; never throws for a register problem (that is the outcome's `problem`). */
export async function publishCycle(input: CycleInput): Promise<PublishOutcome> {
  const settings = input.desired.register;
  if (settings === undefined) return { published: null, problem: null, notice: null };
  let published: Published | null = null;
  let problem: RegisterError | null = null;
  try {
    const [dsn, journal, hostLease] = await Promise.all([
      registerDsn(settings),
      readJournal(input.paths.stateDir),
      lease(input, settings.leaseSeconds),
    ]);
    const agents = statusRows(input.desired, input.observed);
    published = await withRegister(dsn, async (client) => {
      await requireSchema(client);
      return publish(client, {
        lease: hostLease,
        agents,
        journal,
        ownership: {
          claims: claimsOf(input.ownership ?? []),
          releases: releasesDue(input.desired, input.observed),
        },
      });
    });
  } catch (error) {
    problem = registerProblem(error);
  }
  const contact: LastContact | null =
    published === null
      ? null
      : {
          held: [
            ...(input.ownership ?? []).flatMap((d) => (d.kind === 'hold' ? [d.agent] : [])),
            ...(published.claimed ?? []),
          ].sort(),
          safeUntilMs: Date.now() + (settings.leaseSeconds + settings.takeoverAfterSeconds) * 1000,
        };
  return { published, problem, notice: await noticeOnce(input.paths, problem, published, contact) };
}

/** What to say about this cycle, remembering what was said so a lasting problem is said once. */
async function noticeOnce(
  paths: FleetPaths,
  problem: RegisterError | null,
  published: Published | null,
  contact: LastContact | null,
): Promise<string | null> {
  const before = await readNotice(paths);
  const key = problem === null ? null : problem.kind === 'unreachable' ? 'unreachable' : problem.message;
  // Only ownership needs the contact; a fleet with no host: keeps no contact and writes only on a change.
  const keepContact = contact !== null && (contact.held.length > 0 || before.contact !== undefined);
  if (key === before.problem && !keepContact) return null;
  const next: NoticeState = {
    problem: key,
    ...(keepContact ? { contact } : before.contact ? { contact: before.contact } : {}),
  };
  try {
    await writeFileAtomic(
      noticePath(paths),
      `${JSON.stringify(next)}\n`,
      0o644,
      homeOfStateDir(paths.stateDir),
    );
  } catch {
    // Not remembering what was said only means saying it again next cycle.
  }
  if (key === before.problem) return null;
  if (problem !== null) return problem.message;
  const missed = published?.journalPublished ?? 0;
  return `register reachable again${missed > 0 ? `: published ${missed} journal ${missed === 1 ? 'entry' : 'entries'} it missed` : ''}`;
}

/**
 * After a cycle's apply: publish, and say what there is to say. When the cycle changed something, the machine is
 * observed again first, so the register shows what now runs, not what ran before the apply.
 */
export async function publishAfterApply(
  s: Pick<Session, 'desired' | 'observed' | 'paths' | 'runner' | 'source'> & {
    plan: Pick<Plan, 'ownership'>;
  },
  applied: boolean,
  say: (line: string) => void,
): Promise<PublishOutcome> {
  const observed = applied
    ? await observeFor(s.desired, s.paths, s.runner).catch(() => s.observed)
    : s.observed;
  const outcome = await publishCycle({
    desired: s.desired,
    observed,
    paths: s.paths,
    // The lease's `commit`: the git source's commit this cycle converged to (null without a git source).
    commit: s.source?.commit ?? null,
    ...(s.plan.ownership ? { ownership: s.plan.ownership } : {}),
  });
  if (outcome.notice !== null) say(outcome.notice);
  return outcome;
}

/** Watch mode's publish: the notice as a `register` event; a claim won wakes the next cycle at once. */
export async function publishInWatch(
  s: Pick<Session, 'desired' | 'observed' | 'paths' | 'runner' | 'source'> & {
    plan: Pick<Plan, 'ownership'>;
  },
  applied: boolean,
  log: (event: string, fields: Record<string, string>, text?: string) => void,
  wake: (why: string) => void,
): Promise<void> {
  const out = await publishAfterApply(s, applied, (line) => log('register', { notice: line }, 'register'));
  if ((out.published?.claimed ?? []).length > 0) wake('claimed');
}
