/**
 * Where each agent's runtime records its usage (DOMAIN.md section 10), from the running agent's own environment
 * (/proc/<runtime pid>/environ: HOME, CODEX_HOME, PI_CODING_AGENT_DIR, XDG_DATA_HOME), its working directory
 * and what its hooks reported in the heartbeat (the transcript file). Remembered for when it is not running.
 * Read-only.
 */
import { closeSync, openSync, readdirSync, readFileSync, readSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Roots } from './store.js';

export type UsageKind = 'claude' | 'codex' | 'pi' | 'opencode';

/** The heartbeat's key=value lines (pid=, session=, transcript=), or {} when there is none. */
export function heartbeatKeys(runDir: string, agent: string): Record<string, string> {
  let text: string;
  try {
    text = readFileSync(join(runDir, `${agent}.hb`), 'utf8');
  } catch {
    return {};
  }
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) out[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return out;
}

/** The environment a live runtime process of `agent` was started with, or null (gone, or another process). */
function environOf(pid: string | undefined, agent: string): Record<string, string> | null {
  if (pid === undefined || !/^[1-9][0-9]*$/.test(pid)) return null;
  let raw: string;
  try {
    raw = readFileSync(`/proc/${pid}/environ`, 'utf8');
  } catch {
    return null;
  }
  const env: Record<string, string> = {};
  for (const entry of raw.split('\0')) {
    const eq = entry.indexOf('=');
    if (eq > 0) env[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  // A reused pid is someone else's process: only the agent's own runtime names the agent.
  return env.MOSAIC_AGENT_NAME === agent ? env : null;
}

function set(v: string | undefined): string | undefined {
  return v === undefined || v === '' ? undefined : v;
}

/** The agent's record roots: from its running process, else as remembered, else the fleet user's defaults. */
export function rootsOf(
  agent: string,
  workdir: string,
  hb: Record<string, string>,
  remembered: Roots | undefined,
  userHome: string,
): Roots {
  const env = environOf(hb.pid, agent);
  if (env === null && remembered !== undefined) return { ...remembered, workdir };
  const home = set(env?.HOME) ?? userHome;
  return {
    home,
    codexHome: set(env?.CODEX_HOME) ?? join(home, '.codex'),
    piDir: set(env?.PI_CODING_AGENT_DIR) ?? join(home, '.pi', 'agent'),
    dataHome: set(env?.XDG_DATA_HOME) ?? join(home, '.local', 'share'),
    workdir,
  };
}

/** Claude Code's project folder name for a working directory: every character but letters and digits → '-'. */
export function claudeProjectDir(workdir: string): string {
  return workdir.replace(/[^A-Za-z0-9]/g, '-');
}

/** pi's session folder name for a working directory: `--<path without its leading slash, / → ->--`. */
export function piSessionDir(workdir: string): string {
  return `--${workdir.replace(/^[/\\]/, '').replace(/[/\\:]/g, '-')}--`;
}

/** The `.jsonl` files of a directory (none when it cannot be listed). */
export function jsonlIn(dir: string): string[] {
  try {
    return readdirSync(dir)
      .filter((n) => n.endsWith('.jsonl'))
      .map((n) => join(dir, n));
  } catch {
    return [];
  }
}

/** Codex's day folders (`sessions/YYYY/MM/DD`) for today and yesterday, in local time and in UTC. */
export function codexDayDirs(codexHome: string, nowMs: number): string[] {
  const out = new Set<string>();
  for (const t of [nowMs, nowMs - 86_400_000]) {
    const d = new Date(t);
    const pad = (n: number) => String(n).padStart(2, '0');
    out.add(join(codexHome, 'sessions', String(d.getFullYear()), pad(d.getMonth() + 1), pad(d.getDate())));
    out.add(
      join(codexHome, 'sessions', String(d.getUTCFullYear()), pad(d.getUTCMonth() + 1), pad(d.getUTCDate())),
    );
  }
  return [...out];
}

/**
 * The working directory a Codex rollout's first line (`session_meta`) names; null when it cannot be read yet
 * (the file is being written) or is not a rollout. Reads at most the first 64 KiB.
 */
export function codexRolloutCwd(path: string): string | null {
  let head = '';
  try {
    const fd = openSync(path, 'r');
    try {
      const buf = Buffer.alloc(65536);
      head = buf.subarray(0, readSync(fd, buf, 0, buf.length, 0)).toString('utf8');
    } finally {
      closeSync(fd);
    }
    const nl = head.indexOf('\n');
    if (nl < 0) return null;
    const v = JSON.parse(head.slice(0, nl)) as { type?: string; payload?: { cwd?: unknown } };
    return v.type === 'session_meta' && typeof v.payload?.cwd === 'string' ? v.payload.cwd : null;
  } catch {
    return null;
  }
}

/** A transcript path the heartbeat names, when it is a JSONL file (the hooks wrote it; never trusted beyond that). */
function reported(hb: Record<string, string>): string | null {
  const t = hb.transcript;
  return t !== undefined && t.startsWith('/') && t.endsWith('.jsonl') ? t : null;
}

/** What a record folder holds and what a Codex rollout's working directory is, as one metering run asks. */
export interface RecordLookup {
  /** The `.jsonl` files of a folder. */
  list(dir: string): readonly string[];
  /** The working directory a Codex rollout names; null when it cannot be told yet. */
  rolloutCwd(path: string): string | null;
}

const DIRECT: RecordLookup = { list: jsonlIn, rolloutCwd: codexRolloutCwd };

/**
 * The record files to read for an agent (besides the ones it already has cursors for): the runtime's folder for
 * its working directory, and the file its hooks reported. Codex keeps every thread in day folders: the recent
 * ones are listed and a rollout is the agent's when its session_meta names the agent's working directory.
 */
export function recordFiles(
  kind: Exclude<UsageKind, 'opencode'>,
  roots: Roots,
  hb: Record<string, string>,
  known: ReadonlySet<string>,
  nowMs: number,
  look: RecordLookup = DIRECT,
): string[] {
  const files = new Set<string>();
  const rep = reported(hb);
  if (rep !== null) files.add(rep);
  switch (kind) {
    case 'claude':
      for (const f of look.list(join(roots.home, '.claude', 'projects', claudeProjectDir(roots.workdir))))
        files.add(f);
      if (rep !== null) for (const f of look.list(dirname(rep))) files.add(f);
      break;
    case 'pi':
      for (const f of look.list(join(roots.piDir, 'sessions', piSessionDir(roots.workdir)))) files.add(f);
      break;
    case 'codex':
      for (const dir of codexDayDirs(roots.codexHome, nowMs)) {
        for (const f of look.list(dir)) {
          // A rollout not readable yet (being written) is neither ours nor another's: asked again next run.
          if (!known.has(f) && !files.has(f) && look.rolloutCwd(f) === roots.workdir) files.add(f);
        }
      }
      break;
    default: {
      const never: never = kind;
      return never;
    }
  }
  return [...files];
}
