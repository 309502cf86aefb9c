/**
 * Two promises of docs/reliability.md, end to end against a real systemd user manager and real tmux (the
 * sandbox; its TMUX_TMPDIR is private, so its "default" tmux server is private too):
 *
 * - Ownership of sessions: `fleet reconcile --prune` ends only sessions it can prove are its own (a socket the
 *   fleet uses or used, and the fleet's marker). Same-named bystanders on the default server, on an unrelated
 *   socket, and without the marker on the fleet's own socket survive two prune runs; a fleet on a named socket
 *   never runs tmux against the default server.
 * - No write through a link: each link attack (a link where a file or directory of the fleet belongs, pointing
 *   outside the home) makes `fleet reconcile`, `--prune` and `--dry-run` exit 1 naming the link, with nothing
 *   outside changed (hashed before and after), nothing in the home or unit dir changed, and nothing from outside
 *   read into the home or printed.
 */
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { snapshotTree } from '../helpers/snapshot.js';
import { REPO, runFleet, type CliResult } from '../helpers/cli.js';
import { describeSandbox, type Sandbox } from '../sandbox.js';

function fleet(sb: Sandbox, ...args: string[]): Promise<CliResult> {
  return runFleet({ ...sb.env, FLEET_BACKOFF_INITIAL_SECONDS: '0.001' }, args, { logDir: sb.root });
}

async function hasSession(sb: Sandbox, socket: string, name: string): Promise<boolean> {
  const argv = ['tmux', ...(socket === '' ? [] : ['-L', socket]), 'has-session', '-t', `=${name}`];
  return (await sb.run(argv, { reject: false })).exitCode === 0;
}

/** Every tmux command a `fleet` run spawned against the default server (no -L). */
function defaultServerCommands(r: CliResult): string[] {
  return r.commands.filter((c) => c.argv[0] === 'tmux' && c.argv[1] !== '-L').map((c) => c.argv.join(' '));
}

const OWN_SOCKET = 'fleet-own';

function roster(names: string[]): string {
  return [
    'version: 1',
    'transport: tmux',
    'tmux:',
    `  socket_name: ${OWN_SOCKET}`,
    '  holder_session: _holder',
    'defaults:',
    '  working_directory: ~',
    'agents:',
    ...names.flatMap((n) => [`  - name: ${n}`, '    runtime: stub', '    class: coder', '    model_hint: m']),
    '',
  ].join('\n');
}

describeSandbox('ownership of sessions: prune ends only the fleet’s own sessions', (sandbox) => {
  it('bystanders named like a pruned agent survive two `reconcile --prune` runs; the default server is never asked', async () => {
    const sb = sandbox();
    const fleetDir = join(sb.paths.mosaicHome, 'fleet');
    mkdirSync(fleetDir, { recursive: true });
    const rosterPath = join(fleetDir, 'roster.yaml');
    writeFileSync(rosterPath, roster(['a1', 'keep']));
    const first = await fleet(sb, 'reconcile');
    expect(first.code, first.stdout + first.stderr).toBe(0);
    expect(defaultServerCommands(first)).toEqual([]);
    // The start script marks what it creates: the session carries this home.
    const marker = await sb.tmux(OWN_SOCKET, 'show-options', '-t', '=a1:', '-v', '@mosaic-fleet-home');
    expect(marker.stdout.trim()).toBe(sb.paths.mosaicHome);

    // Bystanders: `a1` on the sandbox's default server (the operator's own); `a1` on an unrelated socket, even
    // carrying this home's marker (a socket the fleet never used); and, on the fleet's own socket, `a2` started
    // by hand without the marker, whose env file (a leftover) makes it an orphan the planner looks at.
    await sb.tmux('', 'new-session', '-d', '-s', 'a1', 'sleep 600');
    await sb.tmux('other-srv', 'new-session', '-d', '-s', 'a1', 'sleep 600');
    await sb.tmux('other-srv', 'set-option', '-t', '=a1:', '@mosaic-fleet-home', sb.paths.mosaicHome);
    await sb.tmux(OWN_SOCKET, 'new-session', '-d', '-s', 'a2', 'sleep 600');
    writeFileSync(
      join(sb.paths.agentsDir, 'a2.env'),
      `MOSAIC_AGENT_NAME=a2\nMOSAIC_TMUX_SOCKET=${OWN_SOCKET}\nMOSAIC_HOME=${sb.paths.mosaicHome}\n`,
      { mode: 0o600 },
    );

    writeFileSync(rosterPath, roster(['keep']));
    const prune1 = await fleet(sb, 'reconcile', '--prune');
    expect(prune1.code, prune1.stdout + prune1.stderr).toBe(0);
    expect(prune1.stdout).toMatch(/stop mosaic-agent@a1\.service/);
    expect(prune1.stdout).toContain(
      `session a2 on socket ${OWN_SOCKET} is not the fleet's (it does not carry the fleet's marker); left alone`,
    );
    expect(await hasSession(sb, OWN_SOCKET, 'a1')).toBe(false); // the fleet's own a1: ended by its unit's stop
    const prune2 = await fleet(sb, 'reconcile', '--prune');
    expect(prune2.code, prune2.stdout + prune2.stderr).toBe(0);
    expect(prune2.stdout).not.toMatch(/kill session/);

    for (const r of [prune1, prune2]) {
      expect(defaultServerCommands(r)).toEqual([]);
      expect(r.commands.filter((c) => c.argv.includes('other-srv'))).toEqual([]);
      expect(r.mutating.filter((c) => c.argv.includes('kill-session'))).toEqual([]);
    }
    expect(await hasSession(sb, '', 'a1')).toBe(true);
    expect(await hasSession(sb, 'other-srv', 'a1')).toBe(true);
    expect(await hasSession(sb, OWN_SOCKET, 'a2')).toBe(true);
    expect(await hasSession(sb, OWN_SOCKET, 'keep')).toBe(true);
    expect(readdirSync(sb.paths.archiveDir).filter((f) => /^a[12]\./.test(f))).toHaveLength(2);
    const settled = await fleet(sb, 'reconcile', '--prune', '--dry-run', '--detailed-exitcode');
    expect(settled.code, settled.stdout).toBe(0);
  });

  it('a marked session the state file remembers is ended on its socket, even with its env file and unit gone', async () => {
    const sb = sandbox();
    // `ghost` was started by the fleet's start script on the fleet's socket (so it carries the marker), and its
    // socket was recorded in the state file; its env file and unit are gone (removed by hand).
    const state = JSON.parse(readFileSync(join(sb.paths.stateDir, 'state.json'), 'utf8')) as {
      sessionSockets?: Record<string, string[]>;
    };
    state.sessionSockets = { ...state.sessionSockets, ghost: [OWN_SOCKET] };
    writeFileSync(join(sb.paths.stateDir, 'state.json'), JSON.stringify(state));
    await sb.tmux(OWN_SOCKET, 'new-session', '-d', '-s', 'ghost', 'sleep 600');
    await sb.tmux(OWN_SOCKET, 'set-option', '-t', '=ghost:', '@mosaic-fleet-home', sb.paths.mosaicHome);
    await sb.tmux('', 'new-session', '-d', '-s', 'ghost', 'sleep 600');

    const pruned = await fleet(sb, 'reconcile', '--prune');
    expect(pruned.code, pruned.stdout + pruned.stderr).toBe(0);
    expect(pruned.stdout).toContain(`kill session ${OWN_SOCKET}:ghost`);
    expect(await hasSession(sb, OWN_SOCKET, 'ghost')).toBe(false);
    expect(await hasSession(sb, '', 'ghost')).toBe(true);
    expect(defaultServerCommands(pruned)).toEqual([]);
    const again = await fleet(sb, 'reconcile', '--prune', '--dry-run', '--detailed-exitcode');
    expect(again.code, again.stdout).toBe(0);
  });
});

const SECRET = 'outside-secret-5b1e';

interface Attack {
  name: string;
  /** The link's path, relative to the sandbox root (the message must name it). */
  link: (sb: Sandbox) => string;
  /** Where it points, in the outside tree. */
  target: string;
}

/**
 * The attacks. Each replaces a file or directory of a converged fleet with a link to the outside tree;
 * the original is moved aside inside the home and put back afterwards.
 */
const ATTACKS: Attack[] = [
  {
    name: 'an agent env file linked to a file outside the home',
    link: (sb) => join(sb.paths.agentsDir, 'coder0.env'),
    target: 'secret.env',
  },
  {
    name: 'a dangling env-file link',
    link: (sb) => join(sb.paths.agentsDir, 'lead.env'),
    target: 'no-such-file',
  },
  {
    name: 'state.json as a link',
    link: (sb) => join(sb.paths.stateDir, 'state.json'),
    target: 'dir/state.json',
  },
  {
    name: 'the unit template as a link',
    link: (sb) => join(sb.paths.unitDir, 'mosaic-agent@.service'),
    target: 'secret.env',
  },
  {
    name: 'a tool script as a link',
    link: (sb) => join(sb.paths.toolsDir, 'start-agent-session.sh'),
    target: 'secret.env',
  },
  { name: 'fleet/agents/ as a link to a directory outside', link: (sb) => sb.paths.agentsDir, target: 'dir' },
  {
    name: 'fleet/reconciler/ as a link to a directory outside',
    link: (sb) => sb.paths.stateDir,
    target: 'dir',
  },
  {
    name: 'fleet/archive/ as a link to a directory outside',
    link: (sb) => sb.paths.archiveDir,
    target: 'dir',
  },
];

/** No file under `dir` holds the outside secret (nothing outside was read into it). */
function holdsSecret(dir: string): string[] {
  return Object.entries(snapshotTree(dir))
    .filter(([, v]) => !v.startsWith('symlink:') && v !== 'dir')
    .filter(([, v]) =>
      Buffer.from(v.slice(v.indexOf(':') + 1), 'base64')
        .toString('utf8')
        .includes(SECRET),
    )
    .map(([k]) => k);
}

/**
 * The paths whose entry differs between two snapshots (created, removed or changed), for short failure
 * messages. `fleet/run/` is left out: the running agents write their heartbeats there all the time.
 */
function changed(before: Record<string, string>, after: Record<string, string>): string[] {
  const keys = new Set([...Object.keys(before), ...Object.keys(after)]);
  return [...keys].filter((k) => before[k] !== after[k] && !k.startsWith('fleet/run/')).sort();
}

let refused = 0;

describeSandbox(
  'no write through a link: every attack is refused (exit 1, named, nothing changed)',
  (sandbox) => {
    it('a converged canary fleet to attack', async () => {
      const sb = sandbox();
      const fleetDir = join(sb.paths.mosaicHome, 'fleet');
      mkdirSync(fleetDir, { recursive: true });
      writeFileSync(
        join(fleetDir, 'roster.yaml'),
        readFileSync(join(REPO, 'manifests', 'canary.yaml'), 'utf8'),
      );
      const first = await fleet(sb, 'reconcile');
      expect(first.code, first.stdout + first.stderr).toBe(0);
      mkdirSync(sb.paths.archiveDir, { recursive: true });
      // An orphan to prune, so `--prune` would archive into fleet/archive/.
      writeFileSync(
        join(sb.paths.agentsDir, 'old.env'),
        'MOSAIC_AGENT_NAME=old\nMOSAIC_TMUX_SOCKET=mosaic-fleet\n',
      );

      const outside = join(sb.root, 'outside');
      mkdirSync(join(outside, 'dir'), { recursive: true });
      writeFileSync(join(outside, 'secret.env'), `MOSAIC_AGENT_NAME=coder0\nTOKEN=${SECRET}\n`, {
        mode: 0o600,
      });
      writeFileSync(join(outside, 'dir', 'coder0.env'), `TOKEN=${SECRET}\n`);
      writeFileSync(
        join(outside, 'dir', 'state.json'),
        `{"version":1,"written":{},"backoff":{},"x":"${SECRET}"}\n`,
      );
      writeFileSync(join(outside, 'dir', 'journal.jsonl'), `{"secret":"${SECRET}"}\n`);
    });

    for (const attack of ATTACKS) {
      it(`refuses ${attack.name}`, async () => {
        const sb = sandbox();
        const outside = join(sb.root, 'outside');
        const link = attack.link(sb);
        const aside = `${link}.aside-by-test`;
        const had = existsSync(link);
        if (had) renameSync(link, aside);
        symlinkSync(join(outside, attack.target), link);
        try {
          const before = {
            outside: snapshotTree(outside),
            home: snapshotTree(sb.paths.mosaicHome),
            units: snapshotTree(sb.paths.unitDir),
          };
          for (const args of [['reconcile', '--dry-run'], ['reconcile'], ['reconcile', '--prune']]) {
            const r = await fleet(sb, ...args);
            const what = `fleet ${args.join(' ')}:\n${r.stdout}\n${r.stderr}`;
            expect(r.code, what).toBe(1);
            expect(r.stderr, what).toContain(
              `refusing to follow a link: ${link} -> ${join(outside, attack.target)}`,
            );
            expect(r.stderr).not.toMatch(/\n\s+at /);
            expect(r.stdout + r.stderr).not.toContain(SECRET);
            expect(r.mutating, what).toEqual([]);
          }
          expect(changed(before.outside, snapshotTree(outside))).toEqual([]);
          expect(changed(before.home, snapshotTree(sb.paths.mosaicHome))).toEqual([]);
          expect(changed(before.units, snapshotTree(sb.paths.unitDir))).toEqual([]);
          expect(holdsSecret(sb.paths.mosaicHome)).toEqual([]);
          expect(holdsSecret(sb.paths.unitDir)).toEqual([]);
          refused++;
        } finally {
          unlinkSync(link);
          if (had) renameSync(aside, link);
        }
        // With the link gone, the same fleet reconciles again (exit 0).
        const after = await fleet(sb, 'reconcile');
        expect(after.code, after.stdout + after.stderr).toBe(0);
      });
    }

    it(`refused ${ATTACKS.length} attacks of ${ATTACKS.length}`, () => {
      expect(refused).toBe(ATTACKS.length);
    });

    it('with every link gone, --prune archives into the real fleet/archive/', async () => {
      const sb = sandbox();
      const r = await fleet(sb, 'reconcile', '--prune');
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(readdirSync(sb.paths.archiveDir).some((f) => f.startsWith('old.'))).toBe(true);
      rmSync(join(sb.root, 'outside'), { recursive: true, force: true });
    });
  },
);
