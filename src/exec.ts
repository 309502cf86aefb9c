/**
 * The one module that spawns processes. Everything external (systemctl, tmux, systemd-analyze) goes
 * through a Runner, so tests can record and count commands and the rest of the code stays testable.
 *
 * Built on node:child_process directly: a runner needs spawn, capture, a timeout and execa-style messages, and
 * loading execa (some forty modules) cost every `fleet` run more start-up time than all of its spawns together.
 */
import { spawn } from 'node:child_process';
import { appendFileSync } from 'node:fs';
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
  /**
   * The environment its commands start from, when it runs real ones: an in-process client of the same services
   * (D-Bus to the systemd manager, src/observe/systemd-bus.ts) finds them through it. A test's scripted runner
   * has none, and then only its commands are asked.
   */
  readonly env?: NodeJS.ProcessEnv;
}

const DEFAULT_TIMEOUT_MS = 15_000;
/** After the timeout's SIGTERM, how long a command may take to exit before SIGKILL (execa's default too). */
const FORCE_KILL_AFTER_MS = 5_000;

interface Completed {
  /** null when the process was killed by a signal or never started. */
  exitCode: number | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  /** The spawn error (ENOENT, EACCES, ...), when it never started. */
  error: NodeJS.ErrnoException | null;
}

/** Run `file args` to completion; never rejects (a failure to start is `error`). */
function runProcess(
  file: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  options: RunOptions,
): Promise<Completed> {
  const interactive = options.interactive === true;
  const timeoutMs = interactive ? 0 : (options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  return new Promise((resolve) => {
    const child = spawn(file, args, {
      env,
      stdio: interactive ? 'inherit' : [options.input !== undefined ? 'pipe' : 'ignore', 'pipe', 'pipe'],
      ...(options.cwd !== undefined ? { cwd: options.cwd } : {}),
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout?.on('data', (b: Buffer) => out.push(b));
    child.stderr?.on('data', (b: Buffer) => err.push(b));
    let timedOut = false;
    let spawnError: NodeJS.ErrnoException | null = null;
    let forceKill: NodeJS.Timeout | undefined;
    const timer =
      timeoutMs > 0
        ? setTimeout(() => {
            timedOut = true;
            child.kill('SIGTERM');
            forceKill = setTimeout(() => child.kill('SIGKILL'), FORCE_KILL_AFTER_MS);
          }, timeoutMs)
        : undefined;
    child.on('error', (e: NodeJS.ErrnoException) => {
      spawnError ??= e;
    });
    if (options.input !== undefined && child.stdin !== null) {
      // A command that exits without reading its input closes the pipe: that is its business, not an error.
      child.stdin.on('error', () => {});
      child.stdin.end(options.input);
    }
    // 'close' comes after the process exited and its output streams ended (or after a failed spawn).
    child.on('close', (code: number | null) => {
      clearTimeout(timer);
      clearTimeout(forceKill);
      resolve({
        exitCode: spawnError !== null ? null : code,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        timedOut,
        error: spawnError,
      });
    });
  });
}

/** A Runner on node:child_process. `kind` defaults to 'read'; callers that change the machine pass 'mutate'. */
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
    env: { ...process.env, ...baseEnv },
    async run(argv, options = {}) {
      const [file, ...args] = argv;
      if (file === undefined) throw new CommandError('empty command', argv, undefined, '');
      const shown = argv.join(' ');
      let result: Completed;
      try {
        // The process environment, then the runner's, then the call's; an undefined value removes a variable.
        result = await runProcess(file, args, { ...process.env, ...baseEnv, ...options.env }, options);
      } catch (error) {
        throw new CommandError(`Command failed to start: ${shown}`, argv, undefined, '', { cause: error });
      }
      const exitCode = result.exitCode ?? -1;
      record({ argv, kind: options.kind ?? 'read', exitCode });
      const { stdout, stderr } = result;
      if (exitCode === -1) {
        const why = result.timedOut
          ? `Command timed out after ${options.timeoutMs ?? DEFAULT_TIMEOUT_MS} ms`
          : result.error?.code === 'ENOENT'
            ? 'Command not found'
            : 'Command failed to start';
        throw new CommandError(`${why}: ${shown}`, argv, undefined, stderr, {
          cause: result.error ?? result,
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
