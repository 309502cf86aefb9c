/**
 * Vitest helpers around the sandbox (a private systemd user manager, tmux dir and Mosaic home; DOMAIN.md
 * section 7). The sandbox itself lives in src/dev/sandbox.ts, shared with `npm run demo`; it is re-exported here so
 * tests keep importing everything from one place.
 */
import { afterAll, beforeAll, describe, it } from 'vitest';
import { sandboxStaticReason, startSandbox, type Sandbox, type SandboxOptions } from '../src/dev/sandbox.js';

export { sandboxStaticReason, startSandbox, type Sandbox, type SandboxOptions } from '../src/dev/sandbox.js';

/** `FLEET_REQUIRE_SANDBOX=1` (CI): a sandbox that cannot start is a failure, not a skip. */
export function sandboxRequired(): boolean {
  return process.env.FLEET_REQUIRE_SANDBOX === '1';
}

let probeResult: Promise<string | null> | undefined;

/**
 * Why sandbox tests cannot run here (null when they can). Static checks first; then one real start and stop,
 * cached per test worker, because a container can pass every static check and still refuse `mount`.
 */
export function sandboxUnavailableReason(): Promise<string | null> {
  probeResult ??= (async () => {
    const reason = sandboxStaticReason();
    if (reason !== null) return reason;
    try {
      const sb = await startSandbox();
      await sb.stop();
      return null;
    } catch (error) {
      return error instanceof Error ? error.message : String(error);
    }
  })();
  return probeResult;
}

/**
 * A describe block with one sandbox shared by its tests (started in beforeAll, stopped in afterAll even when a
 * test failed). Skipped, with the reason in the suite name, when the sandbox cannot start, except under
 * FLEET_REQUIRE_SANDBOX=1, where that is a test failure.
 */
export function describeSandbox(
  name: string,
  fn: (sandbox: () => Sandbox) => void,
  opts: SandboxOptions = {},
): void {
  describe(name, async () => {
    const reason = await sandboxUnavailableReason();
    if (reason !== null) {
      if (sandboxRequired()) {
        it('the sandbox starts (FLEET_REQUIRE_SANDBOX=1)', () => {
          throw new Error(`sandbox required but unavailable: ${reason}`);
        });
        return;
      }
      describe.skip(`skipped: ${reason.split('\n')[0]}`, () => fn(() => unavailable(reason)));
      return;
    }
    let current: Sandbox | undefined;
    beforeAll(async () => {
      current = await startSandbox(opts);
    });
    afterAll(async () => {
      await current?.stop();
    });
    fn(() => {
      if (current === undefined) throw new Error('sandbox not started (beforeAll failed)');
      return current;
    });
  });
}

function unavailable(reason: string): never {
  throw new Error(`sandbox unavailable: ${reason}`);
}

/** Run `fn` with a fresh sandbox of its own, always stopping it. */
export async function withSandbox<T>(fn: (sb: Sandbox) => Promise<T>, opts: SandboxOptions = {}): Promise<T> {
  const sb = await startSandbox(opts);
  try {
    return await fn(sb);
  } finally {
    await sb.stop();
  }
}
