/** The one "start known to fail" rule, shared by the planner and `fleet restart`. */
import { describe, expect, it } from 'vitest';
import { runtimeProgram, runtimePrograms, startBlocker } from '../../../src/plan/deciders/start-check.js';
import { agent, fleet, HOSTNAME, observedBuilder, runtime } from '../../helpers/builders.js';
import { CTX } from '../../helpers/planning.js';

const a1 = agent('a1', { runtime: 'claude' });
const desired = fleet([a1], { runtimes: { claude: runtime('claude', { command: 'claude' }) } });

function observed(dir: boolean, found: boolean) {
  const o = observedBuilder().build();
  o.dirs = { [a1.workingDirectory]: dir };
  o.programs = {
    claude: found ? { path: '/usr/bin/claude', realPath: '/usr/bin/claude' } : { path: null, realPath: null },
  };
  return o;
}

describe('startBlocker', () => {
  it('a start that can succeed is not blocked', () => {
    expect(startBlocker(a1, desired, observed(true, true), CTX, undefined)).toBeNull();
  });

  it('a missing working directory blocks it, before the program is looked at', () => {
    expect(startBlocker(a1, desired, observed(false, false), CTX, undefined)).toEqual({
      cause: 'workdir',
      directory: '/home/op/work',
      reason: 'working directory /home/op/work does not exist',
    });
  });

  it('a runtime program not on the manager’s PATH blocks it, unless the agent sets its own PATH', () => {
    expect(startBlocker(a1, desired, observed(true, false), CTX, undefined)).toEqual({
      cause: 'program',
      program: 'claude',
      reason: "runtime program 'claude' is not on the user manager's PATH",
    });
    expect(startBlocker(a1, desired, observed(true, false), CTX, new Map([['PATH', '/opt/bin']]))).toBeNull();
  });

  it('a program nobody looked up, a command: agent and the fleet’s own stub are not judged', () => {
    const o = observed(true, false);
    o.programs = {};
    expect(startBlocker(a1, desired, o, CTX, undefined)).toBeNull();
    const cmd = agent('c', { command: 'my-agent --x' });
    expect(runtimeProgram(cmd, desired, CTX)).toBeNull();
    const stub = fleet([agent('s', { runtime: 'stub' })], {
      runtimes: { stub: runtime('stub', { command: `${CTX.toolsDir}/stub-agent.sh` }) },
    });
    expect(runtimeProgram(stub.agents[0] ?? a1, stub, CTX)).toBeNull();
  });

  it('runtimePrograms: each local, enabled agent’s program once, sorted', () => {
    const f = fleet([
      agent('a', { runtime: 'pi' }),
      agent('b', { runtime: 'pi' }),
      agent('c', { runtime: 'codex', enabled: false }),
      agent('d', { runtime: 'claude', host: 'elsewhere' }),
      agent('e', { runtime: 'claude' }),
    ]);
    expect(runtimePrograms(f, CTX, HOSTNAME)).toEqual(['claude', 'pi']);
  });
});
