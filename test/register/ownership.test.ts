/**
 * Ownership by compare-and-set on the epoch, against a real PostgreSQL: of concurrent claimers from the same
 * epoch exactly one wins; a release lets the next host claim; a stale epoch can never win again.
 */
import { expect, it } from 'vitest';
import { withRegister } from '../../src/register/connect.js';
import { claim, readSnapshot, release } from '../../src/register/ownership.js';
import { migrate } from '../../src/register/schema.js';
import { describePostgres, useDatabase } from '../helpers/postgres.js';

describePostgres('ownership in the register', () => {
  const db = useDatabase();

  it('two hosts claiming a free agent at once: exactly one wins, again and again', async () => {
    await withRegister(db().dsn, migrate);
    for (let round = 0; round < 5; round++) {
      const agent = `free${round}`;
      const wins = await Promise.all(
        ['h1', 'h2', 'h3'].map((h) => withRegister(db().dsn, (c) => claim(c, h, agent, 0))),
      );
      expect(wins.filter(Boolean)).toHaveLength(1);
    }
  });

  it('a held agent: concurrent takeovers from the same epoch, one wins; the loser cannot win with the old epoch', async () => {
    await withRegister(db().dsn, (c) => claim(c, 'h1', 'x', 0));
    const snap = await withRegister(db().dsn, readSnapshot);
    expect(snap.ownership.x).toEqual({ agent: 'x', holder: 'h1', epoch: 1, released: false });
    const wins = await Promise.all(
      ['h2', 'h3'].map((h) => withRegister(db().dsn, (c) => claim(c, h, 'x', 1))),
    );
    expect(wins.filter(Boolean)).toHaveLength(1);
    const after = (await withRegister(db().dsn, readSnapshot)).ownership.x;
    expect(after?.epoch).toBe(2);
    const loser = after?.holder === 'h2' ? 'h3' : 'h2';
    expect(await withRegister(db().dsn, (c) => claim(c, loser, 'x', 1))).toBe(false);
  });

  it('a release is recorded once, by the holder only, and the next host claims from it', async () => {
    await withRegister(db().dsn, (c) => claim(c, 'h1', 'm', 0));
    expect(await withRegister(db().dsn, (c) => release(c, 'h2', ['m']))).toEqual([]);
    expect(await withRegister(db().dsn, (c) => release(c, 'h1', ['m']))).toEqual(['m']);
    expect(await withRegister(db().dsn, (c) => release(c, 'h1', ['m']))).toEqual([]);
    const row = (await withRegister(db().dsn, readSnapshot)).ownership.m;
    expect(row).toEqual({ agent: 'm', holder: 'h1', epoch: 1, released: true });
    expect(await withRegister(db().dsn, (c) => claim(c, 'h2', 'm', 1))).toBe(true);
    expect((await withRegister(db().dsn, readSnapshot)).ownership.m).toEqual({
      agent: 'm',
      holder: 'h2',
      epoch: 2,
      released: false,
    });
  });
});
