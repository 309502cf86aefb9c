/**
 * The state patch: the observed state the plan changes (units, sessions, managed files), as RFC 6902 JSON Patch
 * from what was observed to what it will be once the actions are applied; and the plan's summary counts.
 */
import jsonpatch from 'fast-json-patch';
import type { Operation } from 'fast-json-patch';
import type { DesiredSocket } from '../../model/desired.js';
import type { Observed } from '../../model/observed.js';
import type { Action, PlanSummary, WriteFileAction } from '../../model/plan.js';
import { assertNever } from '../../errors.js';
import { parseEnvFile } from '../../base/env-file.js';
import { HOLDER_UNIT } from '../../base/names.js';
import { CONVERGENCE_UNITS } from '../../base/names.js';
import { contentSha256, sha256 } from '../digest.js';
import { sessionPanes } from '../lookup.js';

export function summarize(actions: readonly Action[]): PlanSummary {
  const s: PlanSummary = { add: 0, change: 0, remove: 0, other: 0 };
  for (const a of actions) {
    switch (a.kind) {
      case 'write-file':
        if (a.before === null) s.add++;
        else s.change++;
        break;
      case 'archive-file':
      case 'kill-session':
      case 'stop':
      case 'disable':
        s.remove++;
        break;
      case 'enable':
      case 'start':
      case 'restart':
      case 'respawn':
      case 'daemon-reload':
        s.other++;
        break;
      case 'worktree-add':
        s.add++;
        break;
      case 'worktree-lock':
      case 'worktree-move':
        s.change++;
        break;
      case 'worktree-remove':
        s.remove++;
        break;
      default:
        assertNever(a, 'action');
    }
  }
  return s;
}

/** The observed state the plan changes, as plain data: units, sessions and managed files. */
interface StateProjection {
  units: Record<string, { active: boolean; enabled: boolean }>;
  sessions: Record<string, 'running' | 'dead' | 'absent'>;
  files: Record<string, string>;
}

function sessionKey(socketName: string, session: string): string {
  return `${socketName === '' ? '(default)' : socketName}/${session}`;
}

function project(observed: Observed): StateProjection {
  const units: StateProjection['units'] = {};
  for (const u of Object.values(observed.systemd.units)) {
    const ours =
      u.name.startsWith('mosaic-agent@') ||
      u.name === HOLDER_UNIT ||
      (CONVERGENCE_UNITS as readonly string[]).includes(u.name);
    if (!ours) continue;
    if (u.name.endsWith('@.service')) continue;
    units[u.name] = {
      active: u.activeState === 'active' || u.activeState === 'activating',
      enabled: u.unitFileState === 'enabled',
    };
  }
  const sessions: StateProjection['sessions'] = {};
  for (const s of Object.values(observed.tmux.sockets)) {
    for (const name of s.sessions) {
      const panes = sessionPanes(s, name);
      sessions[sessionKey(s.socketName, name)] =
        panes.length > 0 && panes.every((p) => p.dead) ? 'dead' : 'running';
    }
  }
  const files: StateProjection['files'] = {};
  for (const f of Object.values(observed.files)) {
    if (f.content !== null) files[f.path] = `sha256:${contentSha256(f.content)}`;
  }
  return { units, sessions, files };
}

/** RFC 6902 patch from the observed projection to what it will be once the actions are applied. */
export function statePatch(
  observed: Observed,
  actions: readonly Action[],
  holderSockets: readonly DesiredSocket[],
): Operation[] {
  // Nothing to apply changes nothing: no projection of every unit, session and file to compare with itself.
  if (actions.length === 0) return [];
  const before = project(observed);
  const after: StateProjection = structuredClone(before);
  const unit = (name: string) => (after.units[name] ??= { active: false, enabled: false });
  for (const a of actions) {
    switch (a.kind) {
      case 'write-file':
        after.files[a.path] = `sha256:${sha256(a.after)}`;
        break;
      case 'archive-file':
        if (after.files[a.path] !== undefined) after.files[a.to] = after.files[a.path];
        delete after.files[a.path];
        break;
      case 'daemon-reload':
        break;
      case 'worktree-add':
      case 'worktree-lock':
      case 'worktree-move':
      case 'worktree-remove':
        // Worktrees are not in this projection of units, sessions and files: the actions say what changes.
        break;
      case 'enable':
        unit(a.unit).enabled = true;
        break;
      case 'disable':
        unit(a.unit).enabled = false;
        break;
      case 'start':
      case 'restart':
        unit(a.unit).active = true;
        if (a.unit === HOLDER_UNIT) {
          for (const s of holderSockets)
            after.sessions[sessionKey(s.socketName, s.holderSession)] = 'running';
        }
        if (a.agent !== null) {
          const agent = a.agent;
          const socket = socketOfAgent(observed, actions, agent);
          if (socket !== null) after.sessions[sessionKey(socket, agent)] = 'running';
        }
        break;
      case 'respawn':
        after.sessions[sessionKey(a.socketName, a.session)] = 'running';
        break;
      case 'stop':
        unit(a.unit).active = false;
        if (a.agent !== null) {
          for (const key of Object.keys(after.sessions))
            if (key.endsWith(`/${a.agent}`)) delete after.sessions[key];
        }
        break;
      case 'kill-session':
        delete after.sessions[sessionKey(a.socketName, a.session)];
        break;
      default:
        assertNever(a, 'action');
    }
  }
  return jsonpatch.compare(before, after);
}

/** The socket an agent's session lives on, from the env file the plan writes (or the one on disk). */
function socketOfAgent(observed: Observed, actions: readonly Action[], agent: string): string | null {
  const write = actions.find(
    (x): x is WriteFileAction => x.kind === 'write-file' && x.role === 'env' && x.agent === agent,
  );
  const text =
    write?.after ??
    Object.values(observed.files).find((f) => f.path.endsWith(`/fleet/agents/${agent}.env`))?.content;
  if (!text) return null;
  return parseEnvFile(text).entries.get('MOSAIC_TMUX_SOCKET') ?? '';
}
