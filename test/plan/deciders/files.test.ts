/** The files decider: framework and unit files against the disk, and what it tells the later deciders. */
import { describe, expect, it } from 'vitest';
import { decideFiles, fileAction } from '../../../src/plan/deciders/files.js';
import { scopeOf } from '../../../src/plan/deciders/input.js';
import { sha256 } from '../../../src/plan/digest.js';
import { agent, fleet, HOME, observedBuilder, UNIT_DIR } from '../../helpers/builders.js';
import {
  AGENT_TEMPLATE_PATH,
  converge,
  HOLDER_PATH,
  planInputFor,
  TEMPLATES,
} from '../../helpers/planning.js';

const desired = fleet([agent('a1')]);

function files(o = observedBuilder().build(), templates = TEMPLATES) {
  const input = planInputFor(desired, o, { templates });
  return decideFiles(input, scopeOf(desired, o));
}

describe('decideFiles', () => {
  it('a fresh machine: framework files first, then units, each by path; every unit changes', () => {
    const d = files();
    expect(d.actions.map((a) => [a.role, a.path])).toEqual([
      ['framework', `${HOME}/fleet/roster.schema.json`],
      ['framework', `${HOME}/tools/fleet/start-agent-session.sh`],
      ['unit', AGENT_TEMPLATE_PATH],
      ['unit', HOLDER_PATH],
    ]);
    expect([...d.changedUnits].sort()).toEqual([AGENT_TEMPLATE_PATH, HOLDER_PATH]);
    // Nothing installed to compare with: no template change a running agent would see.
    expect(d.templateChanged).toBe(false);
    expect(d.unitDigest).toMatch(/^[0-9a-f]+$/);
  });

  it('converged: nothing to write', () => {
    const o = converge(desired, observedBuilder().build());
    expect(files(o).actions).toEqual([]);
  });

  it('a comment in the template rewrites it without a settings change; a setting changes them', () => {
    const o = converge(desired, observedBuilder().build());
    const comment = files(o, { ...TEMPLATES, agent: `# a note\n${TEMPLATES.agent}` });
    expect([...comment.changedUnits]).toEqual([AGENT_TEMPLATE_PATH]);
    expect(comment.templateChanged).toBe(false);
    const setting = files(o, { ...TEMPLATES, agent: `${TEMPLATES.agent}TimeoutStopSec=30\n` });
    expect(setting.templateChanged).toBe(true);
  });
});

describe('fileAction', () => {
  const path = `${UNIT_DIR}/x.service`;
  const rendered = { path, content: 'new\n', mode: 0o644, role: 'unit' as const };

  it('says why, and backs up what the operator edited', () => {
    const ours = { path, content: 'old\n', mode: 0o644 };
    expect(fileAction(rendered, ours, { [path]: sha256('old\n') }, null)).toMatchObject({
      reason: 'unit file out of date with the manifest',
      backup: false,
    });
    expect(fileAction(rendered, ours, { [path]: sha256('other\n') }, null)).toMatchObject({
      reason: 'unit file was edited by hand since the last reconcile',
      backup: true,
    });
    expect(fileAction(rendered, undefined, {}, null)).toMatchObject({
      reason: 'unit file not installed',
      before: null,
    });
  });

  it('a mode alone is drift too; the same content and mode is nothing', () => {
    expect(fileAction(rendered, { path, content: 'new\n', mode: 0o600 }, {}, null)?.reason).toBe(
      'mode is 600, want 644',
    );
    expect(fileAction(rendered, { path, content: 'new\n', mode: 0o644 }, {}, null)).toBeNull();
  });
});
