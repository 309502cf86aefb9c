/**
 * Temp files the fleet's own writers leave when they are killed mid-write, and which of them are leftovers.
 * Pure: the names, the directories and the decision; observe finds them, apply removes them, both by these rules.
 *
 * Every writer puts its temp file in the target's directory, under a name no operator file has:
 *   - the reconciler (src/base/atomic.ts tempPathFor: its atomic writes, the lock, the manifest cache):
 *                                             `.<target>.fleet-<pid>-<8 hex>.tmp`
 *   - agent-state.sh (heartbeats, fleet/run): `.<agent>.hb.state-<pid>.tmp`
 *   - stub-agent.sh (heartbeats, fleet/run):  `.<agent>.hb.<pid>`
 * A write lasts milliseconds, so such a file whose writer is gone, or that is over a minute old, is a leftover.
 */
import { join } from 'node:path';
import type { Observed, ObservedTempFile } from '../model/observed.js';
import type { FleetPaths } from '../paths.js';

/** A temp file younger than this with a live writer may be a write in progress. */
export const TEMP_FILE_GRACE_MS = 60_000;

const ATOMIC = /^\.(.+)\.fleet-([1-9][0-9]{0,9})-[0-9a-f]{8}\.tmp$/;
const HEARTBEAT_STATE = /^\.(.+)\.hb\.state-([1-9][0-9]{0,9})\.tmp$/;
const HEARTBEAT_STUB = /^\.(.+)\.hb\.([1-9][0-9]{0,9})$/;

/** Which temp names each of the fleet's directories may hold, by the target they stand for. */
export type TempDirKind =
  'units' | 'agents' | 'tools' | 'fleet' | 'reconciler' | 'backups' | 'archive' | 'run';

/**
 * The writer's pid when `name` is a temp file of ours in a directory of `kind`, else null. Only the names our
 * writers make for targets they write there: `.notes.fleet-1-00000000.tmp` in the unit directory is not ours.
 */
export function tempWriterPid(kind: TempDirKind, name: string): number | null {
  if (kind === 'run') {
    const m = HEARTBEAT_STATE.exec(name) ?? HEARTBEAT_STUB.exec(name);
    return m ? Number(m[2]) : null;
  }
  const m = ATOMIC.exec(name);
  if (!m) return null;
  const target = m[1] ?? '';
  const ours =
    kind === 'units'
      ? target.startsWith('mosaic-')
      : kind === 'agents'
        ? target.endsWith('.env')
        : kind === 'fleet'
          ? target === 'roster.schema.json'
          : kind === 'backups'
            ? target.endsWith('.bak')
            : true; // tools/fleet, fleet/reconciler, fleet/archive: every file there is the reconciler's
  return ours ? Number(m[2]) : null;
}

/** The observed temp files that are leftovers: the writer is gone, or the file is older than the grace. */
export function leftoverTemps(observed: Observed): ObservedTempFile[] {
  return (observed.tempFiles ?? []).filter(
    (t) => !t.writerAlive || observed.nowMs - t.mtimeMs >= TEMP_FILE_GRACE_MS,
  );
}

/** Each directory of the fleet, the kind of temp names it may hold, and the root its link check starts from. */
export function tempDirs(paths: FleetPaths): { dir: string; kind: TempDirKind; root: string }[] {
  const home = paths.mosaicHome;
  return [
    { dir: paths.unitDir, kind: 'units', root: paths.unitDir },
    { dir: paths.agentsDir, kind: 'agents', root: home },
    { dir: paths.toolsDir, kind: 'tools', root: home },
    { dir: join(home, 'fleet'), kind: 'fleet', root: home },
    { dir: paths.stateDir, kind: 'reconciler', root: home },
    { dir: join(paths.stateDir, 'backups'), kind: 'backups', root: home },
    { dir: paths.archiveDir, kind: 'archive', root: home },
    { dir: paths.runDir, kind: 'run', root: home },
  ];
}
