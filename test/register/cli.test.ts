/**
 * The register through the built CLI: `fleet register migrate`, `fleet ps --all-hosts` / `--host` with HOST-STALE
 * for a host whose lease ran out, `fleet history --all-hosts`, and one line, exit 1, for a wrong DSN and for a
 * register of a newer schema version. That local convergence goes on with those (and with a role without rights)
 * needs a real host: test/register/bad-register.sandbox.test.ts.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { withRegister } from '../../src/register/connect.js';
import { publish } from '../../src/register/publish.js';
import type { StatusRow } from '../../src/register/rows.js';
import { SCHEMA_VERSION } from '../../src/register/schema.js';
import { runFleet } from '../helpers/cli.js';
import { describePostgres, useDatabase } from '../helpers/postgres.js';

function row(agent: string, state: string): StatusRow {
  return {
    agent,
    tenant_id: null,
    state,
    state_since: new Date().toISOString(),
    flags: [],
    pid: 100,
    unit: 'active/enabled',
    session: agent,
    env_digest: null,
    unit_digest: null,
    spend_usd: null,
  };
}

describePostgres('fleet register / ps --all-hosts / history --all-hosts (built CLI)', () => {
  const db = useDatabase();
  let dir: string;
  let env: Record<string, string | undefined>;
  const fleet = (args: string[]) => runFleet(env, args, { logDir: dir });

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'fleet-regcli-'));
    mkdirSync(join(dir, 'home', 'fleet'), { recursive: true });
    writeFileSync(
      join(dir, 'home', 'fleet', 'roster.yaml'),
      [
        'version: 1',
        'register:',
        '  url_env: FLEET_REGISTER_URL',
        '  lease: 60s',
        'agents:',
        '  - {name: a1, runtime: stub, host: h1}',
        '  - {name: b1, runtime: stub, host: h2}',
        '',
      ].join('\n'),
    );
    env = {
      PATH: process.env.PATH,
      HOME: dir,
      MOSAIC_HOME: join(dir, 'home'),
      XDG_CONFIG_HOME: join(dir, 'config'),
      FLEET_REGISTER_URL: db().dsn,
    };
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('migrates the register, then says it is up to date', async () => {
    const first = await fleet(['register', 'migrate']);
    expect(first).toMatchObject({
      code: 0,
      stdout: `Migrated the register's schema from version 0 to ${SCHEMA_VERSION}.\n`,
    });
    const second = await fleet(['register', 'migrate']);
    expect(second.stdout).toBe(`The register's schema is up to date (version ${SCHEMA_VERSION}).\n`);
  });

  it("shows every host's agents, HOST-STALE for a host whose lease ran out", async () => {
    const entry = {
      format_version: 1 as const,
      started_at: '2026-12-07T10:00:00.000Z',
      finished_at: '2026-12-07T10:00:01.000Z',
      command: 'fleet reconcile',
      pid: 1,
      result: 'ok' as const,
      summary: { done: 1, failed: 0, not_run: 0 },
      actions: [
        {
          kind: 'start',
          target: 'x',
          message: 'started mosaic-agent@b1.service',
          reason: 'r',
          outcome: 'done' as const,
        },
      ],
    };
    const lease = (host: string, leaseSeconds: number) => ({
      host,
      bootId: 'b',
      version: '0.1.0',
      commit: null,
      tenantId: null,
      leaseSeconds,
    });
    await withRegister(db().dsn, (c) =>
      publish(c, { lease: lease('h1', 600), agents: [row('a1', 'idle')], journal: [] }),
    );
    // h2's lease is already over (0 s).
    await withRegister(db().dsn, (c) =>
      publish(c, { lease: lease('h2', 0), agents: [row('b1', 'busy')], journal: [entry] }),
    );
    const ps = await fleet(['ps', '--all-hosts']);
    expect(ps.code).toBe(0);
    const lines = ps.stdout.split('\n');
    expect(lines[0]).toMatch(/^HOST\s+AGENT\s+STATE/);
    expect(lines.find((l) => l.startsWith('h1'))).toMatch(/^h1\s+a1\s+idle\s.*\sok$/);
    expect(lines.find((l) => l.startsWith('h2'))).toMatch(/^h2\s+b1\s+busy\s.*\sHOST-STALE$/);
    const json = JSON.parse((await fleet(['ps', '--host', 'h2', '--json'])).stdout) as {
      agents: { host: string; agent: string; flags: string[] }[];
    };
    expect(json.agents).toEqual([
      expect.objectContaining({ host: 'h2', agent: 'b1', flags: ['HOST-STALE'] }),
    ]);
    const history = await fleet(['history', '--all-hosts']);
    expect(history.stdout).toContain('h2  OK     fleet reconcile');
    expect(history.stdout).toContain('started mosaic-agent@b1.service');
  });

  it('says one line and exits 1 for a wrong DSN and for a register of a newer schema version', async () => {
    const wrong = await runFleet(
      { ...env, FLEET_REGISTER_URL: 'postgresql://fleet@/nodb?host=/nonexistent-socket-dir&port=5432' },
      ['ps', '--all-hosts'],
      { logDir: dir },
    );
    expect(wrong.code).toBe(1);
    expect(wrong.stderr.trim().split('\n')).toHaveLength(1);
    expect(wrong.stderr).toMatch(/register unreachable/);
    const c = new pg.Client({ connectionString: db().dsn });
    await c.connect();
    await c.query('INSERT INTO fleet.schema_version (version) VALUES ($1)', [SCHEMA_VERSION + 1]);
    await c.end();
    for (const args of [
      ['ps', '--all-hosts'],
      ['register', 'migrate'],
    ]) {
      const newer = await fleet(args);
      expect(newer.code).toBe(1);
      expect(newer.stderr).toBe(
        `fleet: register schema version ${SCHEMA_VERSION + 1} is newer than this fleet knows (${SCHEMA_VERSION}): upgrade fleet on this host\n`,
      );
    }
  });
});
