// Build step: bundle the CLI (src/main.ts and everything it imports, node_modules included) into one CommonJS file,
// dist/fleet.cjs, and make the V8 code cache bin/fleet.js compiles it with. Resolving, reading and compiling some
// 150 modules one by one was the largest part of every `fleet` run's start-up (docs/benchmarks.md).
//
// - The bundle lands directly in dist/, like dist/main.js: src/paths.ts finds the package root as the parent of
//   the running code's directory, and src/manifest/schema.ts loads the build-time validator next to itself
//   (copied here from dist/manifest/, where scripts/build-validator.mjs writes it).
// - It ends with `//# fleet-build=<hash of its code>`; the cache is dist/fleet-<that hash>.cache, so a cache is
//   only ever used with the code it was made from.
// - The cache is made by running the new bundle (through bin/fleet.js, exactly as a user does) a few times on a
//   made-up fleet: a temporary home and stand-in `systemctl` and `tmux` scripts that answer with a running fleet,
//   so the runs touch no real manager, server or home. What those runs compiled is what later runs need not.
//   Without a cache (a failed run here, another Node version) `fleet` works the same, only starts slower.
// - Files are renamed into place, so a `fleet` started during a build loads the old bundle or the new one.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { execPath, stderr } from 'node:process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
const BUNDLE = 'fleet.cjs';
/** Everything this script writes into dist/ (and what earlier versions of it wrote: ESM chunks). */
const OURS = /^fleet(-.*)?\.(cjs|js|js\.map|cache)$/;

const staging = mkdtempSync(join(dist, '.bundle-'));
let buildId;
try {
  await build({
    entryPoints: [join(root, 'src', 'main.ts')],
    outfile: join(staging, BUNDLE),
    bundle: true,
    format: 'cjs',
    platform: 'node',
    target: 'node20',
    legalComments: 'none',
    // Without comments and indentation the file is a third smaller, and pure ASCII (a comment's `…` made it a
    // two-byte string): reading it is part of every start-up. Names are kept, for stack traces.
    minifyWhitespace: true,
    minifySyntax: true,
    logLevel: 'warning',
    // import() of node's own modules as require(): code run through vm.Script has no module loader behind it.
    supported: { 'dynamic-import': false },
    // The register's PostgreSQL client is loaded from node_modules, only by a fleet that has a register
    // (src/register/): the bundle every other run reads stays as small as it was.
    external: ['pg'],
    // The sources are ES modules: import.meta.url is the bundle's own URL.
    define: { 'import.meta.url': '__fleetModuleUrl' },
    banner: { js: "const __fleetModuleUrl = require('node:url').pathToFileURL(__filename).href;" },
  });
  const code = readFileSync(join(staging, BUNDLE), 'utf8');
  buildId = createHash('sha256').update(code).digest('hex').slice(0, 16);
  writeFileSync(join(staging, BUNDLE), `${code}//# fleet-build=${buildId}\n`);
  copyFileSync(
    join(dist, 'manifest', 'roster-validator.generated.cjs'),
    join(dist, 'roster-validator.generated.cjs'),
  );
  renameSync(join(staging, BUNDLE), join(dist, BUNDLE));
} finally {
  rmSync(staging, { recursive: true, force: true });
}

const cacheFile = join(dist, `fleet-${buildId}.cache`);
rmSync(cacheFile, { force: true });
train();
if (!existsSync(cacheFile)) {
  stderr.write('build-bundle: no code cache was made; fleet works, but starts slower\n');
}
for (const name of readdirSync(dist)) {
  if (OURS.test(name) && name !== BUNDLE && name !== `fleet-${buildId}.cache`) rmSync(join(dist, name));
}

/** Run the new CLI on a made-up fleet of three agents, writing the code cache (bin/fleet.js). */
function train() {
  const t = mkdtempSync(join(tmpdir(), 'fleet-build-'));
  try {
    const home = join(t, 'home');
    const config = join(home, '.config');
    const mosaic = join(config, 'mosaic');
    const bin = join(t, 'bin');
    for (const d of [join(mosaic, 'fleet'), bin, join(t, 'run'), join(t, 'tmux')])
      mkdirSync(d, { recursive: true });
    const agents = ['a1', 'a2', 'p1'];
    writeFileSync(
      join(mosaic, 'fleet', 'roster.yaml'),
      [
        'version: 1',
        'transport: tmux',
        'tmux:',
        '  socket_name: fleet-build',
        'agents:',
        '  - name: a1',
        '    runtime: stub',
        '    model_hint: m1',
        '  - name: a2',
        '    runtime: stub',
        '    class: coder',
        '  - name: p1',
        '    runtime: pi',
        '',
      ].join('\n'),
    );
    const units = [
      { unit: 'mosaic-tmux-holder.service', load: 'loaded', active: 'active', sub: 'exited' },
      ...agents.map((a) => ({
        unit: `mosaic-agent@${a}.service`,
        load: 'loaded',
        active: 'active',
        sub: 'exited',
      })),
    ];
    const unitFiles = [
      { unit_file: join(config, 'systemd', 'user', 'mosaic-agent@.service'), state: 'enabled' },
      { unit_file: join(config, 'systemd', 'user', 'mosaic-tmux-holder.service'), state: 'enabled' },
    ];
    const now = Math.floor(Date.now() / 1000);
    // PANE_FORMAT of src/observe/tmux.ts: a live pane per agent (a pid no process has), then ownership lines.
    const panes = ['_holder', ...agents].map((s) =>
      [s, 0, 0, 999_999_990, 'bash', 0, '', '', now, now, now, home, 'run-agent.sh'].join('|:|'),
    );
    const owners = agents.map((a) => `.owner|:|${a}|:|${mosaic}`);
    const script = (name, body) => {
      writeFileSync(join(bin, name), `#!/bin/sh\n${body}\n`);
      chmodSync(join(bin, name), 0o755);
    };
    script(
      'systemctl',
      [
        'case "$*" in',
        `  *list-unit-files*) echo '${JSON.stringify(unitFiles)}' ;;`,
        `  *list-units*) echo '${JSON.stringify(units)}' ;;`,
        "  *show-environment*) echo 'PATH=/usr/bin:/bin' ;;",
        "  *show*) echo 'NeedDaemonReload=no' ;;",
        'esac',
      ].join('\n'),
    );
    script(
      'tmux',
      `case "$*" in\n  *list-panes*) printf '%s\\n' ${[...panes, ...owners].map((l) => `'${l}'`).join(' ')} ;;\nesac`,
    );
    const env = {
      PATH: `${bin}:/usr/bin:/bin`,
      HOME: home,
      XDG_CONFIG_HOME: config,
      XDG_RUNTIME_DIR: join(t, 'run'),
      TMUX_TMPDIR: join(t, 'tmux'),
      NO_COLOR: '1',
      FLEET_BUILD_CODE_CACHE: '1',
    };
    const runs = [
      ['validate'],
      ['reconcile', '--dry-run'],
      ['reconcile', '--dry-run', '--json'],
      ['ps'],
      ['ps', '--json'],
      ['plan', '--json'],
    ];
    for (const args of runs) {
      spawnSync(execPath, [join(root, 'bin', 'fleet.js'), ...args], {
        env,
        cwd: t,
        stdio: 'ignore',
        timeout: 60_000,
      });
    }
  } finally {
    rmSync(t, { recursive: true, force: true });
  }
}
