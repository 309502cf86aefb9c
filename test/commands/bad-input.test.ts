/**
 * Bad input and a broken environment: one clear line, exit 1, no stack trace, and nothing changes on disk.
 * No sandbox needed: these must fail before anything reaches systemd or tmux.
 */
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { snapshotTree } from '../helpers/snapshot.js';
import { REPO, runFleet } from '../helpers/cli.js';

let root = '';
let env: Record<string, string | undefined> = {};

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'fleet-bad-'));
  const home = join(root, 'home');
  const mosaic = join(home, '.config', 'mosaic');
  mkdirSync(join(mosaic, 'fleet'), { recursive: true });
  writeFileSync(join(mosaic, 'fleet', 'roster.yaml'), readFileSync(join(REPO, 'manifests', 'canary.yaml')));
  const runtime = join(root, 'run');
  mkdirSync(runtime, { mode: 0o700 });
  env = {
    ...process.env,
    HOME: home,
    XDG_CONFIG_HOME: join(home, '.config'),
    XDG_RUNTIME_DIR: runtime, // no manager listens here
    MOSAIC_HOME: mosaic,
    TMUX_TMPDIR: join(root, 'tmux'),
    TMUX: undefined,
    DBUS_SESSION_BUS_ADDRESS: undefined,
  };
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

async function expectRefused(
  args: string[],
  message: RegExp,
  extraEnv: Record<string, string | undefined> = {},
) {
  const before = snapshotTree(root);
  const r = await runFleet({ ...env, ...extraEnv }, args, { logDir: tmpdir() });
  expect(r.code, r.stdout + r.stderr).toBe(1);
  expect(r.stderr).toMatch(message);
  expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
  expect(r.mutating).toEqual([]);
  expect(snapshotTree(root)).toEqual(before);
  return r;
}

describe('bad input and a broken environment change nothing', () => {
  it('reconcile without tmux on PATH', async () => {
    const bin = join(root, 'bin-no-tmux');
    mkdirSync(bin, { recursive: true });
    if (!existsSync(join(bin, 'systemctl'))) symlinkSync('/usr/bin/systemctl', join(bin, 'systemctl'));
    const r = await expectRefused(['reconcile'], /^fleet: tmux not found on PATH/, { PATH: bin });
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('reconcile with no reachable systemd user manager', async () => {
    await expectRefused(['reconcile'], /^fleet: cannot reach the systemd user manager/);
    await expectRefused(['reconcile'], /XDG_RUNTIME_DIR is not set/, { XDG_RUNTIME_DIR: undefined });
  });

  it('a dry-run with no reachable manager says so too', async () => {
    await expectRefused(['reconcile', '--dry-run'], /cannot reach the systemd user manager/);
  });

  it('reconcile with an invalid manifest names the file and line', async () => {
    const bad = join(root, 'bad.yaml');
    writeFileSync(bad, 'version: 1\nagents:\n  - name: ../x\n    runtime: stub\n');
    await expectRefused(['--manifests', bad, 'reconcile'], /bad\.yaml:3:\d+: /);
    rmSync(bad);
  });

  it('an unknown flag, a missing plan file, and a file that is not a plan', async () => {
    await expectRefused(['reconcile', '--bogus'], /unknown option '--bogus'/);
    await expectRefused(['apply', join(root, 'nope.plan')], /cannot read plan/);
    const notPlan = join(tmpdir(), `fleet-not-a-plan-${process.pid}.json`);
    writeFileSync(notPlan, '{"hello": 1}');
    await expectRefused(['apply', notPlan], /is not a saved plan/);
    rmSync(notPlan);
  });

  it('--detailed-exitcode without --dry-run is refused', async () => {
    await expectRefused(['reconcile', '--detailed-exitcode'], /only makes sense with --dry-run/);
  });
});
