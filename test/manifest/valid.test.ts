/**
 * Valid manifests normalize to the DesiredFleet an operator expects: the socket rule, aliases, `~` expansion,
 * defaults, tenant/host propagation, runtime overrides; and `fleet validate manifests/` accepts the examples.
 */
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { expandInputs } from '../../src/manifest/files.js';
import { checkManifests, loadDesired } from '../../src/manifest/load.js';
import { expandHome } from '../../src/manifest/normalize.js';
import { builtinRuntimes, plainRuntime } from '../../src/runtimes/index.js';
import type { DesiredAgent, DesiredFleet } from '../../src/model/desired.js';
import {
  CTX,
  REPO,
  STACK_TRACE,
  assertFreshBuild,
  runCli,
  validateInProcess,
  writeManifests,
} from './helpers.js';

const EXAMPLES = join(REPO, 'manifests');
const EDGE = join(REPO, 'test', 'fixtures', 'manifests', 'edge');
const STUB_COMMAND = '/home/op/.config/mosaic/tools/fleet/stub-agent.sh';

function agent(fleet: DesiredFleet, name: string): DesiredAgent {
  const a = fleet.agents.find((x) => x.name === name);
  if (!a) throw new Error(`no agent ${name} in ${fleet.agents.map((x) => x.name).join(', ')}`);
  return a;
}

describe('shipped examples', () => {
  it('minimal.yaml: one claude agent on the default socket (no -L), home directory, default heartbeat', async () => {
    const fleet = await loadDesired([join(EXAMPLES, 'minimal.yaml')], CTX);
    expect(fleet.agents).toEqual([
      {
        name: 'solo',
        runtime: 'claude',
        class: null,
        modelHint: null,
        workingDirectory: '/home/op',
        command: null,
        host: null,
        enabled: true,
        socketName: '',
        holderSession: '_holder',
        tenantId: null,
        heartbeat: { staleAfterSeconds: 90, graceSeconds: 60, respawnOnStale: false },
        resume: null,
        restartPolicy: null,
        source: { file: join(EXAMPLES, 'minimal.yaml'), line: 6, col: 5 },
      },
    ]);
    expect(fleet.sockets).toEqual([{ socketName: '', holderSession: '_holder' }]);
    expect(fleet.reconcile).toEqual({
      mode: 'none',
      intervalSeconds: 120,
      backoff: { initialSeconds: 10, maxSeconds: 300, resetSeconds: 120 },
    });
    expect(fleet.tenantId).toBeNull();
  });

  it('canary.yaml: three stub agents on mosaic-fleet with classes and model hints', async () => {
    const fleet = await loadDesired([join(EXAMPLES, 'canary.yaml')], CTX);
    expect(
      fleet.agents.map((a) => [a.name, a.runtime, a.class, a.modelHint, a.socketName, a.holderSession]),
    ).toEqual([
      ['coder0', 'stub', 'coder', 'sonnet', 'mosaic-fleet', '_holder'],
      ['lead', 'stub', 'orchestrator', 'opus', 'mosaic-fleet', '_holder'],
      ['reviewer0', 'stub', 'reviewer', 'sonnet', 'mosaic-fleet', '_holder'],
    ]);
    expect(fleet.sockets).toEqual([{ socketName: 'mosaic-fleet', holderSession: '_holder' }]);
    // defaults.working_directory ~ (the home), expanded against the user's home.
    expect(new Set(fleet.agents.map((a) => a.workingDirectory))).toEqual(new Set(['/home/op']));
    // The agent-level heartbeat overrides one field; the rest come from the file's defaults.
    expect(agent(fleet, 'reviewer0').heartbeat).toEqual({
      staleAfterSeconds: 90,
      graceSeconds: 60,
      respawnOnStale: true,
    });
    expect(agent(fleet, 'lead').heartbeat.respawnOnStale).toBe(false);
    // The stub runtime is built in and lives in the Mosaic home's tools.
    expect(fleet.runtimes.stub).toEqual({
      ...plainRuntime('stub'),
      command: STUB_COMMAND,
      heartbeat: true,
    });
  });

  it('multi-host.yaml: camelCase aliases, tenant and host on every agent, a declared runtime', async () => {
    const fleet = await loadDesired([join(EXAMPLES, 'multi-host.yaml')], CTX);
    expect(fleet.tenantId).toBe('acme');
    expect(fleet.sockets).toEqual([{ socketName: 'acme-fleet', holderSession: '_holder' }]);
    expect(fleet.agents.map((a) => [a.name, a.host, a.tenantId, a.socketName, a.enabled])).toEqual([
      ['acme-coder', 'build-02', 'acme', 'acme-fleet', true],
      ['acme-planner', 'build-01', 'acme', 'acme-fleet', true],
      ['acme-tester', 'build-02', 'acme', 'acme-fleet', false],
    ]);
    expect(agent(fleet, 'acme-coder').workingDirectory).toBe('/srv/acme/repo');
    expect(agent(fleet, 'acme-planner').workingDirectory).toBe('/srv/acme');
    expect(agent(fleet, 'acme-tester').command).toBe('pi --profile tests');
    expect(fleet.runtimes['acme-agent']).toEqual({
      ...plainRuntime('acme-agent'),
      command: '/opt/acme/bin/agent',
      heartbeat: true,
    });
  });

  it('all examples together form one fleet: agents sorted by name, sockets sorted, each agent keeps its file', async () => {
    const fleet = await loadDesired([EXAMPLES], CTX);
    expect(fleet.sources).toEqual(
      ['canary.yaml', 'minimal.yaml', 'multi-host.yaml'].map((f) => join(EXAMPLES, f)),
    );
    expect(fleet.agents.map((a) => a.name)).toEqual([
      'acme-coder',
      'acme-planner',
      'acme-tester',
      'coder0',
      'lead',
      'reviewer0',
      'solo',
    ]);
    expect(fleet.sockets.map((s) => s.socketName)).toEqual(['', 'acme-fleet', 'mosaic-fleet']);
    // Tenant comes from the agent's own file, not from another file of the fleet.
    expect(agent(fleet, 'solo').tenantId).toBeNull();
    expect(agent(fleet, 'solo').socketName).toBe('');
    expect(agent(fleet, 'acme-coder').tenantId).toBe('acme');
    expect(agent(fleet, 'lead').source.file).toBe(join(EXAMPLES, 'canary.yaml'));
    expect(Object.keys(fleet.runtimes).sort()).toEqual([
      'acme-agent',
      'claude',
      'codex',
      'opencode',
      'pi',
      'stub',
    ]);
  });

  it('fleet validate (in process): exit 0, one ok line per file', async () => {
    const r = await validateInProcess([EXAMPLES]);
    expect(r).toEqual({
      code: 0,
      stdout: [
        `${join(EXAMPLES, 'canary.yaml')}: ok (3 agents)`,
        `${join(EXAMPLES, 'minimal.yaml')}: ok (1 agent)`,
        `${join(EXAMPLES, 'multi-host.yaml')}: ok (3 agents)`,
        '',
      ].join('\n'),
      stderr: '',
    });
  });
});

describe('fleet validate through the built CLI', () => {
  beforeAll(() => assertFreshBuild());

  it('`fleet validate manifests/` exits 0 and names the files as given', () => {
    const r = runCli(['validate', 'manifests/'], REPO);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(
      'manifests/canary.yaml: ok (3 agents)\nmanifests/minimal.yaml: ok (1 agent)\nmanifests/multi-host.yaml: ok (3 agents)\n',
    );
  });

  it('with no paths, validates <home>/fleet (MOSAIC_HOME)', () => {
    const m = writeManifests({});
    try {
      const r = runCli(['--home', REPO, 'validate'], m.dir);
      // REPO has no fleet/ directory: the default location is what gets reported.
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(
        `${join(REPO, 'fleet')}:1:1: cannot read manifests: no such file or directory`,
      );
      expect(r.stderr).not.toMatch(STACK_TRACE);
      const r2 = runCli(['--manifests', 'manifests/minimal.yaml', 'validate'], REPO);
      expect(r2.code).toBe(0);
      expect(r2.stdout).toBe(`${join(REPO, 'manifests', 'minimal.yaml')}: ok (1 agent)\n`);
    } finally {
      m.cleanup();
    }
  });
});

describe('normalization edge cases (test/fixtures/manifests/edge)', () => {
  it('reads *.yaml and *.yml sorted; skips dot files, other files and directories', async () => {
    const { files, diagnostics } = await expandInputs([EDGE]);
    expect(diagnostics).toEqual([]);
    expect(files).toEqual(
      ['a-default-socket.yaml', 'b-null-socket.yml', 'c-named.yaml'].map((f) => join(EDGE, f)),
    );
  });

  it('a file named twice (directly and through its directory) is loaded once', async () => {
    const { files } = await expandInputs([join(EDGE, 'c-named.yaml'), EDGE]);
    expect(files).toEqual(
      ['c-named.yaml', 'a-default-socket.yaml', 'b-null-socket.yml'].map((f) => join(EDGE, f)),
    );
  });

  it('empty and null socket_name both mean the default socket; holder alias; named socket and holder', async () => {
    const fleet = await loadDesired([EDGE], CTX);
    expect(fleet.sockets).toEqual([
      { socketName: '', holderSession: '_holder' },
      { socketName: 'edge-sock', holderSession: 'keeper' },
    ]);
    expect(agent(fleet, 'zed').socketName).toBe('');
    expect(agent(fleet, 'bob').socketName).toBe('');
    expect(agent(fleet, 'dan')).toMatchObject({
      socketName: 'edge-sock',
      holderSession: 'keeper',
      tenantId: 't1',
      host: 'box-1',
    });
  });

  it('working directories: defaults, `~` (YAML null) as home, `~/..` normalized, trailing slash dropped', async () => {
    const fleet = await loadDesired([EDGE], CTX);
    expect(agent(fleet, 'zed').workingDirectory).toBe('/home/op/projects'); // defaults: ~/work/../projects/
    expect(agent(fleet, 'amy').workingDirectory).toBe('/home/op'); // working_directory: ~ (null in YAML)
    expect(agent(fleet, 'bob').workingDirectory).toBe('/home/op'); // no defaults in its file
    expect(agent(fleet, 'dan').workingDirectory).toBe('/srv/dan'); // /srv/dan/
  });

  it('heartbeat: per-file defaults, per-agent overrides, YAML anchors', async () => {
    const fleet = await loadDesired([EDGE], CTX);
    expect(agent(fleet, 'zed').heartbeat).toEqual({
      staleAfterSeconds: 300,
      graceSeconds: 60,
      respawnOnStale: false,
    });
    expect(agent(fleet, 'amy').heartbeat).toEqual({
      staleAfterSeconds: 300,
      graceSeconds: 5,
      respawnOnStale: true,
    });
    // Another file's defaults do not leak into this one.
    expect(agent(fleet, 'bob').heartbeat).toEqual({
      staleAfterSeconds: 20,
      graceSeconds: 10,
      respawnOnStale: false,
    });
    expect(agent(fleet, 'cat').heartbeat).toEqual(agent(fleet, 'bob').heartbeat);
    expect(agent(fleet, 'cat').enabled).toBe(false);
  });

  it('runtimes: a built-in overridden field by field; a new one (defined identically in two files) writes no heartbeat by default', async () => {
    const fleet = await loadDesired([EDGE], CTX);
    // Only the fields set change; the adapter's other fields stay the built-in ones.
    expect(fleet.runtimes.claude).toEqual({
      ...builtinRuntimes(CTX).claude,
      command: '/opt/claude/bin/claude',
      resetCommand: '/clear',
    });
    expect(fleet.runtimes.shared).toEqual({
      ...plainRuntime('shared'),
      command: '/usr/local/bin/shared-agent',
    });
    expect(fleet.runtimes.codex).toEqual(builtinRuntimes(CTX).codex);
    expect(agent(fleet, 'dan').command).toBe('codex --full-auto');
  });

  it('reconcile from the one file that sets it; tenant from the one file that names one', async () => {
    const fleet = await loadDesired([EDGE], CTX);
    expect(fleet.reconcile).toMatchObject({ mode: 'timer', intervalSeconds: 600 });
    expect(fleet.tenantId).toBe('t1');
    expect(agent(fleet, 'zed').tenantId).toBeNull();
  });

  it('the same inputs in another order give the same fleet (apart from load order)', async () => {
    const files = ['c-named.yaml', 'b-null-socket.yml', 'a-default-socket.yaml'].map((f) => join(EDGE, f));
    const a = await loadDesired([EDGE], CTX);
    const b = await loadDesired(files, CTX);
    expect(b.sources).toEqual(files);
    expect({ ...b, sources: [] }).toEqual({ ...a, sources: [] });
  });
});

describe('small valid fleets', () => {
  let cleanup: (() => void) | undefined;
  afterEach(() => cleanup?.());

  it('an empty fleet is valid: no agents, no sockets', async () => {
    const m = writeManifests({ 'empty.yaml': 'version: 1\nagents: []\n', 'bare.yaml': 'version: 1\n' });
    cleanup = m.cleanup;
    const fleet = await loadDesired([m.dir], CTX);
    expect(fleet.agents).toEqual([]);
    expect(fleet.sockets).toEqual([]);
    expect(fleet.sources).toHaveLength(2);
    const r = await validateInProcess([m.dir]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('empty.yaml: ok (0 agents)');
  });

  it('command may hold shell syntax (the operator escape hatch); description and class any safe text', async () => {
    const m = writeManifests({
      'r.yaml':
        'version: 1\nagents:\n  - name: A-1_b\n    runtime: claude\n    command: "claude --resume $(cat ~/.last) | tee log; echo \'done\'"\n    class: senior coder\n    description: "Does things: well (mostly)"\n',
    });
    cleanup = m.cleanup;
    const fleet = await loadDesired([m.dir], CTX);
    expect(fleet.agents[0]).toMatchObject({
      name: 'A-1_b',
      command: "claude --resume $(cat ~/.last) | tee log; echo 'done'",
      class: 'senior coder',
    });
  });

  it('CRLF line endings (a file saved on Windows) are not control characters in values', async () => {
    const m = writeManifests({
      'r.yaml': 'version: 1\r\nagents:\r\n  - name: a1\r\n    runtime: claude\r\n    class: coder\r\n',
    });
    cleanup = m.cleanup;
    const fleet = await loadDesired([m.dir], CTX);
    expect(fleet.agents[0]).toMatchObject({ name: 'a1', class: 'coder', source: { line: 3, col: 5 } });
  });

  it('a runtime named like an Object property (`constructor`) is an ordinary new runtime', async () => {
    const m = writeManifests({
      'r.yaml':
        'version: 1\nruntimes:\n  constructor:\n    reset_command: /reset\nagents:\n  - name: a1\n    runtime: constructor\n',
    });
    cleanup = m.cleanup;
    const fleet = await loadDesired([m.dir], CTX);
    expect(fleet.runtimes.constructor).toEqual({
      ...plainRuntime('constructor'),
      resetCommand: '/reset',
    });
  });

  it('checkManifests reports no diagnostics for the examples', async () => {
    const r = await checkManifests([EXAMPLES]);
    expect(r.diagnostics).toEqual([]);
    expect(r.manifests).toHaveLength(3);
  });
});

describe('expandHome', () => {
  it.each([
    ['~', '/home/op'],
    ['~/', '/home/op'],
    ['~/a/b/', '/home/op/a/b'],
    ['~/a/../b', '/home/op/b'],
    ['/srv//x/.', '/srv/x'],
    ['/', '/'],
  ])('%s -> %s', (input, output) => {
    expect(expandHome(input, '/home/op')).toBe(output);
  });
});
