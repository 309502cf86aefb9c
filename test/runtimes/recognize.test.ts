import { describe, expect, it } from 'vitest';
import { programWords } from '../../src/runtimes/recognize.js';

const w = (s: string): string[] => s.split(' ').filter((x) => x !== '');

describe('programWords: the program after the words a shell consumes', () => {
  it.each([
    ['exec /opt/agents/run.sh --flag', '/opt/agents/run.sh --flag'],
    ['exec -a name prog', 'prog'],
    ['exec -l prog', 'prog'],
    ['env A=1 B=2 prog x', 'prog x'],
    ['env -i A=1 prog', 'prog'],
    ['env -u HOME -C /tmp prog', 'prog'],
    ['env --unset=HOME --chdir=/tmp prog', 'prog'],
    ['/usr/bin/env A=1 prog', 'prog'],
    ['env -- prog', 'prog'],
    ['nohup prog arg', 'prog arg'],
    ['setsid -f prog', 'prog'],
    ['nice -n 5 prog', 'prog'],
    ['nice -n5 prog', 'prog'],
    ['stdbuf -oL -e 0 prog', 'prog'],
    ['A=1 B=2 prog', 'prog'],
    ['command -p prog', 'prog'],
    ['time -p prog', 'prog'],
    ['A=1 exec env B=2 nohup setsid prog x', 'prog x'],
  ])('%s → %s', (command, rest) => {
    expect(programWords(w(command))).toEqual(w(rest));
  });

  it('splits env -S into the words that follow', () => {
    expect(programWords(['env', '-S', 'nohup prog a', 'b'])).toEqual(['prog', 'a', 'b']);
  });

  it('leaves a plain command as it is (an interpreter stays: its script is judged by the caller)', () => {
    expect(programWords(w('claude --model x'))).toEqual(w('claude --model x'));
    expect(programWords(w('python3 /opt/agent.py'))).toEqual(w('python3 /opt/agent.py'));
    expect(programWords(w('/opt/execute.sh'))).toEqual(w('/opt/execute.sh'));
  });

  it('is empty when nothing is left to run', () => {
    expect(programWords(['exec'])).toEqual([]);
    expect(programWords(w('env A=1'))).toEqual([]);
    expect(programWords([])).toEqual([]);
  });
});
