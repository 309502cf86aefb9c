/**
 * A register that cannot be used does not stop local convergence (issue 24, bad input), against a real sandbox
 * and a real PostgreSQL: a role without rights, a role that may read but not write, a wrong DSN, and a register of
 * a newer schema version. Each gives one line, said once (not again on the next run), `fleet reconcile` still
 * exits 0 and converges the host: a new agent is started and a killed pane of an agent this host held at its last
 * contact is healed. The commands that only read the register (`ps --all-hosts`) exit 1 with that one line.
 * Then a role with exactly the rights docs/hosts.md grants a host publishes everything, and says so once.
 */
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { withRegister } from '../../src/register/connect.js';
import { migrate, SCHEMA_VERSION } from '../../src/register/schema.js';
import { waitFor } from '../helpers/fleet.js';
import { copyRoster, hostOf, type Host } from '../helpers/hosts.js';
import { describePostgres, useDatabase } from '../helpers/postgres.js';
import { sandboxRequired, sandboxUnavailableReason, startSandbox } from '../sandbox.js';

const SOCKET = 'badreg';

/**
 * `held0..3` are h1's through the register (one per case: a pane killed twice in a row would meet the crash-loop
 * back-off, which is not what is tested here); the `free` ones have no host: and never touch ownership.
 */
const HELD = ['held0', 'held1', 'held2', 'held3'];
function roster(free: readonly string[], late = false): string {
  return [
    'version: 1',
    `tmux: {socket_name: ${SOCKET}}`,
    'register: {url_env: FLEET_REGISTER_URL, lease: 60s, takeover_after: 5m}',
    'agents:',
    ...HELD.map((a) => `  - {name: ${a}, runtime: stub, host: h1}`),
    ...free.map((f) => `  - {name: ${f}, runtime: stub}`),
    // An agent of h1's never claimed yet: with a register that cannot be used, its start is held.
    ...(late ? ['  - {name: late, runtime: stub, host: h1}'] : []),
    '',
  ].join('\n');
}

describePostgres('a register that cannot be used: one line, local convergence unaffected', () => {
  const db = useDatabase();
  let h1: Host | undefined;
  let reason: string | null = null;
  const role = `norights_${process.pid}`;
  const reader = `reader_${process.pid}`;
  /** A host's role with exactly the rights docs/hosts.md grants one. */
  const hostRole = `host_${process.pid}`;
  const sql = async (text: string): Promise<void> => {
    const c = new pg.Client({ connectionString: db().dsn });
    await c.connect();
    try {
      await c.query(text);
    } finally {
      await c.end();
    }
  };
  const dsnAs = (user: string) => db().dsn.replace('postgresql://fleet@', `postgresql://${user}@`);

  beforeAll(async () => {
    reason = await sandboxUnavailableReason();
    if (reason !== null) {
      if (sandboxRequired()) throw new Error(`sandbox required but unavailable: ${reason}`);
      return;
    }
    await withRegister(db().dsn, migrate);
    // Roles are the cluster's, not the database's: named for this process, dropped in afterAll.
    await sql(`CREATE ROLE ${role} LOGIN`);
    await sql(`CREATE ROLE ${reader} LOGIN`);
    await sql(
      `GRANT USAGE ON SCHEMA fleet TO ${reader}; GRANT SELECT ON ALL TABLES IN SCHEMA fleet TO ${reader}`,
    );
    await sql(
      [
        `CREATE ROLE ${hostRole} LOGIN`,
        `GRANT USAGE ON SCHEMA fleet TO ${hostRole}`,
        `GRANT SELECT ON ALL TABLES IN SCHEMA fleet TO ${hostRole}`,
        `GRANT INSERT, UPDATE ON fleet.hosts, fleet.agent_status, fleet.ownership TO ${hostRole}`,
        `GRANT DELETE ON fleet.agent_status TO ${hostRole}`,
        `GRANT INSERT ON fleet.journal TO ${hostRole}`,
      ].join('; '),
    );
    h1 = hostOf(
      'h1',
      await startSandbox({ env: { MOSAIC_HOST: 'h1', FLEET_REGISTER_URL: db().dsn } }),
      SOCKET,
    );
  });
  afterAll(async () => {
    await h1?.sb.stop();
    if (reason === null) {
      for (const r of [reader, hostRole])
        await sql(`REVOKE ALL ON ALL TABLES IN SCHEMA fleet FROM ${r}; REVOKE ALL ON SCHEMA fleet FROM ${r}`);
      await sql(
        `DROP ROLE IF EXISTS ${role}; DROP ROLE IF EXISTS ${reader}; DROP ROLE IF EXISTS ${hostRole}`,
      );
    }
  });

  const live = async (h: Host, agent: string) => {
    const p = (await h.panes()).get(agent);
    return p !== undefined && !p.dead ? p : null;
  };

  it('holds its agent through the register first', async (ctx) => {
    if (reason !== null || h1 === undefined) return ctx.skip();
    copyRoster([h1], roster([]));
    // The first run claims the held ones, the second starts them.
    for (let i = 0; i < 2; i++) {
      const r = await h1.fleet('reconcile', '--yes');
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toBe('');
    }
    for (const a of HELD) expect(await live(h1, a), a).not.toBeNull();
  });

  /** `reads`: `ps --all-hosts` works with it (a role that may read is what a dashboard needs). */
  const cases: {
    name: string;
    env: () => string;
    line: RegExp;
    /** Why the plan holds the start of `late`, an agent of h1's the register never gave it. */
    held: string;
    reads?: boolean;
    before?: () => Promise<void>;
  }[] = [
    {
      name: 'a role without rights',
      env: () => dsnAs(role),
      line: /^fleet: register: permission denied for schema fleet$/,
      held: 'register: permission denied for schema fleet: not started until its ownership is confirmed',
    },
    {
      name: 'a role that may read but not write',
      env: () => dsnAs(reader),
      line: /^fleet: register: permission denied for table hosts$/,
      // It can read: the plan claims it, and the claim is refused with the publication.
      held: 'claims it first: no host holds it yet',
      reads: true,
    },
    {
      name: 'a wrong DSN',
      env: () => 'postgresql://fleet@/nodb?host=/nonexistent-socket-dir&port=5432',
      line: /^fleet: register unreachable: connect ENOENT /,
      held: 'register unreachable: not started until its ownership is confirmed',
    },
    {
      name: 'a register of a newer schema version',
      env: () => db().dsn,
      line: new RegExp(
        `^fleet: register schema version ${SCHEMA_VERSION + 1} is newer than this fleet knows \\(${SCHEMA_VERSION}\\): upgrade fleet on this host$`,
      ),
      held: `register schema version ${SCHEMA_VERSION + 1} is newer than this fleet knows (${SCHEMA_VERSION}): upgrade fleet on this host: not started until its ownership is confirmed`,
      before: () => sql(`INSERT INTO fleet.schema_version (version) VALUES (${SCHEMA_VERSION + 1})`),
    },
  ];

  cases.forEach((c, i) => {
    it(`${c.name}: one line, said once; a new agent is started and a killed pane healed`, async (ctx) => {
      if (reason !== null || h1 === undefined) return ctx.skip();
      const h = h1;
      await c.before?.();
      const env = { FLEET_REGISTER_URL: c.env() };
      const free = cases.slice(0, i + 1).map((_, k) => `free${k}`);
      copyRoster([h], roster(free, true));
      const held = `held${i}`;
      const killed = await live(h, held);
      expect(killed?.pid).toBeGreaterThan(1);
      process.kill(killed?.pid ?? 0, 'SIGKILL');
      await waitFor(`${held} pane dead`, async () => (await live(h, held)) === null, 10_000);

      const r = await h.fleetEnv(env, 'reconcile', '--yes');
      expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
      const lines = r.stderr.split('\n').filter(Boolean);
      expect(lines, r.stderr).toHaveLength(1);
      expect(lines[0]).toMatch(c.line);
      expect(await live(h, `free${i}`), r.stdout).not.toBeNull();
      const healed = await live(h, held);
      expect(healed, r.stdout).not.toBeNull();
      expect(healed?.pid).not.toBe(killed?.pid);
      expect(await live(h, 'late')).toBeNull();
      const dry = await h.fleetEnv(env, 'reconcile', '--dry-run');
      expect(dry.stdout.split('\n').find((l) => l.includes('late'))).toContain(c.held);
      // Said once: the next run converges as quietly as without a register.
      const again = await h.fleetEnv(env, 'reconcile', '--yes');
      expect(again.code).toBe(0);
      expect(again.stderr).toBe('');
      // Reading the register is what the command is for: one line, exit 1, unless it may read.
      const ps = await h.fleetEnv(env, 'ps', '--all-hosts');
      if (c.reads === true) {
        expect(ps.code, ps.stderr).toBe(0);
        expect(ps.stdout).toMatch(/^HOST\s+AGENT/);
        return;
      }
      expect(ps.code).toBe(1);
      expect(ps.stderr.split('\n').filter(Boolean)).toHaveLength(1);
      expect(ps.stderr.trimEnd()).toMatch(c.line);
    });
  });

  it('usable again, with a role of only the rights docs/hosts.md grants: says so once, publishes all', async (ctx) => {
    if (reason !== null || h1 === undefined) return ctx.skip();
    await sql(`DELETE FROM fleet.schema_version WHERE version > ${SCHEMA_VERSION}`);
    const env = { FLEET_REGISTER_URL: dsnAs(hostRole) };
    const r = await h1.fleetEnv(env, 'reconcile', '--yes');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/^fleet: register reachable again: published \d+ journal entries it missed\n$/);
    // That run claimed `late`; this one starts it, quietly.
    const next = await h1.fleetEnv(env, 'reconcile', '--yes');
    expect(next.code).toBe(0);
    expect(next.stderr).toBe('');
    expect(await live(h1, 'late')).not.toBeNull();
    const view = JSON.parse((await h1.fleetEnv(env, 'ps', '--all-hosts', '--json')).stdout) as {
      agents: { agent: string; state: string }[];
    };
    expect(view.agents.map((a) => `${a.agent} ${a.state}`)).toEqual([
      'free0 running',
      'free1 running',
      'free2 running',
      'free3 running',
      ...HELD.map((a) => `${a} running`),
      'late running',
    ]);
  });
});
