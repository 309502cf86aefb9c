import { describe, expect, it } from 'vitest';
import { loadAssets } from '../../src/assets.js';
import { InternalError } from '../../src/errors.js';
import { renderFrameworkFiles } from '../../src/render/framework.js';
import { CTX } from './helpers.js';

describe('renderFrameworkFiles', () => {
  it('installs the shipped scripts (0755) and runtime integration files (0644) into tools/fleet and the roster schema (0644) into fleet/', async () => {
    const { framework } = await loadAssets();
    const files = renderFrameworkFiles(framework, CTX);
    expect(files.map((f) => [f.path.slice(CTX.mosaicHome.length + 1), f.mode.toString(8), f.role])).toEqual([
      ['fleet/roster.schema.json', '644', 'framework'],
      ['tools/fleet/agent-state.sh', '755', 'framework'],
      ['tools/fleet/claude-settings.json', '644', 'framework'],
      ['tools/fleet/ensure-holder-session.sh', '755', 'framework'],
      ['tools/fleet/opencode-plugin.js', '644', 'framework'],
      ['tools/fleet/opencode-tui-plugin.js', '644', 'framework'],
      ['tools/fleet/opencode-tui.json', '644', 'framework'],
      ['tools/fleet/pi-extension.ts', '644', 'framework'],
      ['tools/fleet/run-agent.sh', '755', 'framework'],
      ['tools/fleet/start-agent-session.sh', '755', 'framework'],
      ['tools/fleet/stop-agent-session.sh', '755', 'framework'],
      ['tools/fleet/stub-agent.sh', '755', 'framework'],
    ]);
    for (const file of files.filter((f) => f.path.endsWith('.sh'))) {
      expect(file.content.startsWith('#!/usr/bin/env bash\n')).toBe(true);
      // Scripts the units run stop at the first error; the ones that run inside a runtime (its hooks, its
      // launcher) must never fail it, so they only refuse unset variables.
      expect(file.content).toMatch(/^set -u(euo pipefail)?$|^set -euo pipefail$/m);
    }
    expect(JSON.parse(files[0]?.content ?? '') as unknown).toBeTypeOf('object');
  });

  it('refuses to install anything that could overwrite operator files', () => {
    for (const relPath of [
      'fleet/roster.yaml',
      'fleet/agents/coder0.env',
      'fleet/run/x.hb',
      'tools/fleet/../../x.sh',
    ]) {
      expect(() => renderFrameworkFiles({ files: [{ relPath, content: 'x' }] }, CTX), relPath).toThrow(
        InternalError,
      );
    }
  });
});
