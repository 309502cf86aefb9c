/**
 * The validator generated at build time (dist/manifest/roster-validator.generated.cjs, used by the CLI) and the one
 * compiled at run time from the same schema (used when running from src/) must judge every manifest alike.
 */
import { createRequire } from 'node:module';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { compileValidator } from '../../src/manifest/schema.js';
import { REPO } from '../helpers/cli.js';

function yamlFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return yamlFiles(p);
    return /\.ya?ml$/.test(name) ? [p] : [];
  });
}

const shape = (errors: ErrorObject[] | null | undefined) =>
  (errors ?? []).map((e) => `${e.instancePath} ${e.keyword} ${JSON.stringify(e.params)}`);

describe('prebuilt roster validator', () => {
  it('exists after the build and agrees with the run-time compiled one on every shipped and fixture manifest', () => {
    const prebuilt = createRequire(import.meta.url)(
      join(REPO, 'dist', 'manifest', 'roster-validator.generated.cjs'),
    ) as ValidateFunction;
    const compiled = compileValidator();
    const files = [...yamlFiles(join(REPO, 'manifests')), ...yamlFiles(join(REPO, 'test', 'fixtures'))];
    expect(files.length).toBeGreaterThan(3);
    const samples: unknown[] = [
      ...files.map((f) => {
        try {
          return parse(readFileSync(f, 'utf8')) as unknown;
        } catch {
          return null;
        }
      }),
      { version: 2, agents: [{ name: 'a' }], colour: 'red' },
      { version: 1, tmux: { socket_name: 5 }, agents: [{ name: 'a', runtime: 'pi', enabled: 'yes' }] },
      { version: 1, reconcile: { mode: 'sometimes', backoff: { initial_seconds: 0 } } },
    ];
    let invalid = 0;
    for (const data of samples) {
      const a = prebuilt(data);
      const aErrors = shape(prebuilt.errors);
      const b = compiled(data);
      expect(a).toBe(b);
      expect(aErrors).toEqual(shape(compiled.errors));
      if (!a) invalid++;
    }
    expect(invalid).toBeGreaterThanOrEqual(3);
  });
});
