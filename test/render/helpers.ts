/** Builders for the desired-state inputs of the renderers. */
import type { DesiredAgent, DesiredFleet, RuntimeSpec } from '../../src/model/desired.js';
import type { RenderContext } from '../../src/render/units.js';
import { plainRuntime } from '../../src/runtimes/index.js';

export function ctxFor(mosaicHome: string, unitDir = '/home/op/xdg-config/systemd/user'): RenderContext {
  return { mosaicHome, unitDir, toolsDir: `${mosaicHome}/tools/fleet` };
}

export const CTX: RenderContext = ctxFor('/home/op/.config/mosaic');

export function agent(overrides: Partial<DesiredAgent> = {}): DesiredAgent {
  return {
    name: 'coder0',
    runtime: 'pi',
    class: 'coder',
    modelHint: 'sonnet',
    workingDirectory: '/srv/work',
    command: null,
    host: null,
    enabled: true,
    socketName: 'mosaic-fleet',
    holderSession: '_holder',
    tenantId: null,
    heartbeat: { staleAfterSeconds: 60, graceSeconds: 30, respawnOnStale: false },
    resume: null,
    source: { file: '/home/op/.config/mosaic/fleet/roster.yaml', line: 1, col: 1 },
    ...overrides,
  };
}

export function runtime(name: string, command = name): RuntimeSpec {
  return { ...plainRuntime(name), command, heartbeat: true };
}

export function fleet(agents: DesiredAgent[], runtimes: Record<string, RuntimeSpec> = {}): DesiredFleet {
  const sockets = new Map<string, string>();
  for (const a of agents) sockets.set(a.socketName, a.holderSession);
  return {
    sources: ['/home/op/.config/mosaic/fleet/roster.yaml'],
    tenantId: null,
    runtimes,
    agents: [...agents].sort((a, b) => a.name.localeCompare(b.name)),
    sockets: [...sockets]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([socketName, holderSession]) => ({ socketName, holderSession })),
    reconcile: { mode: 'none', intervalSeconds: 120 },
  };
}
