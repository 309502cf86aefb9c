/**
 * The manifest's budgets (docs/spend.md, "Budgets"): an agent's own, the file's default (an agent's null opts out)
 * and a tenant's, normalized; a downgrade without a fallback model and a budget that limits nothing are refused
 * at their line.
 */
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadDesired } from '../../src/manifest/load.js';
import { CTX, diagnosticLines, validateInProcess, writeManifests } from './helpers.js';

let cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups) c();
  cleanups = [];
});

function files(text: string): string {
  const m = writeManifests({ 'r.yaml': text });
  cleanups.push(m.cleanup);
  return join(m.dir, 'r.yaml');
}

describe('budget in the manifest', () => {
  it('normalizes an agent budget, the defaults and a tenant budget', async () => {
    const path = files(
      [
        'version: 1',
        'tenant_id: acme',
        'defaults: {budget: {window: 1d, tokens: 1000000}}',
        'tenant_budgets:',
        '  acme: {window: 7d, usd: 50, reset_at: "06:00", on_exceed: pause}',
        'agents:',
        '  - {name: a1, runtime: stub}',
        '  - {name: a2, runtime: stub, budget: {window: 5h, tokens: 100, on_exceed: downgrade, fallback_model: small}}',
        '  - {name: a3, runtime: stub, budget: null}',
        '',
      ].join('\n'),
    );
    const desired = await loadDesired([path], CTX);
    const [a1, a2, a3] = desired.agents;
    expect(a1?.budget).toMatchObject({
      window: '1d',
      tokens: 1_000_000,
      usd: null,
      resetAt: null,
      onExceed: 'warn',
    });
    expect(a2?.budget).toMatchObject({
      window: '5h',
      tokens: 100,
      onExceed: 'downgrade',
      fallbackModel: 'small',
    });
    expect(a3?.budget).toBeUndefined();
    expect(desired.tenantBudgets?.acme).toMatchObject({
      window: '7d',
      usd: 50,
      resetAt: '06:00',
      onExceed: 'pause',
    });
  });

  it('refuses a downgrade without fallback_model, and a budget that limits nothing, at their lines', async () => {
    const r = await validateInProcess([
      files(
        [
          'version: 1',
          'agents:',
          '  - name: a1',
          '    runtime: stub',
          '    budget:',
          '      window: 5h',
          '      tokens: 100',
          '      on_exceed: downgrade',
          '  - {name: a2, runtime: stub, budget: {window: 1d}}',
          '',
        ].join('\n'),
      ),
    ]);
    expect(r.code).toBe(1);
    const d = diagnosticLines(r.stderr).map((x) => ({ line: x.line, message: x.message }));
    expect(d).toEqual([
      {
        line: 8,
        message: "agent a1's budget: on_exceed: downgrade needs fallback_model (the model to switch to)",
      },
      { line: 9, message: "agent a2's budget limits nothing: give tokens, usd or both" },
    ]);
  });

  it('refuses a window the budget does not know and a reset_at that is no time of day', async () => {
    const r = await validateInProcess([
      files(
        [
          'version: 1',
          'agents:',
          '  - {name: a1, runtime: stub, budget: {window: 30d, tokens: 1}}',
          '  - {name: a2, runtime: stub, budget: {window: 1d, tokens: 1, reset_at: "25:00"}}',
          '',
        ].join('\n'),
      ),
    ]);
    expect(r.code).toBe(1);
    expect(diagnosticLines(r.stderr).map((x) => x.line)).toEqual([3, 4]);
  });
});
