/**
 * The one top-level catch: turns typed errors into an exit code and one clear message.
 */
import { CommanderError } from 'commander';
import { buildCli } from './cli.js';
import { ExitNow, ManifestError, UserError } from './errors.js';
import { setCodeIdentity } from './manifest/cache.js';

/**
 * A reader that goes away (`fleet history | head`, a pager quit early) ends our output, never the run: the write
 * error is swallowed, so an apply in progress still finishes, is journaled and releases the lock. Nothing calls
 * process.exit (but `ExitNow`, below); the process ends when that work is done.
 */
export function tolerateClosedOutput(stream: NodeJS.WriteStream): void {
  if (stream.listenerCount('error') > 0) return;
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE' || error.code === 'ERR_STREAM_DESTROYED') return;
    // Any other output failure (a full disk behind a redirect) is said once, on the other stream if it can be.
    if (stream !== process.stderr) process.stderr.write(`fleet: cannot write output: ${error.message}\n`);
  });
}

/** `build`: the bundle's build id (bin/fleet.js), which lets parsed manifests be cached (src/manifest/cache.ts). */
export async function main(argv: readonly string[], runtime: { build?: string } = {}): Promise<number> {
  setCodeIdentity(runtime.build ?? null);
  tolerateClosedOutput(process.stdout);
  tolerateClosedOutput(process.stderr);
  const program = buildCli();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (error) {
    // The one process.exit: the work still in flight (a cycle's spawns, timers) would keep the process alive.
    if (error instanceof ExitNow) process.exit(error.code);
    if (error instanceof CommanderError) {
      // commander already printed its message (help, version, unknown option).
      return error.exitCode === 0 ? 0 : 1;
    }
    if (error instanceof ManifestError) {
      process.stderr.write(`${error.message}\n`);
      return error.code;
    }
    if (error instanceof UserError) {
      process.stderr.write(`fleet: ${error.message}\n`);
      return error.code;
    }
    process.stderr.write(`fleet: internal error (a bug in the reconciler):\n`);
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    return 1;
  }
}
