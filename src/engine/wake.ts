/**
 * When the plan could next change with nothing happening but time: a back-off that ends, a heartbeat that turns
 * stale, an agent idle long enough for its deferred restart, a restart past its max_defer; with a register, the
 * lease to renew and a takeover that becomes possible. Watch mode sleeps until the earliest of these instead of
 * waiting for its resync (docs/convergence.md). Pure: reads a session, returns a time.
 */
import { DEFAULT_RESTART } from '../plan/planner.js';
import type { Session } from './session.js';

/** A deadline is acted on this long after it passes, so the planner sees it past, not on the edge. */
const MARGIN_MS = 250;

/** Unix ms of the earliest future moment at which time alone may change the plan; null when nothing is due. */
export function nextWakeMs(s: Pick<Session, 'desired' | 'observed' | 'plan'>): number | null {
  const now = s.observed.nowMs;
  const due: number[] = [];
  for (const d of s.plan.deferred) due.push(d.nextAttemptMs);

  const restart = s.desired.reconcile.restart ?? DEFAULT_RESTART;
  for (const d of s.plan.deferredRestarts) {
    const hb = s.observed.heartbeats[d.agent];
    const since = Number(hb?.keys.since);
    if (hb?.keys.state === 'idle' && Number.isFinite(since)) due.push((since + restart.settleSeconds) * 1000);
    if (restart.maxDeferSeconds !== null) due.push(d.sinceMs + restart.maxDeferSeconds * 1000);
  }

  for (const agent of s.desired.agents) {
    if (!agent.heartbeat.respawnOnStale) continue;
    const hb = s.observed.heartbeats[agent.name];
    if (hb?.ts !== null && hb?.ts !== undefined) due.push((hb.ts + agent.heartbeat.staleAfterSeconds) * 1000);
    // A new pane's grace ends: a heartbeat still missing then is a finding.
    const created = s.observed.tmux.sockets[agent.socketName]?.panes.find(
      (p) => p.session === agent.name,
    )?.created;
    if (created !== null && created !== undefined) due.push((created + agent.heartbeat.graceSeconds) * 1000);
  }

  // Many hosts (docs/hosts.md): the lease is renewed at half its length, whatever the resync interval, so a
  // live host never looks dead; and a start held for another host is looked at again when that host's lease
  // will have been over for takeover_after, rather than at the next resync.
  if (s.desired.register !== undefined) {
    due.push(now + s.desired.register.leaseSeconds * 500);
    for (const d of s.plan.ownership ?? []) if (d.kind === 'wait') due.push(now + d.takeoverInMs);
  }

  const future = due.filter((t) => Number.isFinite(t) && t + MARGIN_MS > now);
  return future.length === 0 ? null : Math.min(...future) + MARGIN_MS;
}
