/** `pricing:` in the manifest: normalized by model, later files win, all four prices required. */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkManifests, loadDesired } from '../../src/manifest/load.js';
import { CTX, writeManifests } from './helpers.js';

describe('pricing', () => {
  it('is normalized by model; a model priced in two files takes the last file’s price', async () => {
    const m = writeManifests({
      'a.yaml':
        'version: 1\npricing:\n  m1: {input: 3, output: 15, cache_read: 0.3, cache_write: 3.75}\n  m2: {input: 1, output: 2, cache_read: 0, cache_write: 0}\n',
      'b.yaml': 'version: 1\npricing:\n  m2: {input: 5, output: 6, cache_read: 7, cache_write: 8}\n',
    });
    try {
      const fleet = await loadDesired([join(m.dir, 'a.yaml'), join(m.dir, 'b.yaml')], CTX);
      expect(fleet.pricing).toEqual({
        m1: { input: 3, output: 15, cache_read: 0.3, cache_write: 3.75 },
        m2: { input: 5, output: 6, cache_read: 7, cache_write: 8 },
      });
    } finally {
      m.cleanup();
    }
  });

  it('without pricing the fleet has none; a missing or negative price is a diagnostic at its line', async () => {
    const m = writeManifests({
      'ok.yaml': 'version: 1\n',
      'bad.yaml':
        'version: 1\npricing:\n  m1: {input: 3, output: 15}\n  m2: {input: -1, output: 1, cache_read: 0, cache_write: 0}\n',
    });
    try {
      expect((await loadDesired([join(m.dir, 'ok.yaml')], CTX)).pricing).toBeUndefined();
      const r = await checkManifests([join(m.dir, 'bad.yaml')]);
      expect(r.diagnostics.map((d) => `${d.line}: ${d.message}`)).toEqual([
        '3: pricing.m1 is missing the required key "cache_read"',
        '3: pricing.m1 is missing the required key "cache_write"',
        '4: pricing.m2.input must be >= 0 (got number -1)',
      ]);
    } finally {
      m.cleanup();
    }
  });
});
