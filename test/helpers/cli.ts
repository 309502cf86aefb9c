/**
 * Run the real `fleet` CLI (bin/fleet.js, built) as a child process inside a sandbox, recording every command
 * it spawns through FLEET_COMMAND_LOG.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { RecordedCommand } from '../../src/exec.js';

export const REPO = resolve(import.meta.dirname, '..', '..');
export const FLEET_BIN = join(REPO, 'bin', 'fleet.js');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  /** Every external command the CLI ran. */
  commands: RecordedCommand[];
  /** The commands that change the machine. */
  mutating: RecordedCommand[];
}

export function runFleet(
  env: Record<string, string | undefined>,
  args: string[],
  opts: { logDir: string; timeoutMs?: number; cwd?: string },
): Promise<CliResult> {
  if (!existsSync(join(REPO, 'dist', 'main.js'))) {
    throw new Error('dist/ is missing: run `npm run build` before the CLI tests');
  }
  const logFile = join(
    opts.logDir,
    `commands-${process.pid}-${Date.now()}-${Math.random().toString(16).slice(2)}.jsonl`,
  );
  return new Promise((resolvePromise) => {
    execFile(
      process.execPath,
      [FLEET_BIN, ...args],
      {
        env: { ...env, FLEET_COMMAND_LOG: logFile, NO_COLOR: '1' },
        cwd: opts.cwd ?? REPO,
        timeout: opts.timeoutMs ?? 120_000,
        maxBuffer: 32 * 1024 * 1024,
      },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        const commands: RecordedCommand[] = existsSync(logFile)
          ? readFileSync(logFile, 'utf8')
              .split('\n')
              .filter((l) => l.trim() !== '')
              .map((l) => JSON.parse(l) as RecordedCommand)
          : [];
        rmSync(logFile, { force: true });
        resolvePromise({
          code,
          stdout,
          stderr,
          commands,
          mutating: commands.filter((c) => c.kind === 'mutate'),
        });
      },
    );
  });
}
