import { describe, expect, it } from 'vitest';
import { backoffPolicy } from '../../src/engine/session.js';
import { UserError } from '../../src/errors.js';
import { normalizeFleet } from '../../src/manifest/normalize.js';
import { parseManifestText } from '../../src/manifest/parse.js';
import { toManifestInputs } from '../../src/manifest/load.js';
import { DEFAULT_BACKOFF } from '../../src/model/plan.js';

const ctx = { userHome: '/home/op', mosaicHome: '/home/op/.mosaic', hostname: 'h' };

function fleetFrom(yaml: string) {
  return normalizeFleet(toManifestInputs([parseManifestText('roster.yaml', yaml)]), ctx);
}

describe('crash-loop back-off policy', () => {
  it('defaults to 10 s doubling to 5 min, reset after 2 healthy minutes', () => {
    expect(backoffPolicy({}, fleetFrom('version: 1\nagents: []\n'))).toEqual(DEFAULT_BACKOFF);
    expect(DEFAULT_BACKOFF).toEqual({ initialMs: 10_000, maxMs: 300_000, resetAfterMs: 120_000 });
  });

  it('takes reconcile.backoff from the manifest, field by field', () => {
    const desired = fleetFrom(
      'version: 1\nreconcile:\n  backoff:\n    initial_seconds: 2\n    max_seconds: 60\nagents: []\n',
    );
    expect(desired.reconcile.backoff).toEqual({ initialSeconds: 2, maxSeconds: 60, resetSeconds: 120 });
    expect(backoffPolicy({}, desired)).toEqual({ initialMs: 2_000, maxMs: 60_000, resetAfterMs: 120_000 });
  });

  it('lets FLEET_BACKOFF_* in the environment override the manifest, and refuses nonsense in one line', () => {
    const desired = fleetFrom('version: 1\nreconcile:\n  backoff:\n    initial_seconds: 2\nagents: []\n');
    expect(backoffPolicy({ FLEET_BACKOFF_INITIAL_SECONDS: '0.5' }, desired).initialMs).toBe(500);
    expect(() => backoffPolicy({ FLEET_BACKOFF_MAX_SECONDS: 'soon' }, desired)).toThrow(UserError);
    expect(() => backoffPolicy({ FLEET_BACKOFF_MAX_SECONDS: 'soon' }, desired)).toThrow(
      'FLEET_BACKOFF_MAX_SECONDS must be a positive number of seconds, got "soon"',
    );
  });
});
