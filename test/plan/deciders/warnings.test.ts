/** The warnings decider: what no action fixes, said once and plainly. */
import { describe, expect, it } from 'vitest';
import { scopeOf } from '../../../src/plan/deciders/input.js';
import { decideWarnings, type WarningsBasis } from '../../../src/plan/deciders/warnings.js';
import { agent, fleet, observedBuilder } from '../../helpers/builders.js';
import { planInputFor } from '../../helpers/planning.js';

const desired = fleet([agent('a1', { workingDirectory: '/nowhere' }), agent('a2'), agent('a3')]);

function warnings(basis: Partial<WarningsBasis>, linger: boolean | null = true): string[] {
  const o = observedBuilder().linger(linger).build();
  o.dirs = { '/nowhere': false };
  o.managerPath = '/usr/bin';
  return decideWarnings(planInputFor(desired, o), scopeOf(desired, o), {
    leftAlone: [],
    blocked: [],
    acting: false,
    madeDirs: new Set(),
    ...basis,
  });
}

describe('decideWarnings', () => {
  it('a missing working directory is said before the start fails', () => {
    expect(warnings({})).toEqual([
      'a1: working directory /nowhere does not exist; its session cannot start until it does',
    ]);
  });

  it('a missing runtime program: one line naming every agent held for it, and the manager’s PATH', () => {
    const block = { cause: 'program' as const, program: 'claude', reason: 'x' };
    const w = warnings({
      blocked: [
        { agent: 'a2', block },
        { agent: 'a3', block },
      ],
    });
    expect(w[1]).toBe(
      "runtime program 'claude' is not on the user manager's PATH (/usr/bin): a2, a3 not started or restarted " +
        "until it is (install it, or set the manager's PATH with `systemctl --user set-environment PATH=...`)",
    );
  });

  it('sessions left alone come first; linger off is said only when the plan acts', () => {
    expect(warnings({ leftAlone: ['x left alone'] }, false)[0]).toBe('x left alone');
    expect(warnings({}, false).some((w) => w.startsWith('linger is off'))).toBe(false);
    expect(warnings({ acting: true }, false).at(-1)).toMatch(/^linger is off for this user/);
  });
});
