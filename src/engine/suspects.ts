/**
 * Before a death event costs a whole cycle, look at its subjects once more: most events during and just after a
 * cycle are that cycle's own doing (a restart closes the old session and stops the unit before starting both
 * again). A session that is alive again, a unit active again, needs nothing; anything else converges at once.
 * One `tmux list-panes -a` per socket concerned and one `systemctl show` for the units concerned, never per agent.
 */
import type { Runner } from '../exec.js';
import { socketArgs } from '../base/names.js';

export interface Suspects {
  /** Sessions reported closed or dead, per socket ('' = the default socket). */
  sessions: Map<string, Set<string>>;
  /** Units reported inactive or failed. */
  units: Set<string>;
}

export function noSuspects(): Suspects {
  return { sessions: new Map(), units: new Set() };
}

export function isEmpty(s: Suspects): boolean {
  return s.sessions.size === 0 && s.units.size === 0;
}

export function addSessions(s: Suspects, socketName: string, names: readonly string[]): void {
  const set = s.sessions.get(socketName) ?? new Set<string>();
  for (const n of names) set.add(n);
  s.sessions.set(socketName, set);
}

/** Sessions with a live pane, from `list-panes -a -F '#{pane_dead} #{session_name}'`. */
export function liveSessions(stdout: string): Set<string> {
  const live = new Set<string>();
  for (const line of stdout.split('\n')) {
    if (line.startsWith('0 ')) live.add(line.slice(2));
  }
  return live;
}

/** Units whose state is not on its way up, from `systemctl show -p Id,ActiveState` (blocks of key=value). */
export function unitsDown(stdout: string, asked: ReadonlySet<string>): string[] {
  const down: string[] = [];
  const seen = new Set<string>();
  for (const block of stdout.split(/\n\s*\n/)) {
    const id = /^Id=(.*)$/m.exec(block)?.[1];
    const state = /^ActiveState=(.*)$/m.exec(block)?.[1];
    if (id === undefined || !asked.has(id)) continue;
    seen.add(id);
    if (state !== 'active' && state !== 'activating' && state !== 'reloading') down.push(id);
  }
  // A unit systemd did not answer for is not known to be fine.
  for (const u of asked) if (!seen.has(u)) down.push(u);
  return down;
}

/** What is still down among the suspects ("SOCKET:SESSION" and unit names); empty when all came back. */
export async function stillDown(s: Suspects, runner: Runner): Promise<string[]> {
  const checks: Promise<string[]>[] = [...s.sessions].map(async ([socketName, names]) => {
    const r = await runner.run(
      ['tmux', ...socketArgs(socketName), 'list-panes', '-a', '-F', '#{pane_dead} #{session_name}'],
      { reject: false, env: { TMUX: undefined } },
    );
    // No server (or no answer) means every session on it is down.
    const live = r.exitCode === 0 ? liveSessions(r.stdout) : new Set<string>();
    return [...names].filter((n) => !live.has(n)).map((n) => `${socketName}:${n}`);
  });
  if (s.units.size > 0) {
    checks.push(
      runner
        .run(['systemctl', '--user', 'show', '-p', 'Id,ActiveState', '--', ...s.units], { reject: false })
        .then((r) => unitsDown(r.stdout, s.units)),
    );
  }
  return (await Promise.all(checks)).flat();
}
