/**
 * Run a built demo (dist/dev/demo*.js) as a user runs it, for the demo tests: no colour, no pauses, killed (by
 * its pid only) when it outlives `timeoutMs`. `onStdout` sees the output so far and may act on it (send a signal).
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { REPO } from './cli.js';

export interface DemoRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export function runDemoScript(
  script: string,
  opts: { timeoutMs: number; onStdout?: (soFar: string, pid: number) => void; nodeArgs?: string[] },
): Promise<DemoRun> {
  if (!existsSync(script)) throw new Error(`${script} is missing: run \`npm run build\` before this test`);
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [...(opts.nodeArgs ?? []), script], {
      cwd: REPO,
      env: { ...process.env, NO_COLOR: '1', DEMO_PAUSE_MS: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => {
      // Only the child we started, by pid.
      if (child.pid !== undefined && child.pid > 1) child.kill('SIGKILL');
    }, opts.timeoutMs);
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8');
      if (child.pid !== undefined) opts.onStdout?.(stdout, child.pid);
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolvePromise({ code, signal, stdout, stderr });
    });
  });
}
