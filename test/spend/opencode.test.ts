/** opencode's database read for real with the sqlite3 CLI: incrementally by each session's seq, in one spawn. */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createRunner } from '../../src/exec.js';
import { countRows, dbStamp, queryDbs } from '../../src/spend/opencode.js';
import { opencodeEvent } from './fixtures.js';

let dir = '';
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function sql(db: string, text: string): void {
  execFileSync('sqlite3', [db, text]);
}
function event(db: string, seq: number, data: unknown): void {
  const json = JSON.stringify(data).replaceAll("'", "''");
  sql(db, `INSERT INTO event VALUES ('e${seq}', 'ses_1', ${seq}, 'message.updated.1', '${json}');`);
}

describe('opencode database', () => {
  it('reads message.updated events after the cursor, counting each message once', async () => {
    dir = mkdtempSync(join(tmpdir(), 'fleet-oc-'));
    mkdirSync(join(dir, 'opencode'));
    const db = join(dir, 'opencode', 'opencode.db');
    sql(
      db,
      'PRAGMA journal_mode=WAL; CREATE TABLE event (id text primary key, aggregate_id text, seq integer, type text, data text); CREATE TABLE session (id text primary key, directory text);',
    );
    sql(db, "INSERT INTO session VALUES ('ses_1', '/work/oc0');");
    event(db, 1, opencodeEvent(1, false));
    event(db, 2, opencodeEvent(1));
    const runner = createRunner();
    const rows1 = await queryDbs(runner, [{ path: db, cursor: undefined }]);
    const first = countRows(db, rows1, undefined, dbStamp(db) ?? '');
    expect(first.counted.map((c) => [c.record.id, c.dir, c.added.input])).toEqual([
      ['msg_1', '/work/oc0', 1234],
    ]);
    expect(first.cursor.seqs).toEqual({ ses_1: 2 });
    event(db, 3, opencodeEvent(1));
    event(db, 4, opencodeEvent(2));
    const rows2 = await queryDbs(runner, [{ path: db, cursor: first.cursor }]);
    expect(rows2.map((r) => r.s)).toEqual([3, 4]);
    const second = countRows(db, rows2, first.cursor, dbStamp(db) ?? '');
    expect(second.counted.map((c) => c.record.id)).toEqual(['msg_2']);
    expect(runner.log.map((c) => c.kind)).toEqual(['read', 'read']);
  });
});
