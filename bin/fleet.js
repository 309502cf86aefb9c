#!/usr/bin/env node
// Start-up is most of what a `fleet` run costs (docs/benchmarks.md), so this entry point does three things first:
//
// - V8's optimizing compilers off: a run lasts a fraction of a second, and compiling hot functions in the
//   background cost it more CPU than their code saved (about a quarter of a no-op reconcile's CPU, measured).
//   Only for the V8 of the supported Node releases, whose flags these are (an unknown flag is reported on
//   stderr). Watch mode, which runs for days, turns TurboFan back on (src/cli.ts).
// - The CLI is one CommonJS bundle, dist/fleet.cjs (scripts/build-bundle.mjs, part of `npm run build`), instead
//   of some 150 modules resolved, read and compiled one by one.
// - It is compiled with the V8 code cache the build made for it by running it (dist/fleet-<build>.cache), so
//   most functions are not compiled again. The bundle ends with its build id; a cache of another build is never
//   used, and one V8 rejects (another Node version) is only a slower start.
//
// This file is CommonJS (bin/package.json): node then runs it without starting its ES module loader, which cost
// 15-30 ms of CPU per run, and its own `require` serves the bundle (which needs node's built-ins only).
'use strict';
const { readFileSync, renameSync, writeFileSync } = require('node:fs');
const { dirname, join } = require('node:path');
const { setFlagsFromString } = require('node:v8');
const { Script } = require('node:vm');

const v8Major = Number(process.versions.v8.split('.')[0]);
if (v8Major === 11 || v8Major === 12) setFlagsFromString('--no-turbofan --no-maglev');

const bundle = join(__dirname, '..', 'dist', 'fleet.cjs');
const source = readFileSync(bundle, 'utf8');
const build = /\/\/# fleet-build=([0-9a-f]+)\s*$/.exec(source)?.[1];
const cacheFile = build === undefined ? null : join(dirname(bundle), `fleet-${build}.cache`);
let cachedData;
try {
  if (cacheFile !== null) cachedData = readFileSync(cacheFile);
} catch {
  // no cache: compiled from source
}
// The same wrapper node gives a CommonJS module; the cache belongs to exactly this text.
const script = new Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, {
  filename: bundle,
  cachedData,
});
const cli = { exports: {} };
script.runInThisContext()(cli.exports, require, cli, bundle, dirname(bundle));

cli.exports.main(process.argv.slice(2), { build }).then((code) => {
  process.exitCode = code;
  // The build's training runs ask for the cache: what this run compiled, added to what the cache held.
  if (process.env.FLEET_BUILD_CODE_CACHE === '1' && cacheFile !== null) {
    const temp = `${cacheFile}.${process.pid}`;
    writeFileSync(temp, script.createCachedData());
    renameSync(temp, cacheFile);
  }
});
