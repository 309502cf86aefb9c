/**
 * describeRuntimes: a describe block over the real-runtime test bed (test/runtimes/bed-core.ts).
 * `FLEET_REQUIRE_RUNTIMES=1` (CI): runtimes that are not installed are a failure, not a skip.
 */
import { afterAll, beforeAll, describe, it } from 'vitest';
import { sandboxUnavailableReason } from '../sandbox.js';
import {
  runtimesRequired,
  runtimesUnavailableReason,
  startBed,
  type Bed,
  type RuntimeName,
} from './bed-core.js';

export * from './bed-core.js';

/**
 * A describe block with one bed shared by its tests. Skipped with the reason when the sandbox or the runtimes
 * are not available, except under FLEET_REQUIRE_SANDBOX=1 / FLEET_REQUIRE_RUNTIMES=1, where that fails.
 */
export function describeRuntimes(
  name: string,
  needs: readonly RuntimeName[],
  fn: (bed: () => Bed) => void,
): void {
  describe(name, async () => {
    const reason = (await sandboxUnavailableReason()) ?? runtimesUnavailableReason(needs);
    if (reason !== null) {
      if (runtimesRequired() || process.env.FLEET_REQUIRE_SANDBOX === '1') {
        it('the runtimes and the sandbox are available (FLEET_REQUIRE_RUNTIMES=1)', () => {
          throw new Error(`required but unavailable: ${reason}`);
        });
        return;
      }
      describe.skip(`skipped: ${reason.split('\n')[0]}`, () => fn(() => unavailable(reason)));
      return;
    }
    let current: Bed | undefined;
    let stop: (() => Promise<void>) | undefined;
    beforeAll(async () => {
      const made = await startBed(needs);
      current = made.bed;
      stop = made.stop;
    }, 120_000);
    afterAll(async () => {
      await stop?.();
    }, 120_000);
    fn(() => {
      if (current === undefined) throw new Error('bed not started (beforeAll failed)');
      return current;
    });
  });
}

function unavailable(reason: string): never {
  throw new Error(`unavailable: ${reason}`);
}
