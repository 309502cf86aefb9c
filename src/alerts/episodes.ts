/**
 * Alert episodes, Alertmanager's way (docs/alerts.md): a condition that holds for an agent under a rule is one
 * episode; it fires once when it has held for the rule's `after`, and one `resolved` message follows when it
 * ends. Repeats are suppressed because the open episode is remembered in the state file, so a restarted watcher
 * finds it and sends nothing again. Pure: judgments and "now" in, the next episodes out.
 */
import type { AlertEpisode, AlertDelivery } from '../model/observed.js';
import type { Judgment } from './judge.js';

/** Attempts to deliver one message, over all cycles, before it is given up (journaled as failed). */
export const MAX_DELIVERY_ATTEMPTS = 5;
/** Between cycles, a failed delivery waits min(base * 2^(attempts-1), max) before its next attempt. */
export const RETRY_BASE_MS = 2_000;
export const RETRY_MAX_MS = 60_000;

function key(e: { rule: string; agent: string; condition: string }): string {
  return `${e.rule}\u0000${e.agent}\u0000${e.condition}`;
}

function pendingDelivery(): AlertDelivery {
  return { status: 'pending', attempts: 0, lastAttemptMs: null };
}

function open(j: Judgment, sinceMs: number): AlertEpisode {
  return {
    rule: j.rule,
    agent: j.agent,
    condition: j.condition,
    sinceMs,
    firedAtMs: null,
    resolvedAtMs: null,
    state: j.state,
    detail: j.detail,
    fire: null,
    resolve: null,
  };
}

function resolved(e: AlertEpisode, nowMs: number): AlertEpisode {
  return { ...e, resolvedAtMs: nowMs, resolve: pendingDelivery() };
}

/** Whether a message needs nothing more: none owed, delivered, or given up. */
export function settled(d: AlertDelivery | null): boolean {
  return d === null || d.status !== 'pending';
}

/**
 * The episodes after this observation. `rules`: the names of the rules that exist now (episodes of a removed
 * rule are dropped: their sink is gone). Open episodes keep their place; new ones come last, in judgment order.
 *
 * - a judgment with no open episode opens one, counted from the observed start (or from now when observation
 *   cannot tell); it is remembered only once it fired, or when its start is known to nothing but the state;
 * - an episode fires (once) when its condition has held for `after`;
 * - a fired episode whose condition, as observed now, began less than `after` ago has ended and begun again
 *   (a wedged agent that made progress, a permission answered and another asked between two looks): it is
 *   resolved and a new one starts;
 * - an open episode with no judgment has ended: resolved if it fired, forgotten if it never did;
 * - a resolved episode is forgotten once its messages are delivered or given up.
 */
export function stepEpisodes(
  prev: readonly AlertEpisode[],
  judgments: readonly Judgment[],
  rules: ReadonlySet<string>,
  nowMs: number,
): AlertEpisode[] {
  const live = prev.filter((e) => rules.has(e.rule));
  const openByKey = new Map(live.filter((e) => e.resolvedAtMs === null).map((e) => [key(e), e]));
  const next = new Map<AlertEpisode, AlertEpisode | null>();
  const added: AlertEpisode[] = [];
  const seen = new Set<string>();
  for (const j of judgments) {
    const k = key(j);
    if (seen.has(k) || !rules.has(j.rule)) continue;
    seen.add(k);
    const before = openByKey.get(k);
    let ep: AlertEpisode;
    if (before === undefined) {
      ep = open(j, j.sinceMs ?? nowMs);
    } else if (before.firedAtMs !== null && j.sinceMs !== null && nowMs - j.sinceMs < j.afterMs) {
      next.set(before, resolved(before, nowMs));
      ep = open(j, j.sinceMs);
    } else {
      // Before it fires, observation says when it began; after, the episode keeps what it fired with.
      ep =
        before.firedAtMs === null
          ? { ...before, sinceMs: j.sinceMs ?? before.sinceMs, state: j.state, detail: j.detail }
          : before;
    }
    if (ep.firedAtMs === null && nowMs - ep.sinceMs >= j.afterMs) {
      ep = { ...ep, firedAtMs: nowMs, state: j.state, detail: j.detail, fire: pendingDelivery() };
    }
    const keep = ep.firedAtMs !== null || j.sinceMs === null;
    if (before !== undefined && next.get(before) === undefined) next.set(before, keep ? ep : null);
    else if (keep) added.push(ep);
  }
  const out: AlertEpisode[] = [];
  for (const e of live) {
    let now: AlertEpisode | null;
    if (next.has(e)) now = next.get(e) ?? null;
    else if (e.resolvedAtMs === null) now = e.firedAtMs === null ? null : resolved(e, nowMs);
    else now = e;
    if (now === null) continue;
    if (now.resolvedAtMs !== null && settled(now.fire) && settled(now.resolve)) continue;
    out.push(now);
  }
  return [...out, ...added];
}

/** One message an episode owes a sink: its firing, or its resolution. */
export interface DueDelivery {
  episode: AlertEpisode;
  which: 'fire' | 'resolve';
}

/** When a pending delivery may be tried next: at once the first time, then after a growing pause. */
export function nextAttemptMs(d: AlertDelivery): number {
  if (d.lastAttemptMs === null || d.attempts === 0) return 0;
  return d.lastAttemptMs + Math.min(RETRY_BASE_MS * 2 ** (d.attempts - 1), RETRY_MAX_MS);
}

/**
 * The messages to send now, oldest episode first; an episode's resolution waits until its firing was
 * delivered or given up, so a receiver never sees `resolved` before the alert it resolves.
 */
export function dueDeliveries(episodes: readonly AlertEpisode[], nowMs: number): DueDelivery[] {
  const out: DueDelivery[] = [];
  for (const episode of episodes) {
    if (episode.fire?.status === 'pending') {
      if (nextAttemptMs(episode.fire) <= nowMs) out.push({ episode, which: 'fire' });
      continue;
    }
    if (episode.resolve?.status === 'pending' && nextAttemptMs(episode.resolve) <= nowMs)
      out.push({ episode, which: 'resolve' });
  }
  return out;
}

/**
 * The earliest future moment at which time alone changes the alerts: a holding condition reaching its `after`,
 * or a failed delivery's next attempt. Watch mode sleeps until then (src/engine/wake.ts does the same for plans).
 */
export function nextAlertWakeMs(
  episodes: readonly AlertEpisode[],
  judgments: readonly Judgment[],
  nowMs: number,
): number | null {
  const due: number[] = [];
  const fired = new Set(episodes.filter((e) => e.firedAtMs !== null && e.resolvedAtMs === null).map(key));
  const stored = new Map(episodes.filter((e) => e.resolvedAtMs === null).map((e) => [key(e), e]));
  for (const j of judgments) {
    if (fired.has(key(j))) continue;
    const since = j.sinceMs ?? stored.get(key(j))?.sinceMs ?? nowMs;
    due.push(since + j.afterMs);
  }
  for (const e of episodes) {
    for (const d of [e.fire, e.resolve]) if (d?.status === 'pending') due.push(nextAttemptMs(d));
  }
  const future = due.filter((t) => Number.isFinite(t) && t > nowMs);
  return future.length === 0 ? null : Math.min(...future);
}

/**
 * The episodes with delivery results put back: each result goes to the episode it was sent for (same rule, agent,
 * condition and start) and only while that message is still as it was when sent (pending, same attempts): a cycle
 * in between may have resolved or dropped the episode. A resolved episode whose messages are settled is done with.
 */
export function withDeliveries(
  episodes: readonly AlertEpisode[],
  results: readonly { due: DueDelivery; delivery: AlertDelivery }[],
): AlertEpisode[] {
  const out = episodes.map((e) => {
    let next = e;
    for (const r of results) {
      const sent = r.due.episode;
      if (key(sent) !== key(e) || sent.sinceMs !== e.sinceMs) continue;
      const now = next[r.due.which];
      if (now?.status !== 'pending' || now.attempts !== (sent[r.due.which]?.attempts ?? 0)) continue;
      next = { ...next, [r.due.which]: r.delivery };
    }
    return next;
  });
  return out.filter((e) => e.resolvedAtMs === null || !(settled(e.fire) && settled(e.resolve)));
}

/** Whether any message is still owed (to be tried again later). */
export function owesMessages(episodes: readonly AlertEpisode[]): boolean {
  return episodes.some((e) => e.fire?.status === 'pending' || e.resolve?.status === 'pending');
}

/** Whether two episode lists differ (so the state file is written only when something changed). */
export function episodesChanged(a: readonly AlertEpisode[], b: readonly AlertEpisode[]): boolean {
  return JSON.stringify(a) !== JSON.stringify(b);
}
