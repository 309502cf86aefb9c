/**
 * opencode's usage, read from its SQLite database (WAL mode) with the sqlite3 CLI, read-only: only the
 * databases whose file or -wal changed since their cursor, all in ONE spawn (each ATTACHed as its own schema),
 * so the spawns stay constant in the fleet's size. Events are read incrementally by their per-session `seq`.
 */
import { statSync } from 'node:fs';
import type { Runner } from '../exec.js';
import { countOnce } from './cursor.js';
import type { DbCursor } from './store.js';
import { opencodeUsage } from '../runtimes/opencode/usage.js';
import type { UsageRecord, TokenCounts } from './usage.js';

export function opencodeDbPath(dataHome: string): string {
  return `${dataHome}/opencode/opencode.db`;
}

/** The database's size and mtime and its -wal's: what says whether it changed. null when there is no database. */
export function dbStamp(db: string): string | null {
  const st = statSync(db, { throwIfNoEntry: false });
  if (st === undefined || !st.isFile()) return null;
  const wal = statSync(`${db}-wal`, { throwIfNoEntry: false });
  return `${st.size}:${st.mtimeMs}|${wal?.size ?? 0}:${wal?.mtimeMs ?? 0}`;
}

function sqlString(s: string): string {
  return `'${s.replaceAll("'", "''")}'`;
}

/** The one query over every changed database: their message.updated events after each session's cursor. */
export function eventsQuery(dbs: readonly { path: string; cursor: DbCursor | undefined }[]): string {
  const attach = dbs.map((d, i) => `ATTACH ${sqlString(`file:${d.path}?mode=ro`)} AS d${i};`);
  const selects = dbs.map((d, i) => {
    const seqs = Object.entries(d.cursor?.seqs ?? {});
    const known =
      seqs.length === 0
        ? '-1'
        : // SQLite names a VALUES list's columns column1, column2 (it has no `AS c(a, s)`).
          `COALESCE((SELECT column2 FROM (VALUES ${seqs.map(([a, s]) => `(${sqlString(a)}, ${Math.trunc(s)})`).join(', ')}) WHERE column1 = e.aggregate_id), -1)`;
    return (
      `SELECT ${i} AS db, e.aggregate_id AS a, e.seq AS s, e.data AS d, ` +
      `(SELECT directory FROM d${i}.session WHERE id = COALESCE(json_extract(e.data, '$.sessionID'), ` +
      `json_extract(e.data, '$.info.sessionID'), e.aggregate_id)) AS dir ` +
      `FROM d${i}.event e WHERE e.type LIKE 'message.updated%' AND e.seq > ${known}`
    );
  });
  return `${attach.join(' ')} SELECT * FROM (${selects.join(' UNION ALL ')}) ORDER BY db, a, s;`;
}

export interface DbRow {
  db: number;
  a: string;
  s: number;
  d: string;
  dir: string | null;
}

export interface OpencodeCounted {
  record: UsageRecord;
  added: TokenCounts;
  /** The directory of the session it belongs to (the agent working there), null when unknown. */
  dir: string | null;
}

/** Query the changed databases; rows per database index. Throws the runner's error (named by the caller). */
export async function queryDbs(
  runner: Runner,
  dbs: readonly { path: string; cursor: DbCursor | undefined }[],
): Promise<DbRow[]> {
  if (dbs.length === 0) return [];
  const r = await runner.run(['sqlite3', '-readonly', '-json', ':memory:', eventsQuery(dbs)], {
    kind: 'read',
    timeoutMs: 30_000,
  });
  const text = r.stdout.trim();
  if (text === '') return [];
  const parsed = JSON.parse(text) as unknown;
  return Array.isArray(parsed) ? (parsed as DbRow[]) : [];
}

/** Count a database's new rows once per message id; advances the cursor (a new one is returned). */
export function countRows(
  path: string,
  rows: readonly DbRow[],
  old: DbCursor | undefined,
  stamp: string,
): { cursor: DbCursor; counted: OpencodeCounted[]; warnings: string[] } {
  const cursor: DbCursor = { ...(old ?? { seqs: {} }), stamp, seqs: { ...(old?.seqs ?? {}) } };
  if (old?.recent !== undefined) cursor.recent = old.recent.map(([id, t]) => [id, { ...t }]);
  const counted: OpencodeCounted[] = [];
  const warnings: string[] = [];
  for (const row of rows) {
    if (typeof row.a !== 'string' || typeof row.s !== 'number') continue;
    cursor.seqs[row.a] = Math.max(cursor.seqs[row.a] ?? -1, row.s);
    let value: unknown;
    try {
      value = JSON.parse(row.d);
    } catch {
      warnings.push(`${path}: event ${row.a}#${row.s}: not JSON, skipped`);
      continue;
    }
    const r = opencodeUsage(value, (cursor.memo ??= {}));
    if (r.kind === 'invalid') warnings.push(`${path}: event ${row.a}#${row.s}: ${r.why}, skipped`);
    if (r.kind !== 'usage') continue;
    const added = countOnce(cursor, r.record);
    if (added !== null)
      counted.push({
        record: r.record,
        added,
        dir: typeof row.dir === 'string' ? row.dir : null,
      });
  }
  return { cursor, counted, warnings };
}
