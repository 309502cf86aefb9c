/**
 * `fleet reconcile` end to end against a real systemd user manager and real tmux (the sandbox), with the
 * three-agent canary running the stub agent. Each drift is made by hand the way an operator or a crash would,
 * named by the dry-run, and healed by one reconcile.
 */
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { describeSandbox, type Sandbox } from '../sandbox.js';
import { snapshotTree } from '../helpers/snapshot.js';
import { REPO, runFleet, type CliResult } from '../helpers/cli.js';

const SOCKET = 'mosaic-fleet';
const AGENTS = ['coder0', 'lead', 'reviewer0'];

function canaryText(): string {
  return readFileSync(join(REPO, 'manifests', 'canary.yaml'), 'utf8');
}

interface PsAgent {
  name: string;
  flags: string[];
  unit_active: string;
  unit_enabled: string | null;
  heartbeat: { health: string; age_seconds: number | null };
}

/**
 * These tests break the same agents again and again within seconds, on purpose; with the default crash-loop
 * back-off (10 s) a second break of one agent would be deferred, which is converge.sandbox.test.ts's subject,
 * not this file's. A 1 ms gap keeps every drift healing with one reconcile here.
 */
function fleet(sb: Sandbox, ...args: string[]): Promise<CliResult> {
  return runFleet({ ...sb.env, FLEET_BACKOFF_INITIAL_SECONDS: '0.001' }, args, { logDir: sb.root });
}

async function ps(sb: Sandbox): Promise<Record<string, PsAgent>> {
  const r = await fleet(sb, 'ps', '--json');
  expect(r.code, r.stderr).toBe(0);
  const doc = JSON.parse(r.stdout) as { agents: PsAgent[] };
  return Object.fromEntries(doc.agents.map((a) => [a.name, a]));
}

/** Wait until every agent is healthy in `fleet ps` (the stub writes its first heartbeat right after it starts). */
async function waitHealthy(sb: Sandbox, timeoutMs = 20_000): Promise<Record<string, PsAgent>> {
  const deadline = Date.now() + timeoutMs;
  let last: Record<string, PsAgent> = {};
  while (Date.now() < deadline) {
    last = await ps(sb);
    if (AGENTS.every((n) => last[n]?.flags.length === 0 && last[n]?.heartbeat.health === 'healthy'))
      return last;
    await new Promise((r) => setTimeout(r, 300));
  }
  const flags = Object.values(last).map((a) => `${a.name}: ${a.flags.join(',')}`);
  throw new Error(
    `agents not healthy in time: ${flags.join('; ')}\n--- manager output ---\n${sb.managerOutput().slice(-6000)}`,
  );
}

function unitsChanged(r: CliResult, verb: string): string[] {
  return r.mutating
    .filter((c) => c.argv[0] === 'systemctl' && c.argv[2] === verb)
    .flatMap((c) => c.argv.slice(3))
    .sort();
}

async function reconcileHeals(
  sb: Sandbox,
  expectInDryRun: RegExp,
): Promise<{ dry: CliResult; run: CliResult }> {
  const dry = await fleet(sb, 'reconcile', '--dry-run', '--detailed-exitcode');
  expect(dry.code, dry.stdout + dry.stderr).toBe(2);
  expect(dry.stdout).toMatch(expectInDryRun);
  expect(dry.mutating).toEqual([]);
  const run = await fleet(sb, 'reconcile');
  expect(run.code, run.stdout + run.stderr).toBe(0);
  await waitHealthy(sb);
  const again = await fleet(sb, 'reconcile', '--dry-run', '--detailed-exitcode');
  expect(again.code, `${again.stdout}\n--- manager output ---\n${sb.managerOutput().slice(-4000)}`).toBe(0);
  return { dry, run };
}

describeSandbox('fleet reconcile (real systemd + tmux)', (sandbox) => {
  it('installs the canary from a fresh home in one run; the second run has nothing to do', async () => {
    const sb = sandbox();
    const fleetDir = join(sb.paths.mosaicHome, 'fleet');
    mkdirSync(fleetDir, { recursive: true });
    writeFileSync(join(fleetDir, 'roster.yaml'), canaryText());

    const first = await fleet(sb, 'reconcile');
    expect(first.code, first.stdout + first.stderr).toBe(0);
    expect(first.stdout).toMatch(/Plan: \d+ to add/);
    // Batched: one enable and one start for all units, one daemon-reload.
    expect(first.mutating.filter((c) => c.argv[2] === 'daemon-reload')).toHaveLength(1);
    expect(first.mutating.filter((c) => c.argv[2] === 'enable')).toHaveLength(1);
    expect(unitsChanged(first, 'enable')).toEqual([
      'mosaic-agent@coder0.service',
      'mosaic-agent@lead.service',
      'mosaic-agent@reviewer0.service',
      'mosaic-tmux-holder.service',
    ]);

    for (const f of ['mosaic-agent@.service', 'mosaic-tmux-holder.service']) {
      expect(existsSync(join(sb.paths.unitDir, f))).toBe(true);
    }
    for (const a of AGENTS) {
      const unit = `mosaic-agent@${a}.service`;
      expect(
        (await sb.run(['systemctl', '--user', 'is-enabled', unit], { reject: false })).stdout.trim(),
      ).toBe('enabled');
      expect(
        (await sb.run(['systemctl', '--user', 'is-active', unit], { reject: false })).stdout.trim(),
      ).toBe('active');
      expect(statSync(join(sb.paths.agentsDir, `${a}.env`)).mode & 0o777).toBe(0o600);
    }
    const panes = await sb.tmux(SOCKET, 'list-panes', '-a', '-F', '#{session_name} #{pane_dead}');
    for (const a of AGENTS) expect(panes.stdout).toContain(`${a} 0`);
    expect(panes.stdout).toContain('_holder 0');

    const rows = await waitHealthy(sb);
    expect(Object.keys(rows).sort()).toEqual(AGENTS);

    const second = await fleet(sb, 'reconcile');
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toContain('No changes. The fleet matches the manifests.');
    expect(second.mutating).toEqual([]);
  });

  it('--dry-run changes nothing, creates nothing, and --detailed-exitcode tells 0 in sync / 2 pending', async () => {
    const sb = sandbox();
    const inSync = await fleet(sb, 'reconcile', '--dry-run', '--detailed-exitcode');
    expect(inSync.code, inSync.stdout + inSync.stderr).toBe(0);

    await sb.systemctl('disable', 'mosaic-agent@lead.service');
    // fleet/run is the agents' own (their heartbeats change every few seconds); everything else must not move.
    const home = () =>
      Object.fromEntries(
        Object.entries(snapshotTree(sb.paths.mosaicHome)).filter(([k]) => !k.startsWith('fleet/run/')),
      );
    const before = { home: home(), units: snapshotTree(sb.paths.unitDir) };
    const dry = await fleet(sb, 'reconcile', '--dry-run', '--detailed-exitcode');
    expect(dry.code).toBe(2);
    expect(dry.stdout).toMatch(/\+ enable mosaic-agent@lead\.service/);
    const json = await fleet(sb, 'reconcile', '--dry-run', '--json');
    expect(json.code).toBe(0);
    const doc = JSON.parse(json.stdout) as {
      format_version: number;
      actions: { kind: string; target: string }[];
      patch: unknown[];
    };
    expect(doc.format_version).toBe(1);
    expect(doc.actions).toEqual([
      expect.objectContaining({ kind: 'enable', target: 'mosaic-agent@lead.service' }),
    ]);
    expect(doc.patch).toEqual([
      { op: 'replace', path: '/units/mosaic-agent@lead.service/enabled', value: true },
    ]);
    expect(dry.mutating).toEqual([]);
    expect(json.mutating).toEqual([]);
    expect({ home: home(), units: snapshotTree(sb.paths.unitDir) }).toEqual(before);

    await reconcileHeals(sb, /enable mosaic-agent@lead\.service/);
  });

  it('heals a killed pane', async () => {
    const sb = sandbox();
    const pid = Number(
      (await sb.tmux(SOCKET, 'display-message', '-p', '-t', '=coder0:', '#{pane_pid}')).stdout.trim(),
    );
    // Never kill(0) or kill(-1): that would signal this test's own process group, or everything.
    expect(pid).toBeGreaterThan(1);
    process.kill(pid, 'SIGKILL');
    const { dry, run } = await reconcileHeals(sb, /@ respawn .*coder0.*(dead|missing)/);
    expect(dry.stdout).not.toMatch(/lead|reviewer0/);
    expect(unitsChanged(run, 'restart')).toEqual(['mosaic-agent@coder0.service']);
  });

  it('heals a killed session', async () => {
    const sb = sandbox();
    await sb.tmux(SOCKET, 'kill-session', '-t', '=reviewer0');
    const { run } = await reconcileHeals(sb, /@ respawn .*reviewer0.*session reviewer0 is missing/);
    expect(unitsChanged(run, 'restart')).toEqual(['mosaic-agent@reviewer0.service']);
  });

  it('heals a pane running the wrong program (drift)', async () => {
    const sb = sandbox();
    await sb.tmux(SOCKET, 'respawn-pane', '-k', '-t', '=lead:0.0', 'sleep 600');
    const { dry } = await reconcileHeals(sb, /! respawn .*lead .*pane runs 'sleep 600'/);
    expect(dry.stdout).toMatch(/the roster says 'stub-agent\.sh'/);
  });

  it('heals a killed holder session', async () => {
    const sb = sandbox();
    await sb.tmux(SOCKET, 'kill-session', '-t', '=_holder');
    const { run } = await reconcileHeals(
      sb,
      /~ restart mosaic-tmux-holder\.service .*holder session missing/,
    );
    expect(unitsChanged(run, 'restart')).toEqual(['mosaic-tmux-holder.service']);
    const sessions = await sb.tmux(SOCKET, 'list-sessions', '-F', '#{session_name}');
    expect(sessions.stdout.split('\n').filter(Boolean).sort()).toEqual(['_holder', ...AGENTS]);
  });

  it('heals a unit file edited by hand, backing the edit up first', async () => {
    const sb = sandbox();
    const unitPath = join(sb.paths.unitDir, 'mosaic-agent@.service');
    const original = readFileSync(unitPath, 'utf8');
    appendFileSync(unitPath, '# my local tweak\n');
    const full = await fleet(sb, 'reconcile', '--dry-run', '--diff');
    expect(full.stdout).toContain('-# my local tweak');
    const { dry } = await reconcileHeals(
      sb,
      /~ update .*mosaic-agent@\.service.*edited by hand.*backed up.*\(\+0 -1 lines; --diff shows it\)/,
    );
    expect(dry.stdout).not.toContain('-# my local tweak');
    expect(readFileSync(unitPath, 'utf8')).toBe(original);
    const backups = readdirSync(join(sb.paths.stateDir, 'backups')).filter((f) =>
      f.startsWith('mosaic-agent@.service.'),
    );
    expect(backups).toHaveLength(1);
    expect(readFileSync(join(sb.paths.stateDir, 'backups', backups[0] ?? ''), 'utf8')).toContain(
      '# my local tweak',
    );
  });

  it('heals a managed env key changed by hand and keeps the operator lines', async () => {
    const sb = sandbox();
    const envPath = join(sb.paths.agentsDir, 'coder0.env');
    const text = readFileSync(envPath, 'utf8');
    const edited =
      text.replace(/^MOSAIC_AGENT_MODEL=.*$/m, 'MOSAIC_AGENT_MODEL=hand-edited') +
      '# site note\nMY_TOKEN=abc\n';
    writeFileSync(envPath, edited);
    const { dry, run } = await reconcileHeals(sb, /~ update .*coder0\.env/);
    expect(dry.stdout).toContain('-MOSAIC_AGENT_MODEL=hand-edited');
    const healed = readFileSync(envPath, 'utf8');
    expect(healed).toContain('# site note\nMY_TOKEN=abc\n');
    expect(healed).not.toContain('hand-edited');
    expect(unitsChanged(run, 'restart')).toEqual(['mosaic-agent@coder0.service']);
  });

  it('recreates a deleted env file', async () => {
    const sb = sandbox();
    rmSync(join(sb.paths.agentsDir, 'lead.env'));
    const { run } = await reconcileHeals(sb, /\+ create .*lead\.env/);
    expect(existsSync(join(sb.paths.agentsDir, 'lead.env'))).toBe(true);
    // Written again as it was: what the running agent sees does not change, so it is not restarted.
    expect(unitsChanged(run, 'restart')).toEqual([]);
  });

  it('restarts only the agent whose model_hint changed in the manifest', async () => {
    const sb = sandbox();
    const roster = join(sb.paths.mosaicHome, 'fleet', 'roster.yaml');
    const text = readFileSync(roster, 'utf8');
    const changed = text.replace(/(name: coder0[\s\S]*?model_hint:\s*)(\S+)/, '$1changed-model');
    expect(changed).not.toBe(text);
    writeFileSync(roster, changed);
    const { run } = await reconcileHeals(sb, /~ update .*coder0\.env/);
    expect(unitsChanged(run, 'restart')).toEqual(['mosaic-agent@coder0.service']);
    expect(readFileSync(join(sb.paths.agentsDir, 'coder0.env'), 'utf8')).toContain('changed-model');
  });

  it('applies a saved plan, and refuses the same saved plan after an out-of-band change', async () => {
    const sb = sandbox();
    await sb.systemctl('disable', 'mosaic-agent@reviewer0.service');
    const planFile = join(sb.root, 'fleet.plan.json');
    const made = await fleet(sb, 'plan', '--out', planFile);
    expect(made.code, made.stderr).toBe(0);
    expect(made.mutating).toEqual([]);
    // Agents keep working meanwhile (the stub's `sleep` children come and go every 5 s): not a change to refuse.
    await new Promise((r) => setTimeout(r, 5_500));
    const applied = await fleet(sb, 'apply', planFile);
    expect(applied.code, applied.stdout + applied.stderr).toBe(0);
    expect(
      (
        await sb.run(['systemctl', '--user', 'is-enabled', 'mosaic-agent@reviewer0.service'], {
          reject: false,
        })
      ).stdout.trim(),
    ).toBe('enabled');

    await sb.systemctl('disable', 'mosaic-agent@reviewer0.service');
    const stale = join(sb.root, 'stale.plan.json');
    expect((await fleet(sb, 'plan', '--out', stale)).code).toBe(0);
    await sb.tmux(SOCKET, 'kill-session', '-t', '=lead'); // the machine changes after the plan was made
    const refused = await fleet(sb, 'apply', stale);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/stale: the machine changed since it was made/);
    // ...and says what changed.
    expect(refused.stderr).toMatch(/session mosaic-fleet:lead is gone \(was present\)/);
    expect(refused.stderr).not.toMatch(/\n\s+at /);
    expect(refused.mutating).toEqual([]);
    await reconcileHeals(sb, /respawn .*lead/);

    // The manifest changes after the plan was made: the machine is the same, but the plan no longer is.
    await sb.systemctl('disable', 'mosaic-agent@reviewer0.service');
    const outdated = join(sb.root, 'outdated.plan.json');
    expect((await fleet(sb, 'plan', '--out', outdated)).code).toBe(0);
    const roster = join(sb.paths.mosaicHome, 'fleet', 'roster.yaml');
    const text = readFileSync(roster, 'utf8');
    writeFileSync(roster, text.replace(/(name: lead[\s\S]*?model_hint:\s*)(\S+)/, '$1other-model'));
    const refusedToo = await fleet(sb, 'apply', outdated);
    expect(refusedToo.code).toBe(1);
    expect(refusedToo.stderr).toMatch(/stale: planning now would do something else/);
    expect(refusedToo.stderr).toMatch(/now also: update \S+lead\.env/);
    expect(refusedToo.mutating).toEqual([]);
    writeFileSync(roster, text);
    await reconcileHeals(sb, /enable mosaic-agent@reviewer0\.service/);
  });

  it('lists a removed agent as an orphan, and prunes it only with --prune', async () => {
    const sb = sandbox();
    const roster = join(sb.paths.mosaicHome, 'fleet', 'roster.yaml');
    const text = readFileSync(roster, 'utf8');
    const without = text.replace(/\n {2}- name: reviewer0[\s\S]*?(?=\n {2}- name:|\n[^\s]|$)/, '');
    expect(without).not.toContain('reviewer0');
    writeFileSync(roster, without);
    writeFileSync(join(sb.paths.runDir, 'keep-me.txt'), 'operator file\n');
    const runBefore = snapshotTree(sb.paths.runDir);

    const plain = await fleet(sb, 'reconcile');
    expect(plain.code, plain.stderr).toBe(0);
    expect(plain.stdout).toMatch(/Orphans[\s\S]*reviewer0/);
    expect(plain.mutating).toEqual([]);
    expect((await sb.tmux(SOCKET, 'has-session', '-t', '=reviewer0')).exitCode).toBe(0);
    // `fleet ps` names it an orphan (its unit, session and env file), not an unmanaged session.
    const shown = await fleet(sb, 'ps');
    expect(shown.stdout).toMatch(
      /Orphans[^\n]*\n\s+reviewer0: unit mosaic-agent@reviewer0\.service, session reviewer0/,
    );
    expect(shown.stdout).not.toMatch(/Unmanaged sessions/);

    const pruned = await fleet(sb, 'reconcile', '--prune');
    expect(pruned.code, pruned.stdout + pruned.stderr).toBe(0);
    const unit = 'mosaic-agent@reviewer0.service';
    expect(
      (await sb.run(['systemctl', '--user', 'is-active', unit], { reject: false })).stdout.trim(),
    ).not.toBe('active');
    expect(
      (await sb.run(['systemctl', '--user', 'is-enabled', unit], { reject: false })).stdout.trim(),
    ).not.toBe('enabled');
    expect(
      (await sb.run(['tmux', '-L', SOCKET, 'has-session', '-t', '=reviewer0'], { reject: false })).exitCode,
    ).not.toBe(0);
    expect(existsSync(join(sb.paths.agentsDir, 'reviewer0.env'))).toBe(false);
    expect(readdirSync(sb.paths.archiveDir).some((f) => f.startsWith('reviewer0.'))).toBe(true);
    expect(readFileSync(roster, 'utf8')).toBe(without);
    // run/ keeps everything; the pruned agent's last heartbeat stays where the operator can read it.
    const runAfter = snapshotTree(sb.paths.runDir);
    expect(runAfter['keep-me.txt']).toBe(runBefore['keep-me.txt']);
    expect(Object.keys(runAfter)).toEqual(
      expect.arrayContaining(Object.keys(runBefore).filter((k) => !k.startsWith('.'))),
    );

    const after = await fleet(sb, 'reconcile', '--prune', '--dry-run', '--detailed-exitcode');
    expect(after.code, after.stdout).toBe(0);
  });

  it('journals every apply, readable with fleet history', async () => {
    const sb = sandbox();
    const h = await fleet(sb, 'history', '--json');
    expect(h.code).toBe(0);
    const doc = JSON.parse(h.stdout) as {
      entries: { result: string; actions: { kind: string; outcome: string }[] }[];
    };
    expect(doc.entries.length).toBeGreaterThan(5);
    expect(doc.entries.every((e) => e.result === 'ok')).toBe(true);
    const text = await fleet(sb, 'history', '-n', '2');
    expect(text.stdout).toMatch(/OK\s+fleet reconcile/);
  });

  it('fleet ps still shows what runs while a manifest is invalid, with the error (exit 1)', async () => {
    const sb = sandbox();
    const roster = join(sb.paths.mosaicHome, 'fleet', 'roster.yaml');
    const good = readFileSync(roster, 'utf8');
    writeFileSync(roster, `${good}\n  - name: [broken\n`);
    try {
      const r = await fleet(sb, 'ps');
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/roster\.yaml:\d+:\d+: /);
      expect(r.stdout).toMatch(/^The manifests are invalid/);
      expect(r.stdout).toMatch(/^\s+coder0\s+unit active\/enabled\s+session yes on mosaic-fleet\s+pid \d+/m);
      expect(r.mutating).toEqual([]);
      const j = await fleet(sb, 'ps', '--json');
      const doc = JSON.parse(j.stdout) as { manifest_errors: string[]; running: { name: string }[] };
      expect(doc.manifest_errors.length).toBeGreaterThan(0);
      expect(doc.running.map((x) => x.name)).toEqual(expect.arrayContaining(['coder0', 'lead']));
    } finally {
      writeFileSync(roster, good);
    }
  });
});
