/**
 * The register's lease carries the git source's commit a cycle converged to (src/register/cycle.ts
 * `publishAfterApply`, fed by the session: docs/hosts.md, "The git source"), against a real PostgreSQL.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createRunner } from '../../src/exec.js';
import { resolvePaths } from '../../src/paths.js';
import { withRegister } from '../../src/register/connect.js';
import { publishAfterApply } from '../../src/register/cycle.js';
import { readView } from '../../src/register/read.js';
import { migrate } from '../../src/register/schema.js';
import { agent, fleet, observedBuilder } from '../helpers/builders.js';
import { describePostgres, useDatabase } from '../helpers/postgres.js';

const VAR = 'FLEET_TEST_SOURCE_REGISTER_URL';

describePostgres('the git source in the register', () => {
  const db = useDatabase();
  let home: string;
  beforeAll(() => {
    home = mkdtempSync(join(tmpdir(), 'fleet-source-register-'));
  });
  afterAll(() => {
    delete process.env[VAR];
    rmSync(home, { recursive: true, force: true });
  });

  it("the lease's commit is the commit the cycle converged to, null without a git source", async () => {
    process.env[VAR] = db().dsn;
    await withRegister(db().dsn, migrate);
    const session = {
      desired: fleet([agent('a1')], {
        register: { urlEnv: VAR, urlFile: null, leaseSeconds: 60, takeoverAfterSeconds: 300 },
      }),
      observed: observedBuilder().build(),
      paths: resolvePaths({ home }),
      runner: createRunner(),
      plan: {},
    };
    const commit = 'c0ffee'.padEnd(40, '0');
    const say: string[] = [];
    await publishAfterApply(
      { ...session, source: { url: 'file:///r.git', ref: 'main', commit } },
      false,
      (l) => say.push(l),
    );
    expect(say).toEqual([]);
    const hosts = async () => (await withRegister(db().dsn, (c) => readView(c, null))).hosts;
    expect((await hosts()).map((h) => h.commit)).toEqual([commit]);
    await publishAfterApply(session, false, (l) => say.push(l));
    expect((await hosts()).map((h) => h.commit)).toEqual([null]);
  });
});
