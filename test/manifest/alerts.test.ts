/** Alert rules in manifests: normalized into the desired fleet, and refused with one clear line each when wrong. */
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadDesired } from '../../src/manifest/load.js';
import { durationSeconds } from '../../src/manifest/normalize.js';
import { CTX, diagnosticLines, validateInProcess, writeManifests } from './helpers.js';

let cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups) c();
  cleanups = [];
});

function files(f: Record<string, string>): string {
  const m = writeManifests(f);
  cleanups.push(m.cleanup);
  return m.dir;
}

const AGENTS = 'agents:\n  - name: a1\n    runtime: claude\n';

describe('alerts in manifests', () => {
  it('normalizes rules of every file, in load order, with default names and durations', async () => {
    const dir = files({
      'a.yaml': `version: 1\nalerts:\n  - when: [waiting]\n    after: 3s\n    send: {webhook: {url_env: HOOK}}\n${AGENTS}`,
      'b.yaml': `version: 1\nalerts:\n  - name: pager\n    when: [crash-loop, stale]\n    agents: ["a*", b1]\n    after: 90\n    send: {command: [/usr/bin/logger, -t, fleet]}\n  - when: [wedged]\n    send: {command: [/bin/true]}\n`,
    });
    const d = await loadDesired([dir], CTX);
    expect(d.alerts?.map((r) => [r.name, r.when, r.agents, r.afterSeconds, r.send])).toEqual([
      ['alert-1', ['waiting'], null, 3, { kind: 'webhook', urlEnv: 'HOOK' }],
      [
        'pager',
        ['crash-loop', 'stale'],
        ['a*', 'b1'],
        90,
        { kind: 'command', argv: ['/usr/bin/logger', '-t', 'fleet'] },
      ],
      ['alert-3', ['wedged'], null, null, { kind: 'command', argv: ['/bin/true'] }],
    ]);
  });

  it('a fleet without rules has no alerts key (the same data as before alerts existed)', async () => {
    const d = await loadDesired([files({ 'r.yaml': `version: 1\n${AGENTS}` })], CTX);
    expect('alerts' in d).toBe(false);
  });

  it.each([
    ['3', 3],
    ['3s', 3],
    ['1.5m', 90],
    ['2h', 7200],
    [45, 45],
  ] as const)('duration %s is %i s', (raw, seconds) => {
    expect(durationSeconds(raw)).toBe(seconds);
  });

  it.each([
    [
      'an unknown condition',
      '  - when: [hungry]\n    send: {command: [x]}',
      3,
      /when\[0\] must be one of: waiting/,
    ],
    [
      'a URL written in the manifest',
      '  - when: [waiting]\n    send: {webhook: {url: "http://x"}}',
      4,
      /url/,
    ],
    [
      'two sinks in one rule',
      '  - when: [waiting]\n    send: {command: [x], webhook: {url_env: H}}',
      4,
      /send/,
    ],
    ['no sink', '  - when: [waiting]\n    send: {}', 4, /send/],
    ['a bad duration', '  - when: [waiting]\n    after: soon\n    send: {command: [x]}', 4, /after/],
    ['an unsafe variable name', '  - when: [waiting]\n    send: {webhook: {url_env: "A-B"}}', 4, /url_env/],
    ['an empty command', '  - when: [waiting]\n    send: {command: []}', 4, /command/],
    [
      'two rules with one name',
      '  - name: x\n    when: [waiting]\n    send: {command: [a]}\n  - name: x\n    when: [stale]\n    send: {command: [b]}',
      6,
      /alert rule "x" is also defined at .*r\.yaml:3/,
    ],
  ])('refuses %s with one line naming the place', async (_name, rules, line, message) => {
    const dir = files({ 'r.yaml': `version: 1\nalerts:\n${rules}\n${AGENTS}` });
    const out = await validateInProcess([join(dir, 'r.yaml')]);
    expect(out.code).toBe(1);
    const lines = diagnosticLines(out.stderr);
    expect(lines.length, out.stderr).toBeGreaterThanOrEqual(1);
    expect(lines[0]?.line, out.stderr).toBe(line);
    expect(lines.map((l) => l.message).join('\n')).toMatch(message);
  });
});
