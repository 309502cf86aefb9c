/**
 * Defect 1 of issue 20: an operator's `command:` that starts with words a shell consumes (`exec`, `env A=1`,
 * `nohup`) was judged by that first word and reported DRIFT ("the roster says 'exec'") for ever.
 */
import { describe, expect, it } from 'vitest';
import { agentStatus, expectedProgram } from '../../src/plan/health.js';
import { agent, observedBuilder, runtime } from '../helpers/builders.js';

describe('a command: behind words a shell consumes', () => {
  it.each([
    'exec /opt/agents/run.sh',
    'env A=1 /opt/agents/run.sh',
    'nohup /opt/agents/run.sh',
    'setsid /opt/agents/run.sh',
    'exec env -u HOME nohup /opt/agents/run.sh --x',
  ])('%s runs run.sh: no DRIFT while it runs, DRIFT when something else does', (command) => {
    const a = agent('x', { runtime: 'pi', command });
    expect(expectedProgram(a, runtime('pi'))).toEqual({ program: 'run.sh', compound: false });
    const ok = observedBuilder()
      .healthyAgent(a, { argv: ['bash', '/opt/agents/run.sh'], startCommand: `bash -lc "${command}"` })
      .build();
    expect(agentStatus(a, ok, runtime('pi')).flags).toEqual([]);
    const other = observedBuilder()
      .healthyAgent(a, { argv: ['python3', '/opt/other.py'], startCommand: 'python3 /opt/other.py' })
      .build();
    expect(agentStatus(a, other, runtime('pi')).flags).toEqual(['DRIFT']);
  });
});
