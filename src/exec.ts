/**
 * The one module that spawns processes. Everything external (systemctl, tmux, systemd-analyze) goes
 * through a Runner, so tests can record and count commands and the rest of the code stays testable.
 */
import { appendFileSync } from 'node:fs';
import { execa } from 'execa';
import { CommandError } from './errors.js';

export interface RunOptions {
  /** Extra environment (merged over the process environment). */
  env?: Record<string, string | undefined>;
  /** Milliseconds before the command is killed. Default 15 s. */
  timeoutMs?: number;
  /** Do not throw on a non-zero exit; return the result instead. */
  reject?: boolean;
  input?: string;
  cwd?: string;
  /**
   * Give the command this process's terminal (stdin, stdout, stderr) and no timeout: for an interactive client
   * (`fleet watch` attaching a viewer). Nothing is captured; the result's stdout and stderr are empty.
   */
  interactive?: boolean;
}

export interface RunResult {
  command: readonly string[];
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** Whether a command changes the machine. Recorded so tests can assert "no mutating command was issued". */
export type CommandClass = 'read' | 'mutate';

export interface RecordedCommand {
  argv: readonly string[];
  kind: CommandClass;
  exitCode: number;
}

export interface Runner {
  run(argv: readonly string[], options?: RunOptions & { kind?: CommandClass }): Promise<RunResult>;
  /** Every command issued so far, in order. */
  readonly log: readonly RecordedCommand[];
}

const DEFAULT_TIMEOUT_MS = 15_000;

/** A Runner backed by execa. `kind` defaults to 'read'; callers that change the machine pass 'mutate'. */
export function createRunner(baseEnv?: Record<string, string | undefined>): Runner {
  const log: RecordedCommand[] = [];
  // FLEET_COMMAND_LOG=<file>: append every command as a JSON line, so tests and operators can count and order
  // what a whole `fleet` process spawned (e.g. "the second reconcile issued no mutating command").
  const logFile = (baseEnv ?? process.env).FLEET_COMMAND_LOG ?? process.env.FLEET_COMMAND_LOG;
  const record = (entry: RecordedCommand) => {
    log.push(entry);
    if (logFile) appendFileSync(logFile, `${JSON.stringify(entry)}\n`);
  };
  return {
    log,
    async run(argv, options = {}) {
      const [file, ...args] = argv;
      if (file === undefined) throw new CommandError('empty command', argv, undefined, '');
      const shown = argv.join(' ');
      let result;
      try {
        result = await execa(file, args, {
          env: { ...baseEnv, ...options.env },
          extendEnv: true,
          timeout: options.interactive === true ? 0 : (options.timeoutMs ?? DEFAULT_TIMEOUT_MS),
          reject: false,
          stripFinalNewline: false,
          ...(options.interactive === true
            ? { stdio: 'inherit' as const }
            : options.input !== undefined
              ? { input: options.input }
              : { stdin: 'ignore' as const }),
          ...(options.cwd !== undefined ? { cwd: options.cwd } : {}),
        });
      } catch (error) {
        throw new CommandError(`Command failed to start: ${shown}`, argv, undefined, '', { cause: error });
      }
      const exitCode = result.exitCode ?? -1;
      record({ argv, kind: options.kind ?? 'read', exitCode });
      const stdout = typeof result.stdout === 'string' ? result.stdout : '';
      const stderr = typeof result.stderr === 'string' ? result.stderr : '';
      if (result.failed && exitCode === -1) {
        const why = result.timedOut
          ? `Command timed out after ${options.timeoutMs ?? DEFAULT_TIMEOUT_MS} ms`
          : result.code === 'ENOENT'
            ? 'Command not found'
            : 'Command failed to start';
        throw new CommandError(`${why}: ${shown}`, argv, undefined, stderr, {
          cause: result.cause ?? result,
        });
      }
      if (exitCode !== 0 && options.reject !== false) {
        const detail = stderr.trim() || stdout.trim();
        throw new CommandError(
          `Command failed with exit code ${exitCode}: ${shown}${detail ? `\n${detail}` : ''}`,
          argv,
          exitCode,
          stderr,
        );
      }
      return { command: argv, exitCode, stdout, stderr };
    },
  };
}
