/**
 * systemd user units, observed with a constant number of spawns whatever the fleet's size:
 *   1. `list-units --all -o json 'mosaic-*'`       active/sub/load state of every loaded mosaic unit
 *   2. `list-unit-files -o json 'mosaic-*'`        file state of templates and plain units
 *   3. `show -p Id,NeedDaemonReload <few units>`   a constant handful (framework units + one agent instance)
 * Template instances (`mosaic-agent@x.service`) are not listed by `list-unit-files` on systemd 252, and asking
 * `show` per instance is the slow path (a bus round trip per unit), so an instance's enablement is read from
 * the `*.wants/` / `*.requires/` symlinks `systemctl enable` leaves in the unit directory: reading files is free.
 *
 * Given a connection to the manager (src/observe/systemd-bus.ts), the same three questions go to it directly
 * (`ListUnitsByPatterns`, `ListUnitFilesByPatterns`, `NeedDaemonReload` of the same units): no spawn at all. Any
 * failure there and systemctl is asked instead, so an unreachable manager is still named in systemctl's words.
 */
import { readdir, stat } from '../fs-async.js';
import { join } from 'node:path';
import { CommandError } from '../errors.js';
import type { Runner } from '../exec.js';
import type { Availability, ObservedUnit } from '../model/observed.js';
import { MANAGER_INTERFACE, MANAGER_PATH, UNIT_INTERFACE, type ManagerBus } from './systemd-bus.js';

const TIMEOUT_MS = 10_000;
const PATTERN = 'mosaic-*';

export interface SystemdSnapshot extends Availability {
  units: Record<string, ObservedUnit>;
  needDaemonReload: boolean;
}

interface ListUnitsRow {
  unit?: unknown;
  load?: unknown;
  active?: unknown;
  sub?: unknown;
}

interface ListUnitFilesRow {
  unit_file?: unknown;
  state?: unknown;
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

/** `prefix@instance.suffix` -> `prefix@.suffix`; null for units that are not template instances. */
export function templateOf(unit: string): string | null {
  const at = unit.indexOf('@');
  const dot = unit.lastIndexOf('.');
  if (at < 0 || dot < at + 2) return null;
  return `${unit.slice(0, at + 1)}${unit.slice(dot)}`;
}

/** One clear line for an unreachable manager, from systemctl's own words. */
function unreachable(error: unknown): string {
  if (error instanceof CommandError) {
    if (/not found/i.test(error.message) && error.exitCode === undefined)
      return 'systemctl not found on PATH';
    const detail = (error.stderr.trim() || error.message).split('\n')[0] ?? '';
    return `cannot reach the systemd user manager: ${detail}`;
  }
  return `cannot reach the systemd user manager: ${error instanceof Error ? error.message : String(error)}`;
}

function parseJsonArray(text: string, what: string): unknown[] {
  const parsed: unknown = JSON.parse(text.trim() === '' ? '[]' : text);
  if (!Array.isArray(parsed)) throw new Error(`${what}: expected a JSON array`);
  return parsed;
}

/**
 * Unit names enabled through symlinks in `<unitDir>/<target>.wants|requires/`. Only names matching mosaic-*
 * count. A dangling or unreadable directory just contributes nothing.
 */
export async function enabledBySymlink(unitDir: string): Promise<Set<string>> {
  const enabled = new Set<string>();
  let entries: string[];
  try {
    entries = await readdir(unitDir);
  } catch {
    return enabled;
  }
  for (const dir of entries) {
    if (!dir.endsWith('.wants') && !dir.endsWith('.requires') && !dir.endsWith('.upholds')) continue;
    let links: string[];
    try {
      links = await readdir(join(unitDir, dir));
    } catch {
      continue;
    }
    for (const link of links) if (link.startsWith('mosaic-')) enabled.add(link);
  }
  return enabled;
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** What the manager says, whoever asked it. */
interface Answers {
  listed: ListUnitsRow[];
  files: ListUnitFilesRow[];
  /** Whether any of these (loaded) units' files changed since the manager loaded them. */
  needDaemonReload: (ask: readonly string[]) => Promise<boolean>;
}

/** The manager's answers over D-Bus (the same methods systemctl calls); rejects on any failure. */
async function answersOverBus(bus: ManagerBus, runner: Runner): Promise<Answers> {
  const [units, files] = await Promise.all([
    bus.call(MANAGER_PATH, MANAGER_INTERFACE, 'ListUnitsByPatterns', 'asas', [[], [PATTERN]]),
    bus.call(MANAGER_PATH, MANAGER_INTERFACE, 'ListUnitFilesByPatterns', 'asas', [[], [PATTERN]]),
  ]);
  const objectPath = new Map<string, string>();
  // a(ssssssouso): name, description, load, active, sub, following, object path, job id, job type, job path.
  const listed = ((units[0] ?? []) as DbusValueRow[]).map((r) => {
    objectPath.set(str(r[0]), str(r[6]));
    return { unit: r[0], load: r[2], active: r[3], sub: r[4] };
  });
  // a(ss): the unit file's path, its state.
  const fileRows = ((files[0] ?? []) as DbusValueRow[]).map((r) => ({ unit_file: r[0], state: r[1] }));
  return {
    listed,
    files: fileRows,
    needDaemonReload: async (ask) => {
      const paths = ask.map((n) => objectPath.get(n));
      if (paths.some((p) => p === undefined || p === '')) return showNeedDaemonReload(runner, ask);
      try {
        const values = await Promise.all(paths.map((p) => bus.get(p!, UNIT_INTERFACE, 'NeedDaemonReload')));
        return values.some((v) => v === true);
      } catch {
        return showNeedDaemonReload(runner, ask);
      }
    },
  };
}

type DbusValueRow = unknown[];

export async function observeSystemd(
  unitDir: string,
  runner: Runner,
  bus: ManagerBus | null = null,
): Promise<SystemdSnapshot> {
  const viaBus = bus === null ? null : await answersOverBus(bus, runner).catch(() => null);
  const answers = viaBus ?? (await answersOverSystemctl(runner));
  if ('error' in answers) return { ok: false, error: answers.error, units: {}, needDaemonReload: false };
  return fromAnswers(unitDir, answers);
}

/** The manager's answers through systemctl, or why it could not be reached. */
async function answersOverSystemctl(runner: Runner): Promise<Answers | { error: string }> {
  let listed: unknown[];
  let files: unknown[];
  try {
    // Independent questions: ask both at once (same spawn count, about half the wall time).
    const read = { kind: 'read' as const, timeoutMs: TIMEOUT_MS };
    const [a, b] = await Promise.all([
      runner.run(['systemctl', '--user', 'list-units', '--all', '--no-pager', '-o', 'json', PATTERN], read),
      // list-unit-files exits 1 when nothing matches (a fresh machine) while still printing `[]`.
      runner.run(['systemctl', '--user', 'list-unit-files', '--no-pager', '-o', 'json', PATTERN], {
        ...read,
        reject: false,
      }),
    ]);
    listed = parseJsonArray(a.stdout, 'systemctl list-units');
    if (b.exitCode !== 0 && b.stdout.trim() !== '[]') {
      throw new CommandError(
        `Command failed with exit code ${b.exitCode}: ${b.command.join(' ')}\n${b.stderr.trim()}`,
        b.command,
        b.exitCode,
        b.stderr,
      );
    }
    files = parseJsonArray(b.stdout, 'systemctl list-unit-files');
  } catch (error) {
    return { error: unreachable(error) };
  }
  return {
    listed: listed as ListUnitsRow[],
    files: files as ListUnitFilesRow[],
    needDaemonReload: (ask) => showNeedDaemonReload(runner, ask),
  };
}

async function showNeedDaemonReload(runner: Runner, ask: readonly string[]): Promise<boolean> {
  if (ask.length === 0) return false;
  const out = await runner.run(['systemctl', '--user', 'show', '-p', 'Id,NeedDaemonReload', '--', ...ask], {
    kind: 'read',
    reject: false,
    timeoutMs: TIMEOUT_MS,
  });
  return /^NeedDaemonReload=yes$/m.test(out.stdout);
}

async function fromAnswers(
  unitDir: string,
  { listed, files, needDaemonReload }: Answers,
): Promise<SystemdSnapshot> {
  const units: Record<string, ObservedUnit> = {};
  const fileState = new Map<string, string>();
  for (const row of files) {
    const path = str(row.unit_file);
    const name = path.slice(path.lastIndexOf('/') + 1);
    if (name !== '') fileState.set(name, str(row.state));
  }
  const symlinked = await enabledBySymlink(unitDir);

  const stateOf = async (name: string, loadState: string): Promise<string | null> => {
    const own = fileState.get(name);
    if (own !== undefined) return own;
    if (loadState === 'masked') return 'masked';
    const template = templateOf(name);
    if (template === null) return null;
    // An instance is enabled when a target wants it by name; otherwise it inherits "there is a unit file"
    // from its template: `static` templates (no [Install]) stay static, anything else is merely disabled.
    if (symlinked.has(name)) return 'enabled';
    const templateState = fileState.get(template);
    if (templateState === undefined) {
      // list-unit-files may not know a template in a --unit-dir outside the manager's search path.
      return (await exists(join(unitDir, template))) ? 'disabled' : null;
    }
    return templateState === 'static' ? 'static' : 'disabled';
  };

  for (const row of listed) {
    const name = str(row.unit);
    if (name === '') continue;
    const loadState = str(row.load);
    units[name] = {
      name,
      loadState,
      activeState: str(row.active),
      subState: str(row.sub),
      unitFileState: loadState === 'not-found' ? null : await stateOf(name, loadState),
    };
  }
  for (const [name, state] of fileState) {
    units[name] ??= { name, loadState: '', activeState: '', subState: '', unitFileState: state };
  }
  // Enabled instances the manager has not loaded (e.g. enabled by hand before a daemon-reload).
  for (const name of symlinked) {
    units[name] ??= { name, loadState: '', activeState: '', subState: '', unitFileState: 'enabled' };
  }

  return { ok: true, error: null, units, needDaemonReload: await needDaemonReload(reloadAsk(units)) };
}

/**
 * Whether systemd's loaded units are older than their files is asked of a constant set: every plain
 * (non-template) mosaic unit that is loaded (the holder, the reconcile timer/service: framework units, a fixed
 * handful) plus one loaded agent instance, which shares its template's file with every other instance.
 */
function reloadAsk(units: Record<string, ObservedUnit>): string[] {
  const loaded = Object.values(units)
    .filter((u) => u.loadState === 'loaded')
    .map((u) => u.name)
    .sort();
  const plain = loaded.filter((n) => templateOf(n) === null && !n.includes('@'));
  const oneInstance = loaded.find((n) => templateOf(n) !== null);
  return oneInstance === undefined ? plain : [...plain, oneInstance];
}
