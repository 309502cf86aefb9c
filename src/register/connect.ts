/**
 * The register's connection: the DSN from where the manifest says (an environment variable or a file, never the
 * manifest itself), and a `pg` client with short timeouts, loaded only here and only by a fleet with a register.
 * The register is never on the path of local convergence, so every wait on it is bounded.
 */
import type { Client } from 'pg';
import { UserError } from '../errors.js';
import { readFile } from '../fs-async.js';
import type { RegisterSettings } from '../model/desired.js';

/** How long a cycle waits to connect, and for any one statement (docs/hosts.md). */
export const CONNECT_TIMEOUT_MS = 3_000;
export const STATEMENT_TIMEOUT_MS = 5_000;

/** A register problem: one line, said once (the cycle) or the exit 1 of a register command. */
export class RegisterError extends UserError {
  override name = 'RegisterError';
  constructor(
    message: string,
    /** `unreachable`: the server cannot be reached now (a later cycle retries); `refused`: it answered no. */
    readonly kind: 'unreachable' | 'refused' | 'config',
    options?: { cause?: unknown },
  ) {
    super(message, 1, options);
  }
}

/** The DSN, from `register.url_env` or `register.url_file`. */
export async function registerDsn(
  settings: RegisterSettings,
  env: NodeJS.ProcessEnv = process.env,
): Promise<string> {
  if (settings.urlEnv !== null) {
    const dsn = env[settings.urlEnv];
    if (dsn === undefined || dsn.trim() === '')
      throw new RegisterError(
        `register: $${settings.urlEnv} is not set (register.url_env names it)`,
        'config',
      );
    return dsn.trim();
  }
  const file = settings.urlFile ?? '';
  try {
    const dsn = (await readFile(file, 'utf8')).trim();
    if (dsn === '') throw new Error('the file is empty');
    return dsn;
  } catch (error) {
    throw new RegisterError(
      `register: cannot read the DSN from ${file}: ${(error as Error).message}`,
      'config',
      {
        cause: error,
      },
    );
  }
}

/** SQLSTATEs and node errors that mean "not now" rather than "no": the server is down, starting or going. */
const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED',
  'ENOENT',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ECONNRESET',
  'EPIPE',
  'EAI_AGAIN',
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now
  '08000',
  '08001',
  '08003',
  '08006',
]);

/** A `pg` or network error as a register problem of one line. */
export function registerProblem(error: unknown): RegisterError {
  if (error instanceof RegisterError) return error;
  const e = error as { code?: string; message?: string };
  const text = (e.message ?? String(error)).split('\n')[0] ?? '';
  const unreachable =
    (e.code !== undefined && UNREACHABLE_CODES.has(e.code)) ||
    /timeout|terminated|ECONNREFUSED|ENOENT|closed|not queryable/i.test(text);
  return unreachable
    ? new RegisterError(`register unreachable: ${text}`, 'unreachable', { cause: error })
    : new RegisterError(`register: ${text}`, 'refused', { cause: error });
}

/** A connected client with bounded waits. The caller ends it (`client.end()`). */
export async function connectRegister(dsn: string): Promise<Client> {
  const { default: pg } = await import('pg');
  const client = new pg.Client({
    connectionString: dsn,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    statement_timeout: STATEMENT_TIMEOUT_MS,
    lock_timeout: STATEMENT_TIMEOUT_MS,
    query_timeout: STATEMENT_TIMEOUT_MS + 1_000,
    application_name: 'fleet',
  });
  // A server that dies under an idle client makes it emit `error`: without a listener node would crash. The
  // query in flight fails on its own, and that is what the caller sees.
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (error) {
    await client.end().catch(() => undefined);
    throw registerProblem(error);
  }
  return client;
}

/** Run `fn` with a connected client, always ending it; every failure comes out as a RegisterError. */
export async function withRegister<T>(dsn: string, fn: (client: Client) => Promise<T>): Promise<T> {
  const client = await connectRegister(dsn);
  try {
    return await fn(client);
  } catch (error) {
    throw registerProblem(error);
  } finally {
    await client.end().catch(() => undefined);
  }
}
