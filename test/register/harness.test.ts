import pg from 'pg';
import { expect, it } from 'vitest';
import { describePostgres, useDatabase } from '../helpers/postgres.js';

describePostgres('the private PostgreSQL of a test run', () => {
  const db = useDatabase();
  it('gives this file a database of its own, over a unix socket', async () => {
    const c = new pg.Client({ connectionString: db().dsn });
    c.on('error', () => undefined);
    await c.connect();
    try {
      const r = await c.query<{ db: string; enc: string }>(
        'SELECT current_database() AS db, pg_encoding_to_char(encoding) AS enc FROM pg_database WHERE datname = current_database()',
      );
      expect(r.rows[0]).toEqual({ db: db().database, enc: 'UTF8' });
    } finally {
      await c.end();
    }
  });
});
