/**
 * Shared bits of the manifest tests: a temp directory of manifests, and `fleet validate` run in-process (the
 * real validateCommand, stdout/stderr captured) or as the built CLI (`node bin/fleet.js validate`).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { vi } from 'vitest';
import { validateCommand } from '../../src/commands/validate.js';
import type { HostContext } from '../../src/model/desired.js';

export const REPO = resolve(import.meta.dirname, '..', '..');
export const FLEET_BIN = join(REPO, 'bin', 'fleet.js');

export const CTX: HostContext = {
  userHome: '/home/op',
  mosaicHome: '/home/op/.config/mosaic',
  hostname: 'here',
};

/** A temp directory holding `files` (name -> YAML text). Remove with cleanup(). */
export function writeManifests(files: Record<string, string>): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'fleet-manifest-test-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

/** The real validateCommand, with a private MOSAIC_HOME so the default manifests dir is never the operator's. */
export async function validateInProcess(paths: string[]): Promise<Outcome> {
  let stdout = '';
  let stderr = '';
  const out = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stdout += String(chunk);
    return true;
  });
  const err = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stderr += String(chunk);
    return true;
  });
  try {
    const code = await validateCommand(paths, { home: join(tmpdir(), 'fleet-no-such-home') });
    return { code, stdout, stderr };
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
}

/**
 * The built CLI. Refuses to run against a dist/ older than the manifest sources, so a stale build cannot make
 * these tests pass or fail for the wrong reason (`npm test` builds first).
 */
export function assertFreshBuild(): void {
  const built = join(REPO, 'dist', 'commands', 'validate.js');
  if (!existsSync(built)) throw new Error('dist/ is missing: run `npm run build` before the CLI tests');
  const builtAt = statSync(built).mtimeMs;
  const sources = [
    join(REPO, 'src', 'commands', 'validate.ts'),
    ...readdirSync(join(REPO, 'src', 'manifest')).map((f) => join(REPO, 'src', 'manifest', f)),
  ];
  const stale = sources.filter((s) => statSync(s).mtimeMs > builtAt);
  if (stale.length > 0) throw new Error(`dist/ is older than ${stale.join(', ')}: run \`npm run build\``);
}

export function runCli(args: string[], cwd: string): Outcome {
  const r = spawnSync(process.execPath, [FLEET_BIN, ...args], {
    cwd,
    encoding: 'utf8',
    timeout: 60_000,
    // A private home: `validate` with no paths must never read the operator's real manifests.
    env: { PATH: process.env.PATH, HOME: cwd, MOSAIC_HOME: join(cwd, 'no-such-home'), NO_COLOR: '1' },
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** `FILE:LINE:COL: message` lines of stderr (the summary line and excerpts excluded). */
export function diagnosticLines(
  stderr: string,
): { file: string; line: number; col: number; message: string }[] {
  return stderr
    .split('\n')
    .map((l) => /^(.+?):(\d+):(\d+): (.*)$/.exec(l))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ file: m[1] ?? '', line: Number(m[2]), col: Number(m[3]), message: m[4] ?? '' }));
}

/** A stack trace line (`    at fn (file:1:2)`) or an internal-error banner. */
export const STACK_TRACE = /^\s+at .+|internal error/m;
