/** The env decider: each local agent's env file, the operator's lines kept, and the keys an agent started now gets. */
import { describe, expect, it } from 'vitest';
import { decideEnvFiles } from '../../../src/plan/deciders/env.js';
import { scopeOf } from '../../../src/plan/deciders/input.js';
import { agent, fleet, observedBuilder } from '../../helpers/builders.js';
import { converge, ENV_PATH, planInputFor } from '../../helpers/planning.js';

const desired = fleet([agent('a1', { modelHint: 'opus' }), agent('far', { host: 'elsewhere' })]);

function env(o = observedBuilder().build(), d = desired) {
  return decideEnvFiles(planInputFor(d, o), scopeOf(d, o));
}

describe('decideEnvFiles', () => {
  it('writes a private env file for each local agent only, and gives the keys it holds', () => {
    const e = env();
    expect(e.actions.map((a) => [a.path, a.mode, a.agent, a.reason])).toEqual([
      [ENV_PATH('a1'), 0o600, 'a1', 'env file not installed'],
    ]);
    expect(e.rendered.get('a1')?.get('MOSAIC_AGENT_MODEL')).toBe('opus');
    expect(e.rendered.has('far')).toBe(false);
  });

  it('keeps the operator’s own lines through a rewrite, and gives their keys too', () => {
    const o = converge(desired, observedBuilder().build());
    const text = `${o.files[ENV_PATH('a1')]?.content ?? ''}# mine\nAPI_KEY=secret\n`;
    const edited = observedBuilder(o).envFile('a1', text).build();
    const e = env(edited, fleet([agent('a1', { modelHint: 'sonnet' })]));
    expect(e.actions[0]?.after).toContain('# mine\nAPI_KEY=secret\n');
    expect(e.actions[0]?.reason).toBe('managed keys differ from the manifest');
    expect(e.rendered.get('a1')?.get('API_KEY')).toBe('secret');
  });

  it('converged: nothing to write, but the keys are still given', () => {
    const o = converge(desired, observedBuilder().build());
    const e = env(o);
    expect(e.actions).toEqual([]);
    expect(e.rendered.get('a1')?.get('MOSAIC_AGENT_NAME')).toBe('a1');
  });
});
