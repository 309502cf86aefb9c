/**
 * Planner fixtures: small stand-in templates (so inline snapshots stay readable), a `planFor` that fills in the
 * planner's other inputs, and `converge`, which applies a plan to an in-memory observation the way a successful
 * apply would change the machine. A converged observation is the "in sync" baseline each drift test breaks.
 */
import { parseEnvFile } from '../../src/base/env-file.js';
import { declaredUnitDigest } from '../../src/render/units.js';
import type { DesiredFleet } from '../../src/model/desired.js';
import type { Observed } from '../../src/model/observed.js';
import type { Action, Plan } from '../../src/model/plan.js';
import { sha256 } from '../../src/plan/digest.js';
import { plan, type PlanInput } from '../../src/plan/planner.js';
import type { ConvergenceTemplates, FleetInvocation } from '../../src/render/convergence.js';
import type { FrameworkAssets } from '../../src/render/framework.js';
import { agentNameFromUnit, HOLDER_UNIT } from '../../src/base/names.js';
import { actionTarget } from '../../src/render/plan-text.js';
import type { RenderContext, UnitTemplates } from '../../src/render/units.js';
import { HOME, observedBuilder, UNIT_DIR } from './builders.js';

export const CTX: RenderContext = { mosaicHome: HOME, unitDir: UNIT_DIR, toolsDir: `${HOME}/tools/fleet` };

/** Same placeholders as the shipped systemd/ templates, a fraction of the text. */
export const TEMPLATES: UnitTemplates = {
  holder: '[Service]\nType=oneshot\nKillMode=process\n@HOLDER_EXEC_START@\n',
  agent: [
    '[Unit]',
    'Wants=@HOLDER_UNIT@',
    '[Service]',
    'KillMode=process',
    'EnvironmentFile=@AGENTS_DIR@/%i.env',
    'Environment=MOSAIC_UNIT_DIGEST=@UNIT_DIGEST@',
    'ExecStart=@START_AGENT_SESSION@ %i',
    'ExecStop=@STOP_AGENT_SESSION@ %i',
    '',
  ].join('\n'),
};

export const CONVERGENCE: ConvergenceTemplates = {
  reconcileService: '[Unit]\nAfter=@HOLDER_UNIT@\n[Service]\nType=oneshot\nExecStart=@FLEET_RECONCILE@\n',
  reconcileTimer: '[Timer]\nOnUnitInactiveSec=@INTERVAL@\n[Install]\nWantedBy=timers.target\n',
  watchService: '[Unit]\nAfter=@HOLDER_UNIT@\n[Service]\nExecStart=@FLEET_WATCH@\n',
};

export const FRAMEWORK: FrameworkAssets = {
  files: [
    { relPath: 'tools/fleet/start-agent-session.sh', content: '#!/bin/sh\necho start "$1"\n' },
    { relPath: 'fleet/roster.schema.json', content: '{}\n' },
  ],
};

export const INVOCATION: FleetInvocation = {
  argv: ['/usr/bin/node', '/opt/fleet/bin/fleet.js'],
  manifests: `${HOME}/fleet`,
};

export const ENV_PATH = (agent: string): string => `${HOME}/fleet/agents/${agent}.env`;
export const AGENT_TEMPLATE_PATH = `${UNIT_DIR}/mosaic-agent@.service`;
export const HOLDER_PATH = `${UNIT_DIR}/${HOLDER_UNIT}`;

/** The planner's input for these fixtures; what each decider is given (test/plan/deciders/). */
export function planInputFor(
  desired: DesiredFleet,
  observed: Observed,
  over: Partial<PlanInput> = {},
): PlanInput {
  return {
    desired,
    observed,
    ctx: CTX,
    templates: TEMPLATES,
    framework: FRAMEWORK,
    convergence: CONVERGENCE,
    invocation: INVOCATION,
    prune: false,
    stamp: 'STAMP',
    ...over,
  };
}

export function planFor(desired: DesiredFleet, observed: Observed, over: Partial<PlanInput> = {}): Plan {
  return plan(planInputFor(desired, observed, over));
}

/** What a test asserts about each action: what an operator reads in the plan. */
export interface ActionLine {
  kind: Action['kind'];
  target: string;
  reason: string;
}

export function lines(p: Plan): ActionLine[] {
  return p.actions.map((a) => ({ kind: a.kind, target: actionTarget(a), reason: a.reason }));
}

/** The machine after a successful apply of `p`: files written (and recorded), units enabled/started, panes healthy. */
/** The `MOSAIC_*` environment an agent started now would have: its env file's keys and the unit's digest. */
export function startedEnviron(o: Observed, agent: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of parseEnvFile(o.files[ENV_PATH(agent)]?.content ?? '').entries) {
    if (k.startsWith('MOSAIC_')) env[k] = v;
  }
  const unitDigest = declaredUnitDigest(o.files[AGENT_TEMPLATE_PATH]?.content);
  if (unitDigest !== null) env.MOSAIC_UNIT_DIGEST = unitDigest;
  return env;
}

export function applyInMemory(desired: DesiredFleet, observed: Observed, p: Plan): Observed {
  const b = observedBuilder(observed);
  const o = b.o;
  const unit = (name: string) => {
    o.systemd.units[name] ??= {
      name,
      loadState: 'loaded',
      activeState: 'inactive',
      subState: 'dead',
      unitFileState: 'disabled',
    };
    return o.systemd.units[name];
  };
  const healthyPane = (agentName: string) => {
    const a = desired.agents.find((x) => x.name === agentName);
    if (a === undefined) return;
    const program = desired.runtimes[a.runtime]?.command ?? a.runtime;
    b.withoutSession(a.socketName, a.name).session(a.socketName, a.name, { argv: [program] });
    b.heartbeat(a.name, 1);
    // Like the start script: the pane starts with the env file's variables and the unit's own.
    const pane = o.tmux.sockets[a.socketName]?.panes.find((x) => x.session === a.name);
    if (pane !== undefined) pane.environ = startedEnviron(o, a.name);
  };
  for (const a of p.actions) {
    switch (a.kind) {
      case 'write-file':
        b.file(a.path, a.after, a.mode);
        b.written(a.path, sha256(a.after));
        if (a.role === 'env' && a.agent !== null && !o.envFileAgents.includes(a.agent)) {
          o.envFileAgents = [...o.envFileAgents, a.agent].sort();
        }
        break;
      case 'archive-file':
        b.withoutFile(a.path);
        delete o.state.written[a.path];
        break;
      case 'daemon-reload':
        o.systemd.needDaemonReload = false;
        break;
      case 'enable':
        unit(a.unit).unitFileState = 'enabled';
        break;
      case 'disable':
        unit(a.unit).unitFileState = 'disabled';
        break;
      case 'start':
      case 'restart': {
        Object.assign(unit(a.unit), { activeState: 'active', subState: 'exited' });
        if (a.unit === HOLDER_UNIT) {
          for (const s of desired.sockets) {
            if (!b.socket(s.socketName).sessions.includes(s.holderSession)) {
              b.session(s.socketName, s.holderSession, { argv: ['tmux'] });
            }
          }
        }
        const name = agentNameFromUnit(a.unit);
        if (name !== null) healthyPane(name);
        break;
      }
      case 'respawn':
        healthyPane(a.agent);
        break;
      case 'stop': {
        Object.assign(unit(a.unit), { activeState: 'inactive', subState: 'dead' });
        const name = agentNameFromUnit(a.unit);
        if (name !== null) for (const s of Object.keys(o.tmux.sockets)) b.withoutSession(s, name);
        break;
      }
      case 'kill-session':
        b.withoutSession(a.socketName, a.session);
        break;
      case 'worktree-add':
      case 'worktree-lock':
      case 'worktree-move':
      case 'worktree-remove':
        break;
      default: {
        const never: never = a;
        throw new Error(`unexpected action ${JSON.stringify(never)}`);
      }
    }
  }
  return b.build();
}

/** Plan and apply in memory until nothing is left to do; fails the test if that takes more than one round. */
export function converge(desired: DesiredFleet, observed: Observed, over: Partial<PlanInput> = {}): Observed {
  const first = planFor(desired, observed, over);
  const after = applyInMemory(desired, observed, first);
  const second = planFor(desired, after, over);
  if (second.actions.length > 0) {
    throw new Error(`not converged after one apply: ${JSON.stringify(lines(second), null, 2)}`);
  }
  return after;
}
