/**
 * agent-state.sh's news (framework/tools/fleet/agent-state.sh): a write that changes the agent's state writes
 * `run/news/NAME`, which watch mode listens to; a write that changes nothing of the state (the ticker's `ts=`, a
 * hook repeating the state) does not, so 100 agents' ticks wake nobody (docs/benchmarks.md, issue 23).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

const SCRIPT = resolve(import.meta.dirname, '../../framework/tools/fleet/agent-state.sh');
let home: string;
beforeEach(() => {
  home = mkdtempSync(join(tmpdir(), 'fleet-agent-state-'));
});
afterEach(() => rmSync(home, { recursive: true, force: true }));

function state(...args: string[]): void {
  execFileSync('bash', [SCRIPT, ...args], {
    env: { PATH: process.env.PATH, MOSAIC_HOME: home, MOSAIC_AGENT_NAME: 'a1' },
  });
}
const news = (): string => join(home, 'fleet', 'run', 'news', 'a1');
const heartbeat = (): string => readFileSync(join(home, 'fleet', 'run', 'a1.hb'), 'utf8');

describe('agent-state.sh: news of a state change, and only of that', () => {
  it('a new state writes run/news/NAME; the same state again rewrites the heartbeat but says nothing', () => {
    // As the launcher starts every runtime.
    state('start', String(process.pid));
    expect(readFileSync(news(), 'utf8')).toBe('starting\n');
    state('set', 'busy', 'UserPromptSubmit');
    expect(heartbeat()).toMatch(/^state=busy$/m);
    expect(readFileSync(news(), 'utf8')).toBe('busy\n');
    rmSync(news());
    state('set', 'busy', 'PreToolUse');
    expect(heartbeat()).toMatch(/^event=PreToolUse$/m);
    expect(existsSync(news())).toBe(false);
    state('set', 'idle', 'Stop');
    expect(readFileSync(news(), 'utf8')).toBe('idle\n');
  });

  it('a heartbeat with no transcript key (a write before the launcher ever wrote one) is still written', () => {
    state('set', 'busy', 'UserPromptSubmit');
    expect(heartbeat()).toMatch(/^state=busy$/m);
    expect(heartbeat()).not.toMatch(/^transcript=/m);
    state('set', 'idle', 'Stop');
    expect(heartbeat()).toMatch(/^state=idle$/m);
  });
});
