/** Whether a running agent needs a restart: from what its process has (its MOSAIC_* environment), digests or not. */
import { describe, expect, it } from 'vitest';
import type { ObservedPane } from '../../../src/model/observed.js';
import { restartNeed, type RestartNeedInput } from '../../../src/plan/deciders/restart-need.js';

const WANTED = new Map([
  ['MOSAIC_AGENT_NAME', 'a1'],
  ['MOSAIC_AGENT_MODEL', 'opus'],
  ['MOSAIC_AGENT_STATE', 'claude-hooks'],
  ['OPERATOR_KEY', 'secret'],
  ['MOSAIC_ENV_DIGEST', 'd2'],
]);

function pane(environ: Record<string, string> | null | undefined): ObservedPane {
  return {
    session: 'a1',
    window: 0,
    pane: 0,
    panePid: 10,
    currentCommand: 'claude',
    dead: false,
    deadStatus: null,
    startCommand: 'claude',
    activity: null,
    created: null,
    path: '/',
    processes: [],
    environ,
  };
}

function need(environ: Record<string, string> | null | undefined, over: Partial<RestartNeedInput> = {}) {
  return restartNeed({
    pane: pane(environ),
    wantedEnv: WANTED,
    unitDigest: 'u1',
    envFileChanges: false,
    templateChanged: false,
    ...over,
  });
}

const CURRENT = {
  MOSAIC_AGENT_NAME: 'a1',
  MOSAIC_AGENT_MODEL: 'opus',
  MOSAIC_AGENT_STATE: 'claude-hooks',
  MOSAIC_ENV_DIGEST: 'd2',
  MOSAIC_UNIT_DIGEST: 'u1',
};

describe('restartNeed', () => {
  it('an agent that has what its files say needs nothing, whatever changed in the files this run', () => {
    expect(need(CURRENT, { envFileChanges: true, templateChanged: true })).toBeNull();
  });

  it('a managed key with another value is named', () => {
    expect(need({ ...CURRENT, MOSAIC_AGENT_MODEL: 'sonnet', MOSAIC_ENV_DIGEST: 'd1' })).toBe(
      'running agent: its environment differs from its env file (MOSAIC_AGENT_MODEL)',
    );
  });

  it('only the digest differs: the operator’s keys changed', () => {
    expect(need({ ...CURRENT, MOSAIC_ENV_DIGEST: 'd1' })).toBe(
      "running agent: its environment differs from its env file (keys of the operator's)",
    );
  });

  it('the unit’s settings changed', () => {
    expect(need({ ...CURRENT, MOSAIC_UNIT_DIGEST: 'u0' })).toBe('running agent: its unit settings changed');
  });

  it('an agent of a release without digests: every key it lacks is named, and it stays needed after the file is written', () => {
    const old = { MOSAIC_AGENT_NAME: 'a1', MOSAIC_AGENT_MODEL: 'opus' };
    const expected =
      'running agent: its environment differs from its env file (MOSAIC_AGENT_STATE, MOSAIC_ENV_DIGEST); its unit settings changed';
    // The run that rewrites the file, and every run after it (the file no longer changes): the same need.
    expect(need(old, { envFileChanges: true })).toBe(expected);
    expect(need(old, { envFileChanges: false })).toBe(expected);
  });

  it('an environment that cannot be read: the files’ changes in this run decide', () => {
    expect(need(null)).toBeNull();
    expect(need(undefined, { envFileChanges: true })).toBe('env file changed');
    expect(need(null, { templateChanged: true })).toBe('agent unit template settings changed');
  });
});
