/**
 * The register against a real PostgreSQL (a database of this file's own in the run's private cluster; an outage
 * test has a cluster of its own to stop and kill): migrations, a newer schema refused, only changed rows written,
 * nothing lost and nothing duplicated across an outage.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendJournal, type JournalEntry } from '../../src/apply/journal.js';
import { resolvePaths } from '../../src/paths.js';
import { withRegister } from '../../src/register/connect.js';
import { publishCycle } from '../../src/register/cycle.js';
import { publish, type Publication } from '../../src/register/publish.js';
import type { StatusRow } from '../../src/register/rows.js';
import { migrate, requireSchema, SCHEMA_VERSION, schemaVersion } from '../../src/register/schema.js';
import { agent, fleet, observedBuilder, SOCKET } from '../helpers/builders.js';
import { databaseIn, describePostgres, useDatabase, useOwnCluster } from '../helpers/postgres.js';

async function sql<T extends pg.QueryResultRow>(
  dsn: string,
  text: string,
  params: unknown[] = [],
): Promise<T[]> {
  const c = new pg.Client({ connectionString: dsn });
  c.on('error', () => undefined);
  await c.connect();
  try {
    return (await c.query<T>(text, params)).rows;
  } finally {
    await c.end();
  }
}

function entry(command: string): JournalEntry {
  const at = new Date().toISOString();
  return {
    format_version: 1,
    started_at: at,
    finished_at: at,
    command,
    pid: 1,
    result: 'ok',
    summary: { done: 1, failed: 0, not_run: 0 },
    actions: [],
  };
}

function row(agentName: string, state = 'idle'): StatusRow {
  return {
    agent: agentName,
    tenant_id: 't1',
    state,
    state_since: '2026-12-07T10:00:00.000Z',
    flags: [],
    pid: 42,
    unit: 'active/enabled',
    session: agentName,
    env_digest: 'e1',
    unit_digest: 'u1',
    spend_usd: null,
  };
}

function publication(agents: StatusRow[], journal: JournalEntry[], host = 'h1'): Publication {
  return {
    lease: { host, bootId: 'b', version: '0.1.0', commit: null, tenantId: 't1', leaseSeconds: 60 },
    agents,
    journal,
  };
}

describePostgres('the register', () => {
  const db = useDatabase();

  it('migrate creates the fleet schema at the current version, and a second migrate changes nothing', async () => {
    expect(await withRegister(db().dsn, schemaVersion)).toBe(0);
    expect(await withRegister(db().dsn, migrate)).toEqual({ from: 0, to: SCHEMA_VERSION });
    expect(await withRegister(db().dsn, migrate)).toEqual({ from: SCHEMA_VERSION, to: SCHEMA_VERSION });
    await withRegister(db().dsn, requireSchema);
    const tables = await sql<{ t: string }>(
      db().dsn,
      "SELECT table_name AS t FROM information_schema.tables WHERE table_schema = 'fleet' ORDER BY 1",
    );
    expect(tables.map((r) => r.t)).toEqual([
      'agent_status',
      'hosts',
      'journal',
      'ownership',
      'schema_version',
    ]);
  });

  it('publishes only what changed: the lease every cycle, an agent row or journal entry only when new or different', async () => {
    const journal = [entry('fleet reconcile'), entry('fleet restart a1')];
    const first = await withRegister(db().dsn, (c) =>
      publish(c, publication([row('a1'), row('a2'), row('a3')], journal)),
    );
    expect(first).toEqual({ rowsWritten: 1 + 3 + 2, journalPublished: 2 });
    // A no-op cycle: the lease only.
    const noop = await withRegister(db().dsn, (c) =>
      publish(c, publication([row('a1'), row('a2'), row('a3')], journal)),
    );
    expect(noop).toEqual({ rowsWritten: 1, journalPublished: 0 });
    // One agent changed state, one new journal entry: exactly those.
    journal.push(entry('fleet reconcile'));
    const changed = await withRegister(db().dsn, (c) =>
      publish(c, publication([row('a1', 'busy'), row('a2'), row('a3')], journal)),
    );
    expect(changed).toEqual({ rowsWritten: 1 + 1 + 1, journalPublished: 1 });
    // An agent that left the share: its row goes.
    const left = await withRegister(db().dsn, (c) =>
      publish(c, publication([row('a1', 'busy'), row('a2')], journal)),
    );
    expect(left).toEqual({ rowsWritten: 2, journalPublished: 0 });
    const rows = await sql<{ agent: string; state: string }>(
      db().dsn,
      "SELECT agent, state FROM fleet.agent_status WHERE host = 'h1' ORDER BY agent",
    );
    expect(rows).toEqual([
      { agent: 'a1', state: 'busy' },
      { agent: 'a2', state: 'idle' },
    ]);
    const seqs = await sql<{ seq: string; command: string }>(
      db().dsn,
      "SELECT seq::text, command FROM fleet.journal WHERE host = 'h1' ORDER BY seq",
    );
    expect(seqs).toEqual([
      { seq: '1', command: 'fleet reconcile' },
      { seq: '2', command: 'fleet restart a1' },
      { seq: '3', command: 'fleet reconcile' },
    ]);
  });

  it('refuses a register of a newer schema version, writing nothing', async () => {
    await sql(db().dsn, 'INSERT INTO fleet.schema_version (version) VALUES ($1)', [SCHEMA_VERSION + 1]);
    const newer = `register schema version ${SCHEMA_VERSION + 1} is newer than this fleet knows (${SCHEMA_VERSION}): upgrade fleet on this host`;
    await expect(withRegister(db().dsn, migrate)).rejects.toThrow(newer);
    await expect(withRegister(db().dsn, requireSchema)).rejects.toThrow(newer);
    const versions = await sql<{ v: number }>(
      db().dsn,
      'SELECT version AS v FROM fleet.schema_version ORDER BY 1',
    );
    expect(versions.map((r) => r.v)).toEqual([SCHEMA_VERSION, SCHEMA_VERSION + 1]);
  });
});

describePostgres('the register while its server is down', () => {
  const cluster = useOwnCluster();
  let home: string;
  let dsn: string;
  const VAR = 'FLEET_TEST_REGISTER_OUTAGE';

  beforeAll(async () => {
    home = mkdtempSync(join(tmpdir(), 'fleet-reg-'));
    dsn = (await databaseIn(cluster())).dsn;
    process.env[VAR] = dsn;
    await withRegister(dsn, migrate);
  });
  afterAll(() => {
    delete process.env[VAR];
    rmSync(home, { recursive: true, force: true });
  });

  const input = () => {
    const desired = fleet([agent('a1'), agent('a2')], {
      register: { urlEnv: VAR, urlFile: null, leaseSeconds: 60, takeoverAfterSeconds: 300 },
    });
    // A fixed pid: the same machine observed twice.
    const observed = observedBuilder()
      .unit('mosaic-agent@a1.service')
      .session(SOCKET, 'a1', { pid: 4242 })
      .build();
    return { desired, observed, paths: resolvePaths({ home }) };
  };

  for (const fault of ['stopped', 'killed with SIGKILL'] as const) {
    it(`says "register unreachable" once while it is ${fault}, then publishes what it missed exactly once`, async () => {
      const paths = input().paths;
      await appendJournal(paths.stateDir, entry(`before ${fault}`));
      const ok = await publishCycle(input());
      expect(ok.problem).toBeNull();
      if (fault === 'stopped') await cluster().stop();
      else await cluster().kill();
      await appendJournal(paths.stateDir, entry(`during 1 ${fault}`));
      const down1 = await publishCycle(input());
      expect(down1.problem?.kind).toBe('unreachable');
      expect(down1.notice).toMatch(/^register unreachable: /);
      await appendJournal(paths.stateDir, entry(`during 2 ${fault}`));
      const down2 = await publishCycle(input());
      expect(down2.problem?.kind).toBe('unreachable');
      expect(down2.notice).toBeNull();
      await cluster().start();
      const back = await publishCycle(input());
      expect(back.problem).toBeNull();
      // After a SIGKILL the test cluster (synchronous_commit=off) may also have lost the last commit before the
      // crash: then that entry is missing too, and is published again, since the register's own max(seq) says
      // where to resume.
      expect(back.notice).toMatch(
        fault === 'stopped'
          ? /^register reachable again: published 2 journal entries it missed$/
          : /^register reachable again: published [23] journal entries it missed$/,
      );
      const again = await publishCycle(input());
      expect(again).toEqual({
        published: { rowsWritten: 1, journalPublished: 0 },
        problem: null,
        notice: null,
      });
      const commands = await sql<{ command: string; n: string }>(
        dsn,
        "SELECT command, count(*)::text AS n FROM fleet.journal WHERE host = 'testhost' GROUP BY command ORDER BY min(seq)",
      );
      expect(
        commands
          .filter((c) => c.command.startsWith('during') && c.command.endsWith(fault))
          .map((c) => [c.command, c.n]),
      ).toEqual([
        [`during 1 ${fault}`, '1'],
        [`during 2 ${fault}`, '1'],
      ]);
      expect(commands.find((c) => c.command === `before ${fault}`)?.n).toBe('1');
      expect(commands.every((c) => c.n === '1')).toBe(true);
    });
  }
});

describe('no register', () => {
  it('publishes nothing and loads no PostgreSQL client', async () => {
    const out = await publishCycle({
      desired: fleet([agent('a1')]),
      observed: observedBuilder().build(),
      paths: resolvePaths({ home: '/nonexistent' }),
    });
    expect(out).toEqual({ published: null, problem: null, notice: null });
  });
});
