/**
 * Which tmux sessions are the fleet's: the proofs every decider that ends or moves a session relies on (its
 * socket is one the fleet uses or used for that agent, and it carries this home's marker), and the agents the
 * reconciler once managed that no manifest names any more.
 */
import type { DesiredAgent, DesiredFleet } from '../../model/desired.js';
import type { Observed, ObservedFile } from '../../model/observed.js';
import type { Orphan } from '../../model/plan.js';
import { parseEnvFile } from '../../base/env-file.js';
import { agentNameFromUnit, agentUnitName } from '../../base/names.js';
import type { RenderContext } from '../../render/units.js';
import { hasSession, livePane } from '../lookup.js';
import { envFilePath } from './env.js';
import { socketLabel } from './input.js';

/**
 * Whether the session `name` is provably the fleet's to end. Both proofs are needed: it is on one of `allowed`
 * (the sockets the fleet uses or used for that agent), and it carries this home's marker (the session option
 * the start script sets when it creates the session). Every other session of that name, on another tmux server
 * or without the marker (the operator's own `a1`), is someone else's: listed in `foreign`, never ended.
 */
export function claimSession(
  name: string,
  allowed: ReadonlySet<string>,
  observed: Observed,
): { socketName: string | null; foreign: string[] } {
  let socketName: string | null = null;
  const foreign: string[] = [];
  const sockets = Object.values(observed.tmux.sockets).sort((a, b) =>
    a.socketName < b.socketName ? -1 : a.socketName > b.socketName ? 1 : 0,
  );
  for (const s of sockets) {
    if (!hasSession(s, name)) continue;
    const where = `session ${name} on ${socketLabel(s.socketName)}`;
    if (!allowed.has(s.socketName)) {
      foreign.push(`${where} is not the fleet's (not a socket it uses or used for ${name}); left alone`);
    } else if (s.owners?.[name] !== observed.paths.mosaicHome) {
      foreign.push(`${where} is not the fleet's (it does not carry the fleet's marker); left alone`);
    } else {
      socketName ??= s.socketName;
    }
  }
  return { socketName, foreign };
}

/**
 * The sockets an orphan's session may be on: the one its env file names and the ones the reconciler recorded
 * for it in the state file; when neither names any, the sockets the fleet uses now. Never "any socket": a
 * fleet on a named socket has no business with the default tmux server.
 */
export function orphanSockets(
  name: string,
  desired: DesiredFleet,
  observed: Observed,
  ctx: RenderContext,
): Set<string> {
  const used = new Set<string>(observed.state.sessionSockets?.[name] ?? []);
  const fromEnv = envSocketOf(observed.files[envFilePath(ctx.mosaicHome, name)]);
  if (fromEnv !== null) used.add(fromEnv);
  if (used.size === 0) for (const s of desired.sockets) used.add(s.socketName);
  return used;
}

function envSocketOf(file: ObservedFile | undefined): string | null {
  if (!file?.content) return null;
  const v = parseEnvFile(file.content).entries.get('MOSAIC_TMUX_SOCKET');
  return v === undefined ? null : v;
}

/** The socket (not the agent's own) where the fleet's live session of this agent runs; null when none. */
export function movedSession(
  agent: DesiredAgent,
  desired: DesiredFleet,
  observed: Observed,
  ctx: RenderContext,
): string | null {
  if (livePane(observed.tmux.sockets[agent.socketName], agent.name) !== undefined) return null;
  const used = orphanSockets(agent.name, desired, observed, ctx);
  used.delete(agent.socketName);
  for (const socketName of [...used].sort()) {
    const sock = observed.tmux.sockets[socketName];
    if (sock === undefined || sock.owners?.[agent.name] !== observed.paths.mosaicHome) continue;
    if (livePane(sock, agent.name) !== undefined) return socketName;
  }
  return null;
}

/**
 * Agents the reconciler once managed (a unit instance, an env file, or sockets recorded in its state file) that
 * no manifest names, on any host. A session that merely exists on the socket is not ours to kill unless one of
 * those claims it, and then only if it is provably the fleet's (claimSession).
 */
export function findOrphans(desired: DesiredFleet, observed: Observed, ctx: RenderContext): Orphan[] {
  const named = new Set(desired.agents.map((a) => a.name));
  const candidates = new Set<string>();
  for (const unit of Object.keys(observed.systemd.units)) {
    const name = agentNameFromUnit(unit);
    if (name !== null) candidates.add(name);
  }
  for (const name of observed.envFileAgents) candidates.add(name);
  for (const name of Object.keys(observed.state.sessionSockets ?? {})) candidates.add(name);
  const orphans: Orphan[] = [];
  for (const name of [...candidates].sort()) {
    if (named.has(name)) continue;
    const unitName = agentUnitName(name);
    const u = observed.systemd.units[unitName];
    const hasUnit =
      u !== undefined && (u.unitFileState !== null || (u.activeState !== '' && u.activeState !== 'inactive'));
    const hasEnv = observed.envFileAgents.includes(name);
    // Its session lives on a socket the fleet uses or used for it, and carries the fleet's marker: a session of
    // the same name on another server, or without the marker, is someone else's (the operator's own `old`).
    const found = claimSession(name, orphanSockets(name, desired, observed, ctx), observed).socketName;
    if (!hasUnit && !hasEnv && found === null) continue;
    orphans.push({
      agent: name,
      unit: hasUnit ? unitName : null,
      session: found !== null ? name : null,
      socketName: found,
      envFile: hasEnv ? envFilePath(ctx.mosaicHome, name) : null,
    });
  }
  return orphans;
}
