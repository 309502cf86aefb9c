/**
 * The planner's decisions over in-memory desired/observed tables: what it does, in which order, and why.
 * Each drift case starts from a converged machine (the plan of a fresh home, applied in memory) and breaks one thing.
 */
import { describe, expect, it } from 'vitest';
import type { DesiredFleet } from '../../src/model/desired.js';
import type { Observed } from '../../src/model/observed.js';
import type { Plan, WriteFileAction } from '../../src/model/plan.js';
import { checkParsed, toManifestInputs } from '../../src/manifest/load.js';
import { normalizeFleet } from '../../src/manifest/normalize.js';
import { parseManifestText } from '../../src/manifest/parse.js';
import { observedDigest, sha256 } from '../../src/plan/digest.js';
import { planToJson } from '../../src/render/plan-json.js';
import { renderPlanText } from '../../src/render/plan-text.js';
import {
  agent,
  fleet,
  HOME,
  HOSTNAME,
  observedBuilder,
  SOCKET,
  UNIT_DIR,
  type ObservedBuilder,
} from '../helpers/builders.js';
import {
  AGENT_TEMPLATE_PATH,
  applyInMemory,
  converge,
  ENV_PATH,
  HOLDER_PATH,
  lines,
  planFor,
  TEMPLATES,
  type ActionLine,
} from '../helpers/planning.js';

const HOLDER = 'mosaic-tmux-holder.service';
const unitOf = (name: string) => `mosaic-agent@${name}.service`;
/** JSON Pointer segment for a path (RFC 6901: `/` is `~1`). */
const ptr = (path: string) => path.replace(/~/g, '~0').replace(/\//g, '~1');

/**
 * Two agents on the fleet socket: the baseline roster. Restarts are immediate and unbudgeted here, so these
 * tests see what needs a restart; when and how many is test/plan/lifecycle.test.ts's subject.
 */
const IMMEDIATE = {
  policy: 'immediate',
  settleSeconds: 30,
  maxUnavailable: 100,
  maxDeferSeconds: null,
} as const;
function roster(over: Partial<DesiredFleet> = {}): DesiredFleet {
  return fleet([agent('coder0', { modelHint: 'sonnet' }), agent('lead', { runtime: 'claude' })], {
    reconcile: { mode: 'none', intervalSeconds: 120, restart: IMMEDIATE },
    ...over,
  });
}

/** The machine after a successful reconcile of `desired` from a fresh home. */
function convergedFor(desired: DesiredFleet): Observed {
  return converge(desired, observedBuilder().build());
}

const BASE = roster();
const CONVERGED = convergedFor(BASE);

function breakOne(change: (b: ObservedBuilder, o: Observed) => void): Observed {
  const b = observedBuilder(CONVERGED);
  change(b, b.o);
  return b.build();
}

function writeOf(p: Plan, path: string): WriteFileAction {
  const a = p.actions.find((x): x is WriteFileAction => x.kind === 'write-file' && x.path === path);
  if (a === undefined) throw new Error(`no write of ${path} in the plan`);
  return a;
}

describe('planner: fresh home', () => {
  it('installs everything in dependency order: files, one daemon-reload, enable, start; holder before agents', () => {
    const p = planFor(BASE, observedBuilder().build());
    expect(lines(p)).toEqual<ActionLine[]>([
      {
        kind: 'write-file',
        target: `${HOME}/fleet/roster.schema.json`,
        reason: 'framework file not installed',
      },
      {
        kind: 'write-file',
        target: `${HOME}/tools/fleet/start-agent-session.sh`,
        reason: 'framework file not installed',
      },
      { kind: 'write-file', target: AGENT_TEMPLATE_PATH, reason: 'unit file not installed' },
      { kind: 'write-file', target: HOLDER_PATH, reason: 'unit file not installed' },
      { kind: 'write-file', target: ENV_PATH('coder0'), reason: 'env file not installed' },
      { kind: 'write-file', target: ENV_PATH('lead'), reason: 'env file not installed' },
      { kind: 'daemon-reload', target: 'systemd --user', reason: 'unit files changed' },
      {
        kind: 'enable',
        target: HOLDER,
        reason: 'not enabled: the tmux holder would not come back after reboot',
      },
      { kind: 'enable', target: unitOf('coder0'), reason: 'not enabled: would not start after reboot' },
      { kind: 'enable', target: unitOf('lead'), reason: 'not enabled: would not start after reboot' },
      { kind: 'start', target: HOLDER, reason: 'holder is not running' },
      { kind: 'start', target: unitOf('coder0'), reason: 'unit is not running' },
      { kind: 'start', target: unitOf('lead'), reason: 'unit is not running' },
    ]);
    expect(p.summary).toEqual({ add: 6, change: 0, remove: 0, other: 7 });
    // Scripts executable, env files private (they may hold the operator's secrets).
    expect(writeOf(p, `${HOME}/tools/fleet/start-agent-session.sh`).mode).toBe(0o755);
    expect(writeOf(p, ENV_PATH('coder0')).mode).toBe(0o600);
    expect(p.actions.every((a) => a.kind !== 'write-file' || !a.backup)).toBe(true);
  });

  it('with --diff, renders the fresh plan as text: a diff under every file, a reason on every other line', () => {
    const p = planFor(fleet([agent('coder0', { modelHint: 'sonnet' })]), observedBuilder().build());
    expect(renderPlanText(p, { color: false, diff: true })).toMatchInlineSnapshot(`
      "1 agent affected.

      + create /home/op/.config/mosaic/fleet/roster.schema.json  # framework file not installed
          --- /dev/null
          +++ b/home/op/.config/mosaic/fleet/roster.schema.json
          @@ -0,0 +1,1 @@
          +{}
      + create /home/op/.config/mosaic/tools/fleet/start-agent-session.sh  # framework file not installed
          --- /dev/null
          +++ b/home/op/.config/mosaic/tools/fleet/start-agent-session.sh
          @@ -0,0 +1,2 @@
          +#!/bin/sh
          +echo start "$1"
      + create /home/op/xdg-config/systemd/user/mosaic-agent@.service  # unit file not installed
          --- /dev/null
          +++ b/home/op/xdg-config/systemd/user/mosaic-agent@.service
          @@ -0,0 +1,8 @@
          +[Unit]
          +Wants=mosaic-tmux-holder.service
          +[Service]
          +KillMode=process
          +EnvironmentFile=/home/op/.config/mosaic/fleet/agents/%i.env
          +Environment=MOSAIC_UNIT_DIGEST=45db647fcdce3dd8
          +ExecStart=/home/op/.config/mosaic/tools/fleet/start-agent-session.sh %i
          +ExecStop=/home/op/.config/mosaic/tools/fleet/stop-agent-session.sh %i
      + create /home/op/xdg-config/systemd/user/mosaic-tmux-holder.service  # unit file not installed
          --- /dev/null
          +++ b/home/op/xdg-config/systemd/user/mosaic-tmux-holder.service
          @@ -0,0 +1,4 @@
          +[Service]
          +Type=oneshot
          +KillMode=process
          +ExecStart=/home/op/.config/mosaic/tools/fleet/ensure-holder-session.sh --socket=mosaic-fleet --holder=_holder
      + create /home/op/.config/mosaic/fleet/agents/coder0.env  # env file not installed
          --- /dev/null
          +++ b/home/op/.config/mosaic/fleet/agents/coder0.env
          @@ -0,0 +1,22 @@
          +# Environment of Mosaic fleet agent coder0, read by mosaic-agent@coder0.service.
          +# \`fleet reconcile\` manages these keys and rewrites their values from the roster:
          +#   MOSAIC_AGENT_NAME MOSAIC_AGENT_RUNTIME MOSAIC_AGENT_RUNTIME_COMMAND MOSAIC_AGENT_MODEL
          +#   MOSAIC_AGENT_WORKDIR MOSAIC_TMUX_SOCKET MOSAIC_HOME
          +#   MOSAIC_AGENT_STATE MOSAIC_AGENT_ARGS MOSAIC_AGENT_RESUME_ARGS MOSAIC_AGENT_EXIT_KEYS MOSAIC_AGENT_ENV
          +#   MOSAIC_AGENT_COMMAND (only when the roster sets "command" for this agent)
          +#   MOSAIC_ENV_DIGEST (a digest of every other line here; a change means the agent restarts)
          +# Every other line is yours and is kept as written. Without a roster "command", a
          +# MOSAIC_AGENT_COMMAND you add here replaces the runtime command (run as bash -lc "...").
          +MOSAIC_AGENT_NAME=coder0
          +MOSAIC_AGENT_RUNTIME=pi
          +MOSAIC_AGENT_RUNTIME_COMMAND=pi
          +MOSAIC_AGENT_MODEL=sonnet
          +MOSAIC_AGENT_WORKDIR=/home/op/work
          +MOSAIC_TMUX_SOCKET=mosaic-fleet
          +MOSAIC_HOME=/home/op/.config/mosaic
          +MOSAIC_AGENT_STATE=none
          +MOSAIC_AGENT_ARGS="--model sonnet"
          +MOSAIC_AGENT_RESUME_ARGS=
          +MOSAIC_AGENT_EXIT_KEYS=
          +MOSAIC_AGENT_ENV=
          +MOSAIC_ENV_DIGEST=81912a9a802ebd35
      ~ daemon-reload systemd --user  # unit files changed
      + enable mosaic-tmux-holder.service  # not enabled: the tmux holder would not come back after reboot
      + enable mosaic-agent@coder0.service  # not enabled: would not start after reboot
      > start mosaic-tmux-holder.service  # holder is not running
      > start mosaic-agent@coder0.service  # unit is not running

      Plan: 5 to add, 0 to change, 0 to remove, 5 unit/session actions.
      "
    `);
  });

  it('a second plan after applying the first is empty, and issues nothing', () => {
    const p = planFor(BASE, CONVERGED);
    expect(p.actions).toEqual([]);
    expect(p.patch).toEqual([]);
  });
});

describe('planner: in sync', () => {
  it('plans nothing: "No changes" as text, an empty patch as JSON', () => {
    const p = planFor(BASE, CONVERGED);
    expect(renderPlanText(p)).toBe('No changes. The fleet matches the manifests.\n');
    const json = planToJson(p);
    expect(json).toMatchObject({
      format_version: 1,
      changes_pending: false,
      actions: [],
      orphans: [],
      skipped: [],
      warnings: [],
      patch: [],
      summary: { add: 0, change: 0, remove: 0, other: 0 },
    });
  });
});

interface DriftCase {
  name: string;
  change: (b: ObservedBuilder, o: Observed) => void;
  want: ActionLine[];
}

const driftCases: DriftCase[] = [
  {
    name: 'pane dead',
    change: (b) =>
      b.withoutSession(SOCKET, 'coder0').session(SOCKET, 'coder0', { dead: true, deadStatus: 1 }),
    want: [{ kind: 'respawn', target: `${SOCKET}:coder0`, reason: 'pane of coder0 is dead' }],
  },
  {
    name: 'session missing',
    change: (b) => b.withoutSession(SOCKET, 'coder0'),
    want: [{ kind: 'respawn', target: `${SOCKET}:coder0`, reason: 'session coder0 is missing' }],
  },
  {
    name: 'pane runs another program (drift)',
    change: (b) =>
      b
        .withoutSession(SOCKET, 'coder0')
        .session(SOCKET, 'coder0', { argv: ['python3', '/home/op/dogfood-agent.py'] }),
    want: [
      {
        kind: 'respawn',
        target: `${SOCKET}:coder0`,
        reason: "pane runs 'python3 /home/op/dogfood-agent.py', the roster says 'pi'",
      },
    ],
  },
  {
    name: 'holder session missing',
    change: (b) => b.withoutSession(SOCKET, '_holder'),
    want: [
      { kind: 'restart', target: HOLDER, reason: `holder session missing: _holder on socket ${SOCKET}` },
    ],
  },
  {
    name: 'unit disabled (boot-enable gap)',
    change: (_b, o) => {
      const u = o.systemd.units[unitOf('coder0')];
      if (u) u.unitFileState = 'disabled';
    },
    want: [{ kind: 'enable', target: unitOf('coder0'), reason: 'not enabled: would not start after reboot' }],
  },
  {
    // `enable --runtime` lives in /run and is gone after a reboot: `fleet ps` flags BOOT-ENABLE, so the plan heals it.
    name: 'units enabled only for this boot (enabled-runtime)',
    change: (_b, o) => {
      for (const name of [HOLDER, unitOf('coder0')]) {
        const u = o.systemd.units[name];
        if (u) u.unitFileState = 'enabled-runtime';
      }
    },
    want: [
      {
        kind: 'enable',
        target: HOLDER,
        reason: 'not enabled: the tmux holder would not come back after reboot',
      },
      { kind: 'enable', target: unitOf('coder0'), reason: 'not enabled: would not start after reboot' },
    ],
  },
  {
    name: 'holder unit disabled',
    change: (_b, o) => {
      const u = o.systemd.units[HOLDER];
      if (u) u.unitFileState = 'disabled';
    },
    want: [
      {
        kind: 'enable',
        target: HOLDER,
        reason: 'not enabled: the tmux holder would not come back after reboot',
      },
    ],
  },
  {
    name: 'unit failed',
    change: (_b, o) => {
      const u = o.systemd.units[unitOf('lead')];
      if (u) Object.assign(u, { activeState: 'failed', subState: 'failed' });
    },
    want: [{ kind: 'start', target: unitOf('lead'), reason: 'unit failed' }],
  },
  {
    name: 'systemd reports NeedDaemonReload',
    change: (b) => b.needDaemonReload(),
    want: [
      {
        kind: 'daemon-reload',
        target: 'systemd --user',
        reason: 'systemd reports unit files changed on disk',
      },
    ],
  },
  {
    name: 'env file mode changed only (no restart)',
    change: (b, o) => b.file(ENV_PATH('coder0'), o.files[ENV_PATH('coder0')]?.content ?? '', 0o644),
    want: [{ kind: 'write-file', target: ENV_PATH('coder0'), reason: 'mode is 644, want 600' }],
  },
  {
    name: 'script mode changed only (not executable)',
    change: (b, o) => {
      const path = `${HOME}/tools/fleet/start-agent-session.sh`;
      b.file(path, o.files[path]?.content ?? '', 0o644);
    },
    want: [
      {
        kind: 'write-file',
        target: `${HOME}/tools/fleet/start-agent-session.sh`,
        reason: 'mode is 644, want 755',
      },
    ],
  },
  {
    // Written again as it was: the running agent's environment is what the file says again, so no restart.
    name: 'env file deleted',
    change: (b) => b.withoutFile(ENV_PATH('coder0')),
    want: [{ kind: 'write-file', target: ENV_PATH('coder0'), reason: 'env file not installed' }],
  },
  {
    name: 'managed env key changed by hand (the file is put back; the agent never saw it)',
    change: (b, o) =>
      b.envFile(
        'coder0',
        (o.files[ENV_PATH('coder0')]?.content ?? '').replace(
          'MOSAIC_AGENT_MODEL=sonnet',
          'MOSAIC_AGENT_MODEL=opus',
        ),
      ),
    // The running agent never saw the hand edit: putting the roster's value back needs no restart.
    want: [
      { kind: 'write-file', target: ENV_PATH('coder0'), reason: 'managed keys differ from the manifest' },
    ],
  },
  {
    name: 'holder unit file edited by hand',
    change: (b, o) => b.file(HOLDER_PATH, `${o.files[HOLDER_PATH]?.content ?? ''}ExecStartPost=/bin/true\n`),
    want: [
      {
        kind: 'write-file',
        target: HOLDER_PATH,
        reason: 'unit file was edited by hand since the last reconcile',
      },
      { kind: 'daemon-reload', target: 'systemd --user', reason: 'unit files changed' },
      { kind: 'restart', target: HOLDER, reason: 'holder unit changed' },
    ],
  },
  {
    name: 'stale heartbeat (respawn_on_stale)',
    change: (b) => b.heartbeat('coder0', 600),
    want: [{ kind: 'respawn', target: `${SOCKET}:coder0`, reason: 'heartbeat is stale' }],
  },
  {
    name: 'heartbeat file malformed (unknown, not stale: nothing to do)',
    change: (b) => b.heartbeatRaw('coder0', 'ts=x\n'),
    want: [],
  },
  {
    name: 'an unmanaged session on the socket (shown by ps, never acted on)',
    change: (b) => b.session(SOCKET, 'scratch', { argv: ['bash'] }),
    want: [],
  },
];

describe('plans at fleet scale', () => {
  it('a fresh 50-agent install reads in under 150 lines by default, naming every agent’s action', () => {
    const names = Array.from({ length: 50 }, (_, i) => `agent${String(i).padStart(2, '0')}`);
    const p = planFor(fleet(names.map((n) => agent(n, { modelHint: 'sonnet' }))), observedBuilder().build());
    const text = renderPlanText(p);
    const lines = text.trimEnd().split('\n');
    expect(lines.length).toBeLessThan(150);
    for (const n of names) expect(text, n).toContain(n);
    expect(text).toMatch(/^\+ create 50 env files {2}# env file not installed$/m);
    expect(text).toMatch(/^\+ enable 50 agent units/m);
    expect(text).toMatch(/^> start 50 agent units/m);
    expect(text.split('\n')[0]).toBe('50 agents affected.');
    // The full view still has every diff.
    expect(renderPlanText(p, { color: false, diff: true }).split('\n').length).toBeGreaterThan(1000);
  });
});

describe('planner: each drift is healed with the least action', () => {
  it.each(driftCases)('$name', ({ change, want }) => {
    const observed = breakOne(change);
    const p = planFor(BASE, observed);
    expect(lines(p)).toEqual(want);
    // Healing converges: applying the plan leaves nothing to do.
    expect(planFor(BASE, applyInMemory(BASE, observed, p)).actions).toEqual([]);
  });

  it('keeps the operator lines of an env file and never backs one up (merged, not clobbered)', () => {
    const observed = breakOne((b, o) =>
      b.envFile(
        'coder0',
        `${(o.files[ENV_PATH('coder0')] ?? { content: '' }).content ?? ''}# mine\nOPENAI_API_KEY=sk-x\n`.replace(
          'MOSAIC_AGENT_MODEL=sonnet',
          'MOSAIC_AGENT_MODEL=opus',
        ),
      ),
    );
    const w = writeOf(planFor(BASE, observed), ENV_PATH('coder0'));
    expect(w.backup).toBe(false);
    expect(w.after).toContain('# mine\nOPENAI_API_KEY=sk-x\n');
    expect(w.after).toContain('MOSAIC_AGENT_MODEL=sonnet\n');
    expect(w.after).not.toContain('opus');
  });

  it('backs up a hand-edited unit file once: a backup for the edit, none for an update of our own write', () => {
    const edited = breakOne((b, o) => b.file(HOLDER_PATH, `${o.files[HOLDER_PATH]?.content ?? ''}# mine\n`));
    expect(writeOf(planFor(BASE, edited), HOLDER_PATH).backup).toBe(true);
    // After the apply the state file records our write: the same file is never backed up again.
    const healed = applyInMemory(BASE, edited, planFor(BASE, edited));
    const templateChanged = { ...TEMPLATES, holder: `${TEMPLATES.holder}# v2\n` };
    const upgrade = planFor(BASE, healed, { templates: templateChanged });
    expect(writeOf(upgrade, HOLDER_PATH)).toMatchObject({
      backup: false,
      reason: 'unit file out of date with the manifest',
    });
  });

  it('backs up a unit file that differs and was never written by the reconciler', () => {
    const foreign = breakOne((b, o) => {
      b.file(HOLDER_PATH, '[Service]\nExecStart=/usr/bin/true\n');
      delete o.state.written[HOLDER_PATH];
    });
    expect(writeOf(planFor(BASE, foreign), HOLDER_PATH)).toMatchObject({
      backup: true,
      reason: 'unit file differs from the rendered one',
    });
  });

  it('does not respawn a stale agent unless the manifest asks (respawn_on_stale: false)', () => {
    const quiet = fleet([
      agent('coder0', {
        modelHint: 'sonnet',
        heartbeat: { staleAfterSeconds: 60, graceSeconds: 30, respawnOnStale: false },
      }),
      agent('lead', { runtime: 'claude' }),
    ]);
    const observed = observedBuilder(convergedFor(quiet)).heartbeat('coder0', 600).build();
    expect(lines(planFor(quiet, observed))).toEqual([]);
  });

  it('a model_hint change rewrites and restarts only that agent (text and JSON)', () => {
    const changed = roster({
      agents: [agent('coder0', { modelHint: 'opus' }), agent('lead', { runtime: 'claude' })],
    });
    const p = planFor(changed, CONVERGED);
    expect(lines(p)).toEqual([
      { kind: 'write-file', target: ENV_PATH('coder0'), reason: 'managed keys differ from the manifest' },
      {
        kind: 'restart',
        target: unitOf('coder0'),
        reason:
          'running agent: its environment differs from its env file (MOSAIC_AGENT_MODEL, MOSAIC_AGENT_ARGS) (restart policy: immediate)',
      },
    ]);
    expect(renderPlanText(p)).toMatchInlineSnapshot(`
      "Running agents this plan ends (1; their conversations resume where the runtime can):
        coder0: restart now: running agent: its environment differs from its env file (MOSAIC_AGENT_MODEL, MOSAIC_AGENT_ARGS) (restart policy: immediate)

      ~ update /home/op/.config/mosaic/fleet/agents/coder0.env  # managed keys differ from the manifest
          --- a/home/op/.config/mosaic/fleet/agents/coder0.env
          +++ b/home/op/.config/mosaic/fleet/agents/coder0.env
          @@ -10,13 +10,13 @@
           MOSAIC_AGENT_NAME=coder0
           MOSAIC_AGENT_RUNTIME=pi
           MOSAIC_AGENT_RUNTIME_COMMAND=pi
          -MOSAIC_AGENT_MODEL=sonnet
          +MOSAIC_AGENT_MODEL=opus
           MOSAIC_AGENT_WORKDIR=/home/op/work
           MOSAIC_TMUX_SOCKET=mosaic-fleet
           MOSAIC_HOME=/home/op/.config/mosaic
           MOSAIC_AGENT_STATE=none
          -MOSAIC_AGENT_ARGS="--model sonnet"
          +MOSAIC_AGENT_ARGS="--model opus"
           MOSAIC_AGENT_RESUME_ARGS=
           MOSAIC_AGENT_EXIT_KEYS=
           MOSAIC_AGENT_ENV=
          -MOSAIC_ENV_DIGEST=81912a9a802ebd35
          +MOSAIC_ENV_DIGEST=8fb58f9ab5071ac1
      ! restart mosaic-agent@coder0.service  # running agent: its environment differs from its env file (MOSAIC_AGENT_MODEL, MOSAIC_AGENT_ARGS) (restart policy: immediate)

      Plan: 0 to add, 1 to change, 0 to remove, 1 unit/session action.
      1 running agent will be restarted.
      "
    `);
    const json = planToJson(p, { dry_run: true });
    // The digest is of the observation the plan was made from (a saved plan is refused once it differs).
    expect(json.observed_digest).toBe(observedDigest(CONVERGED));
    expect({ ...json, observed_digest: '<digest>' }).toMatchInlineSnapshot(
      `
      {
        "actions": [
          {
            "agent": "coder0",
            "backup": false,
            "create": false,
            "diff": "--- a/home/op/.config/mosaic/fleet/agents/coder0.env
      +++ b/home/op/.config/mosaic/fleet/agents/coder0.env
      @@ -10,13 +10,13 @@
       MOSAIC_AGENT_NAME=coder0
       MOSAIC_AGENT_RUNTIME=pi
       MOSAIC_AGENT_RUNTIME_COMMAND=pi
      -MOSAIC_AGENT_MODEL=sonnet
      +MOSAIC_AGENT_MODEL=opus
       MOSAIC_AGENT_WORKDIR=/home/op/work
       MOSAIC_TMUX_SOCKET=mosaic-fleet
       MOSAIC_HOME=/home/op/.config/mosaic
       MOSAIC_AGENT_STATE=none
      -MOSAIC_AGENT_ARGS="--model sonnet"
      +MOSAIC_AGENT_ARGS="--model opus"
       MOSAIC_AGENT_RESUME_ARGS=
       MOSAIC_AGENT_EXIT_KEYS=
       MOSAIC_AGENT_ENV=
      -MOSAIC_ENV_DIGEST=81912a9a802ebd35
      +MOSAIC_ENV_DIGEST=8fb58f9ab5071ac1",
            "kind": "write-file",
            "mode": "0600",
            "reason": "managed keys differ from the manifest",
            "role": "env",
            "target": "/home/op/.config/mosaic/fleet/agents/coder0.env",
          },
          {
            "agent": "coder0",
            "disruptive": true,
            "kind": "restart",
            "reason": "running agent: its environment differs from its env file (MOSAIC_AGENT_MODEL, MOSAIC_AGENT_ARGS) (restart policy: immediate)",
            "target": "mosaic-agent@coder0.service",
          },
        ],
        "changes_pending": true,
        "deferred": [],
        "deferred_restarts": [],
        "dry_run": true,
        "format_version": 1,
        "held": [],
        "observed_digest": "<digest>",
        "orphans": [],
        "patch": [
          {
            "op": "replace",
            "path": "/files/~1home~1op~1.config~1mosaic~1fleet~1agents~1coder0.env",
            "value": "sha256:d239f565c6bd6159b0000a9dc93896205e73fd23943749d74db2d715b58c03ab",
          },
        ],
        "skipped": [],
        "summary": {
          "add": 0,
          "change": 1,
          "other": 1,
          "remove": 0,
        },
        "warnings": [],
      }
    `,
    );
  });

  it('a changed agent unit template: one write, one daemon-reload, every running agent restarts', () => {
    const templates = { ...TEMPLATES, agent: `${TEMPLATES.agent}TimeoutStopSec=30\n` };
    const p = planFor(BASE, CONVERGED, { templates });
    expect(lines(p)).toEqual([
      { kind: 'write-file', target: AGENT_TEMPLATE_PATH, reason: 'unit file out of date with the manifest' },
      { kind: 'daemon-reload', target: 'systemd --user', reason: 'unit files changed' },
      {
        kind: 'restart',
        target: unitOf('coder0'),
        reason: 'running agent: its unit settings changed (restart policy: immediate)',
      },
      {
        kind: 'restart',
        target: unitOf('lead'),
        reason: 'running agent: its unit settings changed (restart policy: immediate)',
      },
    ]);
    expect(writeOf(p, AGENT_TEMPLATE_PATH).backup).toBe(false);
  });

  it('a changed template starts an agent that is not running and respawns one whose session is gone: no restart, nobody twice', () => {
    const templates = { ...TEMPLATES, agent: `${TEMPLATES.agent}TimeoutStopSec=30\n` };
    const observed = breakOne((b, o) => {
      const u = o.systemd.units[unitOf('lead')];
      if (u) Object.assign(u, { activeState: 'inactive', subState: 'dead' });
      b.withoutSession(SOCKET, 'coder0');
    });
    const p = planFor(BASE, observed, { templates });
    // coder0's session is gone: nothing runs to be restarted, so it is respawned (the new unit then applies),
    // which is not disruptive.
    expect(lines(p).filter((l) => l.kind !== 'write-file' && l.kind !== 'daemon-reload')).toEqual([
      { kind: 'start', target: unitOf('lead'), reason: 'unit is not running' },
      { kind: 'respawn', target: 'mosaic-fleet:coder0', reason: 'session coder0 is missing' },
    ]);
  });
});

describe('planner: agents the manifest disables', () => {
  const withOld = fleet([agent('coder0', { modelHint: 'sonnet' }), agent('old')]);
  const running = convergedFor(withOld);
  const disabled = fleet([agent('coder0', { modelHint: 'sonnet' }), agent('old', { enabled: false })]);

  it('stops and disables an `enabled: false` agent, and nothing else', () => {
    const p = planFor(disabled, running);
    expect(lines(p)).toEqual([
      { kind: 'stop', target: unitOf('old'), reason: 'agent is disabled in the manifest' },
      { kind: 'disable', target: unitOf('old'), reason: 'agent is disabled in the manifest' },
    ]);
    expect(p.orphans).toEqual([]);
  });

  it('leaves a stopped, disabled agent alone (no start, no enable, no respawn of its missing session)', () => {
    const stopped = applyInMemory(disabled, running, planFor(disabled, running));
    expect(lines(planFor(disabled, stopped))).toEqual([]);
  });

  it("ends a disabled agent's session that no running unit would end (started by hand, or a failed stop)", () => {
    const stopped = applyInMemory(disabled, running, planFor(disabled, running));
    const byHand = observedBuilder(stopped).session(SOCKET, 'old', { pid: 4747 }).build();
    expect(lines(planFor(disabled, byHand))).toEqual([
      { kind: 'kill-session', target: `${SOCKET}:old`, reason: 'agent is disabled in the manifest' },
    ]);
  });

  it('when every agent is disabled, the holder is neither enabled nor started, and linger is not nagged', () => {
    const none = fleet([agent('old', { enabled: false })]);
    const p = planFor(none, observedBuilder().linger(false).build());
    expect(p.actions.filter((a) => a.kind !== 'write-file' && a.kind !== 'daemon-reload')).toEqual([]);
    expect(p.warnings).toEqual([]);
  });
});

describe('planner: agents of other hosts', () => {
  const mixed = fleet([agent('coder0'), agent('gpu0', { host: 'dragon', socketName: 'gpu' })]);

  it('lists a remote agent as skipped and plans nothing for it', () => {
    const p = planFor(mixed, observedBuilder().build());
    expect(p.skipped).toEqual([
      { agent: 'gpu0', host: 'dragon', reason: `runs on dragon, this is ${HOSTNAME}` },
    ]);
    const mentions = JSON.stringify(lines(p));
    expect(mentions).not.toContain('gpu0');
    // Its socket gets no holder line either.
    expect(writeOf(p, HOLDER_PATH).after).not.toContain('--socket=gpu');
    expect(renderPlanText(p)).toContain(
      `Skipped (another host):\n  gpu0: runs on dragon, this is ${HOSTNAME}\n`,
    );
  });

  it.each([HOSTNAME, `${HOSTNAME}.example.org`, 'localhost'])('treats host %s as this machine', (host) => {
    const p = planFor(fleet([agent('coder0', { host })]), observedBuilder().build());
    expect(p.skipped).toEqual([]);
    expect(lines(p)).toContainEqual({
      kind: 'start',
      target: unitOf('coder0'),
      reason: 'unit is not running',
    });
  });

  it('a remote agent is not an orphan, even with --prune', () => {
    const observed = observedBuilder()
      .unit(unitOf('gpu0'))
      .envFile('gpu0', 'MOSAIC_TMUX_SOCKET=gpu\n')
      .build();
    const p = planFor(mixed, observed, { prune: true });
    expect(JSON.stringify(lines(p))).not.toContain('gpu0');
  });
});

describe('planner: orphans', () => {
  /** `old` was in the roster, is running, and has been removed from it. */
  const withOld = fleet([agent('coder0', { modelHint: 'sonnet' }), agent('old')]);
  const onlyCoder = fleet([agent('coder0', { modelHint: 'sonnet' })]);
  const running = convergedFor(withOld);

  it('without --prune: listed, never acted on', () => {
    const p = planFor(onlyCoder, running);
    expect(lines(p)).toEqual([]);
    expect(p.orphans).toEqual([
      { agent: 'old', unit: unitOf('old'), session: 'old', socketName: SOCKET, envFile: ENV_PATH('old') },
    ]);
    expect(renderPlanText(p)).toMatchInlineSnapshot(`
      "
      Orphans (no manifest names them; left running; \`--prune\` stops, disables and archives them):
        old: unit mosaic-agent@old.service, session mosaic-fleet:old, env /home/op/.config/mosaic/fleet/agents/old.env

      No changes. The fleet matches the manifests.
      "
    `);
  });

  it('with --prune and the unit active: stop, disable, archive the env file (its ExecStop kills the session)', () => {
    const p = planFor(onlyCoder, running, { prune: true });
    expect(lines(p)).toEqual([
      { kind: 'stop', target: unitOf('old'), reason: 'no manifest names this agent' },
      { kind: 'disable', target: unitOf('old'), reason: 'no manifest names this agent' },
      {
        kind: 'archive-file',
        target: ENV_PATH('old'),
        reason: 'no manifest names this agent (archived, not deleted)',
      },
    ]);
    expect(p.actions[2]).toMatchObject({ to: `${HOME}/fleet/archive/old.STAMP.env` });
    expect(p.orphans).toEqual([]);
    expect(renderPlanText(p)).toMatchInlineSnapshot(`
      "Running agents this plan ends (1; their conversations resume where the runtime can):
        old: stop now: no manifest names this agent

      ! stop mosaic-agent@old.service  # no manifest names this agent
      - disable mosaic-agent@old.service  # no manifest names this agent
      - archive /home/op/.config/mosaic/fleet/agents/old.env  # no manifest names this agent (archived, not deleted)
          moved to /home/op/.config/mosaic/fleet/archive/old.STAMP.env

      Plan: 0 to add, 0 to change, 3 to remove, 0 unit/session actions.
      1 running agent will be stopped.
      "
    `);
    // Pruned for good: the next plan is empty.
    expect(planFor(onlyCoder, applyInMemory(onlyCoder, running, p), { prune: true }).actions).toEqual([]);
  });

  it('with --prune, many orphans are removed kind by kind, so systemd gets one stop and one disable', () => {
    const many = fleet([agent('coder0', { modelHint: 'sonnet' }), agent('old'), agent('older')]);
    const p = planFor(onlyCoder, convergedFor(many), { prune: true });
    expect(lines(p).map((l) => `${l.kind} ${l.target.split('/').pop() ?? ''}`)).toEqual([
      `stop ${unitOf('old')}`,
      `stop ${unitOf('older')}`,
      `disable ${unitOf('old')}`,
      `disable ${unitOf('older')}`,
      'archive-file old.env',
      'archive-file older.env',
    ]);
  });

  it('with --prune and the unit not active: kill the session directly (exact target), disable, archive', () => {
    const observed = observedBuilder(running)
      .unit(unitOf('old'), { active: 'inactive', fileState: 'enabled' })
      .build();
    expect(lines(planFor(onlyCoder, observed, { prune: true }))).toEqual([
      { kind: 'disable', target: unitOf('old'), reason: 'no manifest names this agent' },
      { kind: 'kill-session', target: `${SOCKET}:old`, reason: 'no manifest names this agent' },
      {
        kind: 'archive-file',
        target: ENV_PATH('old'),
        reason: 'no manifest names this agent (archived, not deleted)',
      },
    ]);
  });

  it('finds an orphan on the default socket from its env file (socket rule: no -L)', () => {
    const observed = observedBuilder()
      .envFile('old', 'MOSAIC_AGENT_NAME=old\nMOSAIC_TMUX_SOCKET=\n')
      .session('', 'old', { argv: ['pi'] })
      .build();
    const p = planFor(fleet([]), observed, { prune: true });
    expect(lines(p).filter((l) => l.kind !== 'write-file')).toEqual([
      { kind: 'kill-session', target: '(default socket):old', reason: 'no manifest names this agent' },
      {
        kind: 'archive-file',
        target: ENV_PATH('old'),
        reason: 'no manifest names this agent (archived, not deleted)',
      },
    ]);
  });

  it("an orphan's session is looked for only on the socket its env file names, never killed on another", () => {
    // `old`'s env file says it lived on the fleet socket; a session `old` on the default socket is the operator's.
    const observed = observedBuilder(running)
      .withoutSession(SOCKET, 'old')
      .unit(unitOf('old'), { active: 'inactive', fileState: 'disabled' })
      .session('', 'old', { argv: ['bash'] })
      .build();
    const p = planFor(onlyCoder, observed, { prune: true });
    expect(lines(p).filter((l) => l.kind === 'kill-session')).toEqual([]);
    expect(planFor(onlyCoder, observed).orphans).toEqual([
      { agent: 'old', unit: unitOf('old'), session: null, socketName: null, envFile: ENV_PATH('old') },
    ]);
  });

  it('a session that no unit or env file claims is not ours: never an orphan, never killed', () => {
    const observed = observedBuilder(CONVERGED)
      .session(SOCKET, 'scratch', { argv: ['bash'] })
      .build();
    const p = planFor(BASE, observed, { prune: true });
    expect(p.actions).toEqual([]);
    expect(p.orphans).toEqual([]);
  });
});

describe('planner: reconcile.mode (unattended convergence)', () => {
  const timer = roster({ reconcile: { mode: 'timer', intervalSeconds: 120 } });
  const watch = roster({ reconcile: { mode: 'watch', intervalSeconds: 120 } });

  it('timer: writes the service and timer, reloads once, enables and starts the timer', () => {
    const p = planFor(timer, CONVERGED);
    expect(lines(p)).toEqual([
      {
        kind: 'write-file',
        target: `${UNIT_DIR}/mosaic-fleet-reconcile.service`,
        reason: 'unit file not installed',
      },
      {
        kind: 'write-file',
        target: `${UNIT_DIR}/mosaic-fleet-reconcile.timer`,
        reason: 'unit file not installed',
      },
      { kind: 'daemon-reload', target: 'systemd --user', reason: 'unit files changed' },
      {
        kind: 'enable',
        target: 'mosaic-fleet-reconcile.timer',
        reason: 'reconcile.mode is timer: not enabled',
      },
      {
        kind: 'start',
        target: 'mosaic-fleet-reconcile.timer',
        reason: 'reconcile.mode is timer: not running',
      },
    ]);
    // The service runs this very reconciler with the home, manifests and unit dir it was given.
    expect(writeOf(p, `${UNIT_DIR}/mosaic-fleet-reconcile.service`).after).toContain(
      `ExecStart=/usr/bin/node /opt/fleet/bin/fleet.js --home ${HOME} --manifests ${HOME}/fleet --unit-dir ${UNIT_DIR} reconcile\n`,
    );
    expect(writeOf(p, `${UNIT_DIR}/mosaic-fleet-reconcile.timer`).after).toContain('OnUnitInactiveSec=120\n');
  });

  it('watch: writes, enables and starts the watch service', () => {
    expect(lines(planFor(watch, CONVERGED))).toEqual([
      {
        kind: 'write-file',
        target: `${UNIT_DIR}/mosaic-fleet-watch.service`,
        reason: 'unit file not installed',
      },
      { kind: 'daemon-reload', target: 'systemd --user', reason: 'unit files changed' },
      {
        kind: 'enable',
        target: 'mosaic-fleet-watch.service',
        reason: 'reconcile.mode is watch: not enabled',
      },
      { kind: 'start', target: 'mosaic-fleet-watch.service', reason: 'reconcile.mode is watch: not running' },
    ]);
  });

  it('a changed interval rewrites the timer and restarts it', () => {
    const slower = roster({ reconcile: { mode: 'timer', intervalSeconds: 600 } });
    expect(lines(planFor(slower, convergedFor(timer)))).toEqual([
      {
        kind: 'write-file',
        target: `${UNIT_DIR}/mosaic-fleet-reconcile.timer`,
        reason: 'unit file out of date with the manifest',
      },
      { kind: 'daemon-reload', target: 'systemd --user', reason: 'unit files changed' },
      { kind: 'restart', target: 'mosaic-fleet-reconcile.timer', reason: 'unit changed' },
    ]);
  });

  it('back to none: the timer is stopped, disabled, and both files archived (never deleted)', () => {
    const p = planFor(BASE, convergedFor(timer));
    // Every retired unit is stopped and disabled before any file is moved aside; then systemd forgets them.
    expect(lines(p)).toEqual([
      { kind: 'stop', target: 'mosaic-fleet-reconcile.timer', reason: 'reconcile.mode is none' },
      { kind: 'disable', target: 'mosaic-fleet-reconcile.timer', reason: 'reconcile.mode is none' },
      {
        kind: 'archive-file',
        target: `${UNIT_DIR}/mosaic-fleet-reconcile.service`,
        reason: 'reconcile.mode is none: unit no longer wanted (archived, not deleted)',
      },
      {
        kind: 'archive-file',
        target: `${UNIT_DIR}/mosaic-fleet-reconcile.timer`,
        reason: 'reconcile.mode is none: unit no longer wanted (archived, not deleted)',
      },
      { kind: 'daemon-reload', target: 'systemd --user', reason: 'unit files removed' },
    ]);
    expect(p.actions[3]).toMatchObject({ to: `${HOME}/fleet/archive/mosaic-fleet-reconcile.timer.STAMP` });
  });

  it('from watch to timer: the watch service is retired and the timer installed in the same plan', () => {
    const kinds = lines(planFor(timer, convergedFor(watch))).map(
      (l) => `${l.kind} ${l.target.split('/').pop()}`,
    );
    expect(kinds).toEqual([
      'write-file mosaic-fleet-reconcile.service',
      'write-file mosaic-fleet-reconcile.timer',
      'daemon-reload systemd --user',
      'enable mosaic-fleet-reconcile.timer',
      'start mosaic-fleet-reconcile.timer',
      'stop mosaic-fleet-watch.service',
      'disable mosaic-fleet-watch.service',
      'archive-file mosaic-fleet-watch.service',
      'daemon-reload systemd --user',
    ]);
  });
});

describe('planner: working directories', () => {
  it('warns when the working directory of an agent does not exist (the start would fail), and only then', () => {
    const o = observedBuilder().build();
    const dir = BASE.agents[0]?.workingDirectory ?? '';
    o.dirs = { [dir]: false };
    const p = planFor(BASE, o);
    expect(p.warnings).toContain(
      `${BASE.agents[0]?.name ?? ''}: working directory ${dir} does not exist; its session cannot start until it does`,
    );
    o.dirs = { [dir]: true };
    expect(planFor(BASE, o).warnings.filter((w) => w.includes('working directory'))).toEqual([]);
  });
});

describe('planner: linger', () => {
  it('warns when linger is off (tells, never changes it), on a run that has something to do', () => {
    const p = planFor(BASE, observedBuilder(CONVERGED).linger(false).withoutFile(ENV_PATH('coder0')).build());
    expect(p.actions.map((a) => a.kind)).toEqual(['write-file']);
    expect(p.warnings).toEqual([
      'linger is off for this user: user units stop at logout (enable it with `loginctl enable-linger`)',
    ]);
    expect(renderPlanText(p)).toContain('\nWarning: linger is off for this user');
    // Not repeated on every quiet run (the timer's): `fleet ps` reports it any time.
    expect(planFor(BASE, observedBuilder(CONVERGED).linger(false).build()).warnings).toEqual([]);
  });

  it('says nothing when linger is on or unknown', () => {
    expect(planFor(BASE, CONVERGED).warnings).toEqual([]);
    expect(planFor(BASE, observedBuilder(CONVERGED).linger(null).build()).warnings).toEqual([]);
  });
});

describe('planner: determinism', () => {
  const broken = breakOne((b) =>
    b
      .withoutSession(SOCKET, 'lead')
      .withoutFile(ENV_PATH('coder0'))
      .envFile('old', 'MOSAIC_TMUX_SOCKET=mosaic-fleet\n')
      .unit(unitOf('old')),
  );

  it('the same inputs give deep-equal plans', () => {
    expect(planFor(BASE, broken, { prune: true })).toEqual(planFor(BASE, broken, { prune: true }));
    expect(planFor(BASE, observedBuilder().build())).toEqual(planFor(BASE, observedBuilder().build()));
  });

  it('agents listed in another order in the manifests give the same plan', () => {
    const yaml = (names: string[]) =>
      [
        'version: 1',
        'tmux: {socket_name: mosaic-fleet}',
        'agents:',
        ...names.map((n) => `  - {name: ${n}, runtime: pi, model_hint: m-${n}}`),
        '',
      ].join('\n');
    const desiredOf = (names: string[]) => {
      const parsed = [parseManifestText(`${HOME}/fleet/roster.yaml`, yaml(names))];
      expect(checkParsed(parsed).diagnostics).toEqual([]);
      return normalizeFleet(toManifestInputs(parsed), {
        userHome: '/home/op',
        mosaicHome: HOME,
        hostname: HOSTNAME,
      });
    };
    const a = desiredOf(['coder0', 'lead', 'reviewer0']);
    const b = desiredOf(['reviewer0', 'coder0', 'lead']);
    expect(planFor(b, observedBuilder().build())).toEqual(planFor(a, observedBuilder().build()));
    expect(planFor(b, broken, { prune: true })).toEqual(planFor(a, broken, { prune: true }));
  });

  // Regression: the planner once relied on DesiredFleet.agents arriving sorted (normalizeFleet sorts) and emitted
  // enables/starts/respawns in the order given; it now sorts the agents itself.
  it('agents given to the planner in another order give the same plan', () => {
    const reversed: DesiredFleet = { ...BASE, agents: [...BASE.agents].reverse() };
    expect(reversed.agents.map((a) => a.name)).toEqual(['lead', 'coder0']);
    expect(planFor(reversed, broken, { prune: true })).toEqual(planFor(BASE, broken, { prune: true }));
    expect(planFor(reversed, observedBuilder().build())).toEqual(planFor(BASE, observedBuilder().build()));
  });

  it('an observation listed in another order gives the same plan', () => {
    const reorder = <T>(r: Record<string, T>): Record<string, T> =>
      Object.fromEntries(Object.entries(r).reverse());
    const shuffled: Observed = {
      ...broken,
      systemd: { ...broken.systemd, units: reorder(broken.systemd.units) },
      files: reorder(broken.files),
      heartbeats: reorder(broken.heartbeats),
    };
    expect(Object.keys(shuffled.systemd.units)).not.toEqual(Object.keys(broken.systemd.units));
    expect(planFor(BASE, shuffled, { prune: true })).toEqual(planFor(BASE, broken, { prune: true }));
  });
});

describe('planner: the JSON patch describes exactly the changes', () => {
  it('enable → /units/<unit>/enabled true, and nothing else', () => {
    const observed = breakOne((_b, o) => {
      const u = o.systemd.units[unitOf('coder0')];
      if (u) u.unitFileState = 'disabled';
    });
    expect(planFor(BASE, observed).patch).toEqual([
      { op: 'replace', path: `/units/${unitOf('coder0')}/enabled`, value: true },
    ]);
  });

  it('respawn of a dead pane → its session running again', () => {
    const observed = breakOne((b) =>
      b.withoutSession(SOCKET, 'coder0').session(SOCKET, 'coder0', { dead: true }),
    );
    expect(planFor(BASE, observed).patch).toEqual([
      { op: 'replace', path: `/sessions/${SOCKET}~1coder0`, value: 'running' },
    ]);
  });

  it('a missing session is added back', () => {
    const observed = breakOne((b) => b.withoutSession(SOCKET, 'coder0'));
    expect(planFor(BASE, observed).patch).toEqual([
      { op: 'add', path: `/sessions/${SOCKET}~1coder0`, value: 'running' },
    ]);
  });

  it('an env rewrite → the file hash it will have; a restart of a running unit changes no state', () => {
    const changed = roster({
      agents: [agent('coder0', { modelHint: 'opus' }), agent('lead', { runtime: 'claude' })],
    });
    const p = planFor(changed, CONVERGED);
    expect(p.patch).toEqual([
      {
        op: 'replace',
        path: `/files/${ptr(ENV_PATH('coder0'))}`,
        value: `sha256:${sha256(writeOf(p, ENV_PATH('coder0')).after)}`,
      },
    ]);
  });

  it('prune → unit inactive and disabled, session gone, env file moved to the archive', () => {
    const withOld = fleet([agent('coder0', { modelHint: 'sonnet' }), agent('old')]);
    const running = convergedFor(withOld);
    const hash = `sha256:${sha256(running.files[ENV_PATH('old')]?.content ?? '')}`;
    const p = planFor(fleet([agent('coder0', { modelHint: 'sonnet' })]), running, { prune: true });
    expect(p.patch).toEqual(
      expect.arrayContaining([
        { op: 'replace', path: `/units/${unitOf('old')}/active`, value: false },
        { op: 'replace', path: `/units/${unitOf('old')}/enabled`, value: false },
        { op: 'remove', path: `/sessions/${SOCKET}~1old` },
        { op: 'remove', path: `/files/${ptr(ENV_PATH('old'))}` },
        { op: 'add', path: `/files/${ptr(`${HOME}/fleet/archive/old.STAMP.env`)}`, value: hash },
      ]),
    );
    expect(p.patch).toHaveLength(5);
  });

  it('a fresh home: every file, unit and agent session is added', () => {
    const p = planFor(BASE, observedBuilder().build());
    const paths = p.patch.map((op) => `${op.op} ${op.path}`);
    expect(paths).toEqual(
      expect.arrayContaining([
        `add /units/${HOLDER}`,
        `add /units/${unitOf('coder0')}`,
        `add /units/${unitOf('lead')}`,
        `add /sessions/${SOCKET}~1coder0`,
        `add /sessions/${SOCKET}~1lead`,
        `add /files/${ptr(ENV_PATH('coder0'))}`,
        `add /files/${ptr(AGENT_TEMPLATE_PATH)}`,
      ]),
    );
    expect(p.patch.find((op) => op.path === `/units/${unitOf('coder0')}`)).toMatchObject({
      value: { active: true, enabled: true },
    });
  });

  // Regression: starting the holder creates a holder session on every fleet socket; the patch once added sessions
  // for agent units only, so a fresh home's patch never mentioned `_holder`.
  it('a fresh home: the holder session is added too', () => {
    const p = planFor(BASE, observedBuilder().build());
    expect(p.patch).toContainEqual({ op: 'add', path: `/sessions/${SOCKET}~1_holder`, value: 'running' });
  });

  // Regression: the patch projection once kept only agent and holder units, so a retired convergence timer
  // (enabled + active before) was patched as `add {active: false, enabled: false}` instead of two replaces.
  it('retiring the reconcile timer → its unit goes inactive and disabled (replace, not add)', () => {
    const timer = roster({ reconcile: { mode: 'timer', intervalSeconds: 120 } });
    const p = planFor(BASE, convergedFor(timer));
    expect(p.patch).toEqual(
      expect.arrayContaining([
        { op: 'replace', path: '/units/mosaic-fleet-reconcile.timer/active', value: false },
        { op: 'replace', path: '/units/mosaic-fleet-reconcile.timer/enabled', value: false },
      ]),
    );
  });
});
