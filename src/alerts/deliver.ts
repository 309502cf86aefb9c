/**
 * Delivering alert messages to the rules' sinks (docs/alerts.md): a command run without a shell with the JSON
 * on stdin, or a webhook POST of the same JSON. Everything is bounded: each attempt has a timeout, a cycle's
 * deliveries together have a deadline (they run concurrently after the apply, so convergence never waits for a
 * sink), and a message is given up after MAX_DELIVERY_ATTEMPTS over all cycles.
 */
import type { Runner } from '../exec.js';
import type { AlertRule, AlertSink, DesiredFleet } from '../model/desired.js';
import type { AlertDelivery, AlertEpisode } from '../model/observed.js';
import { MAX_DELIVERY_ATTEMPTS, type DueDelivery } from './episodes.js';
import { postJson, urlOrigin, type PostResult } from './webhook.js';

/** The JSON every sink receives (docs/alerts.md). */
export interface AlertMessage {
  format_version: 1;
  rule: string;
  condition: string;
  agent: string;
  host: string;
  tenant: string | null;
  /** ISO time the condition began. */
  since: string;
  /** The agent's state as its runtime reported it (busy, waiting, ...); null when unknown. */
  state: string | null;
  detail: string;
  resolved: boolean;
  fired_at: string | null;
  resolved_at: string | null;
}

export interface DeliveryLimits {
  /** One attempt (one POST, one command run). */
  attemptTimeoutMs: number;
  /** All of a cycle's deliveries together. */
  totalMs: number;
  /** Attempts of one message within one cycle (then it waits for a later cycle). */
  triesPerCycle: number;
  /** Pause between those tries. */
  retryPauseMs: number;
}

export const DEFAULT_LIMITS: DeliveryLimits = {
  attemptTimeoutMs: 5_000,
  totalMs: 10_000,
  triesPerCycle: 2,
  retryPauseMs: 500,
};

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

export function alertMessage(
  e: AlertEpisode,
  which: 'fire' | 'resolve',
  desired: DesiredFleet,
  hostname: string,
): AlertMessage {
  const agent = desired.agents.find((a) => a.name === e.agent);
  return {
    format_version: 1,
    rule: e.rule,
    condition: e.condition,
    agent: e.agent,
    host: agent?.host ?? hostname,
    tenant: agent?.tenantId ?? desired.tenantId,
    since: new Date(e.sinceMs).toISOString(),
    state: e.state,
    detail: e.detail,
    resolved: which === 'resolve',
    fired_at: iso(e.firedAtMs),
    resolved_at: iso(e.resolvedAtMs),
  };
}

/** A sink as the journal names it (a webhook by its variable and origin, never its full URL). */
export function sinkText(sink: AlertSink, env: NodeJS.ProcessEnv): string {
  switch (sink.kind) {
    case 'command':
      return `command ${sink.argv[0] ?? ''}`;
    case 'webhook': {
      const url = env[sink.urlEnv];
      return `webhook $${sink.urlEnv}${url ? ` (${urlOrigin(url)})` : ''}`;
    }
    default: {
      const never: never = sink;
      throw new Error(`unknown sink ${JSON.stringify(never)}`);
    }
  }
}

async function sendOnce(
  sink: AlertSink,
  body: string,
  timeoutMs: number,
  runner: Runner,
  env: NodeJS.ProcessEnv,
): Promise<PostResult> {
  switch (sink.kind) {
    case 'command': {
      try {
        // No shell: the argv runs as written; the alert is its stdin.
        const r = await runner.run(sink.argv, { input: body, timeoutMs, reject: false, kind: 'mutate' });
        const err = r.stderr.trim().split('\n')[0] ?? '';
        return r.exitCode === 0
          ? { ok: true, message: 'exit 0' }
          : { ok: false, message: `exit ${r.exitCode}${err ? `: ${err.slice(0, 200)}` : ''}` };
      } catch (error) {
        return { ok: false, message: (error as Error).message.split('\n')[0] ?? 'failed' };
      }
    }
    case 'webhook': {
      const url = env[sink.urlEnv];
      if (url === undefined || url === '')
        return { ok: false, message: `$${sink.urlEnv} is not set in the reconciler's environment` };
      return postJson(url, body, timeoutMs);
    }
    default: {
      const never: never = sink;
      throw new Error(`unknown sink ${JSON.stringify(never)}`);
    }
  }
}

export interface DeliveryReport {
  due: DueDelivery;
  rule: AlertRule;
  message: AlertMessage;
  /** The delivery record after this cycle's attempts. */
  delivery: AlertDelivery;
  /** Attempts made in this cycle. */
  attempts: number;
  result: PostResult;
  sink: string;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Deliver one message: up to `triesPerCycle` attempts, none past the deadline. */
async function deliverOne(
  due: DueDelivery,
  rule: AlertRule,
  message: AlertMessage,
  ctx: { runner: Runner; env: NodeJS.ProcessEnv; limits: DeliveryLimits; deadline: number },
): Promise<DeliveryReport> {
  const before = (due.which === 'fire' ? due.episode.fire : due.episode.resolve) ?? {
    status: 'pending' as const,
    attempts: 0,
    lastAttemptMs: null,
  };
  const body = `${JSON.stringify(message)}\n`;
  let attempts = 0;
  let result: PostResult = { ok: false, message: 'no time left in this cycle' };
  while (attempts < ctx.limits.triesPerCycle && before.attempts + attempts < MAX_DELIVERY_ATTEMPTS) {
    const left = ctx.deadline - Date.now();
    if (left < 100) break;
    if (attempts > 0) {
      if (left < ctx.limits.retryPauseMs + 100) break;
      await sleep(ctx.limits.retryPauseMs);
    }
    attempts++;
    const timeout = Math.min(ctx.limits.attemptTimeoutMs, ctx.deadline - Date.now());
    result = await sendOnce(rule.send, body, Math.max(1, timeout), ctx.runner, ctx.env);
    if (result.ok) break;
  }
  const total = before.attempts + attempts;
  const delivery: AlertDelivery = result.ok
    ? { status: 'delivered', attempts: total, lastAttemptMs: Date.now() }
    : {
        status: total >= MAX_DELIVERY_ATTEMPTS ? 'failed' : 'pending',
        attempts: total,
        lastAttemptMs: attempts > 0 ? Date.now() : before.lastAttemptMs,
        error: result.message,
      };
  return { due, rule, message, delivery, attempts, result, sink: sinkText(rule.send, ctx.env) };
}

/** Deliver every due message concurrently, all within `limits.totalMs`. */
export async function deliverAll(
  due: readonly DueDelivery[],
  desired: DesiredFleet,
  hostname: string,
  runner: Runner,
  env: NodeJS.ProcessEnv,
  limits: DeliveryLimits = DEFAULT_LIMITS,
): Promise<DeliveryReport[]> {
  const rules = new Map((desired.alerts ?? []).map((r) => [r.name, r]));
  const deadline = Date.now() + limits.totalMs;
  const jobs: Promise<DeliveryReport>[] = [];
  for (const d of due) {
    const rule = rules.get(d.episode.rule);
    if (rule === undefined) continue;
    const message = alertMessage(d.episode, d.which, desired, hostname);
    jobs.push(deliverOne(d, rule, message, { runner, env, limits, deadline }));
  }
  return Promise.all(jobs);
}
