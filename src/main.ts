/**
 * The one top-level catch: turns typed errors into an exit code and one clear message.
 */
import { CommanderError } from 'commander';
import { buildCli } from './cli.js';
import { ManifestError, UserError } from './errors.js';

export async function main(argv: readonly string[]): Promise<number> {
  const program = buildCli();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (error) {
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
