/**
 * The acceptance of the real-runtimes issue, on one fleet of real runtimes: a claude, a codex and a pi agent
 * reconcile from an empty home, are recognised (no DRIFT), converge (the second reconcile does nothing), flip
 * to DEAD when killed and to DRIFT when a pane runs something else, and nothing the reconciler writes lands in
 * the operator's own ~/.claude*, ~/.codex or ~/.pi.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { waitFor } from '../helpers/fleet.js';
import { describeRuntimes } from './bed.js';

/** Every file under `dir` (recursively), with its content when it is small text. */
function tree(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string): void => {
    let names: string[];
    try {
      names = readdirSync(d);
    } catch {
      return;
    }
    for (const n of names) {
      const p = join(d, n);
      const st = statSync(p, { throwIfNoEntry: false });
      if (st === undefined) continue;
      if (st.isDirectory()) walk(p);
      else out.set(p, st.size < 1_000_000 ? readFileSync(p, 'latin1') : '');
    }
  };
  walk(dir);
  return out;
}

const AGENTS = [
  { name: 'cc0', runtime: 'claude' as const },
  { name: 'cx0', runtime: 'codex' as const },
  { name: 'pi0', runtime: 'pi' as const },
];

describeRuntimes('a fleet of real runtimes (claude, codex, pi)', ['claude', 'codex', 'pi'], (bed) => {
  let operatorBefore: Map<string, string>;

  it('reconciles from an empty home: every agent ok, no DRIFT, each idle from its own signal', async () => {
    const b = bed();
    await b.setup(AGENTS);
    operatorBefore = new Map(
      [...tree(b.home)].filter(([p]) => /\/\.(claude|codex|pi)/.test(p.slice(b.home.length))),
    );
    const r = await b.fleet('reconcile');
    expect(r.code, r.stderr).toBe(0);
    for (const a of AGENTS) {
      const row = await b.waitState(a.name, 'idle', 90_000);
      expect(row.flags, a.name).toEqual([]);
      expect(row.heartbeat.health, a.name).toBe('healthy');
    }
  }, 240_000);

  it('a second reconcile plans nothing and spawns no mutating command', async () => {
    const b = bed();
    const dry = await b.fleet('reconcile', '--dry-run', '--detailed-exitcode');
    expect(dry.code, dry.stdout).toBe(0);
    const r = await b.fleet('reconcile');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('No changes');
    expect(r.mutating).toEqual([]);
  });

  it('codex: a prompt makes it busy while the server holds the turn, then idle', async () => {
    const b = bed();
    b.server.on({ match: 'fleet-busy-probe', holdMs: 6000, text: 'done holding' });
    await b.type('cx0', 'fleet-busy-probe: say something');
    await b.waitState('cx0', 'busy', 30_000);
    await new Promise((r) => setTimeout(r, 1500));
    expect((await b.ps('cx0')).state?.value).toBe('busy');
    const idle = await b.waitState('cx0', 'idle', 60_000);
    expect(idle.flags).toEqual([]);
  });

  it('nothing the reconciler writes lands in the operator’s ~/.claude*, ~/.codex or ~/.pi', () => {
    const b = bed();
    const operatorDirs = /^\/\.(claude|codex|pi)/;
    // Every file the reconciler wrote is in its state file (by path, with its hash): none is the operator's.
    const state = JSON.parse(readFileSync(join(b.sb.paths.stateDir, 'state.json'), 'utf8')) as {
      written: Record<string, string>;
    };
    const written = Object.keys(state.written);
    expect(written.length).toBeGreaterThan(5);
    expect(
      written.filter(
        (p) => !p.startsWith(`${b.sb.paths.mosaicHome}/`) && !p.startsWith(`${b.sb.paths.unitDir}/`),
      ),
    ).toEqual([]);
    // The integrations are passed on the command line, so the runtimes' own config places stay the operator's:
    // no settings, hooks or extensions of ours appear there (what the runtimes write themselves, such as
    // sessions and snapshots, is theirs).
    const after = [...tree(b.home)].filter(([p]) => operatorDirs.test(p.slice(b.home.length)));
    const configPlaces = after.filter(([p]) =>
      /\/\.claude\/settings(\.local)?\.json$|\/\.codex\/hooks\.json$|\/\.codex\/config\.toml$|\/\.pi\/agent\/(settings\.json|extensions\/)/.test(
        p,
      ),
    );
    for (const [p, content] of configPlaces) {
      expect(content, p).not.toMatch(/agent-state\.sh|claude-settings\.json|pi-extension\.ts/);
    }
    expect(
      after.map(([p]) => p).filter((p) => /claude-settings\.json|agent-state\.sh|pi-extension\.ts$/.test(p)),
    ).toEqual([]);
    const models = join(b.home, '.pi/agent/models.json');
    expect(after.find(([x]) => x === models)?.[1]).toBe(operatorBefore.get(models));
  });

  it('killing the runtime process flips the row to DEAD; the next reconcile brings it back', async () => {
    const b = bed();
    const before = await b.ps('pi0');
    const pid = before.session.pane_pid;
    expect(pid).not.toBeNull();
    process.kill(pid as number, 'SIGKILL');
    const dead = await waitFor(
      'pi0 DEAD',
      async () => {
        const row = await b.ps('pi0');
        return row.flags.includes('DEAD') ? row : undefined;
      },
      15_000,
    );
    expect(dead.state).toBeNull();
    const r = await b.fleet('reconcile');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('respawn');
    const back = await b.waitState('pi0', 'idle', 60_000);
    expect(back.flags).toEqual([]);
  });

  it('a pane running a genuinely different program is DRIFT', async () => {
    const b = bed();
    await b.sb.tmux(b.socket, 'respawn-pane', '-k', '-t', '=cc0:0.0', 'sleep', '600');
    const row = await waitFor(
      'cc0 DRIFT',
      async () => {
        const r = await b.ps('cc0');
        return r.flags.includes('DRIFT') ? r : undefined;
      },
      15_000,
    );
    expect(row.drift_reason).toBe("pane runs 'sleep 600', the roster says 'claude'");
  });
});
