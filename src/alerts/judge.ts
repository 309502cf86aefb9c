/**
 * Which alert conditions hold, judged from one observation (docs/alerts.md). Pure (lint-enforced): "now", the
 * heartbeats, the runtimes' record sizes, back-off and restart bookkeeping all come in through `Observed`; the
 * spend issue's budget verdicts come in as an optional input. The episode logic (when a holding condition fires,
 * resolves, or is suppressed as a repeat) is src/alerts/episodes.ts.
 */
import type { AlertCondition, AlertRule, DesiredAgent, DesiredFleet } from '../model/desired.js';
import type { Observed } from '../model/observed.js';
import { fleetStatus, type AgentStatus } from '../plan/health.js';

/** How long each condition must hold before it fires when a rule sets no `after`, in seconds. */
export const DEFAULT_AFTER_SECONDS: Readonly<Record<AlertCondition, number>> = {
  waiting: 120,
  wedged: 900,
  // The back-off already waited out one failed respawn: that is the crash loop.
  'crash-loop': 0,
  // The heartbeat's own limit (heartbeat.stale_after_seconds) has already passed when it is stale.
  stale: 0,
  'over-budget': 0,
  'restart-deferred': 1800,
};

/**
 * The spend issue's verdict on one agent's budget (pending: budgets are being built there). Absent = no budget
 * is known for the agent, and `over-budget` is never judged for it.
 */
export interface BudgetVerdict {
  over: boolean;
  /** Unix ms it went over; null = unknown (the episode then counts from when it was first seen). */
  sinceMs: number | null;
  detail: string;
}

export interface JudgeInput {
  desired: DesiredFleet;
  observed: Observed;
  /** Each agent's joined status, when the caller has it already (else computed). */
  statuses?: readonly AgentStatus[];
  /** Since when each restart has been deferred, from this run's plan (else the state file's, from the last run). */
  restartPending?: Record<string, number>;
  /** Budget verdicts per agent, where budgets exist (the spend issue). */
  budgets?: Record<string, BudgetVerdict>;
}

/** A condition that holds now for one agent under one rule. */
export interface Judgment {
  rule: string;
  agent: string;
  condition: AlertCondition;
  /** Unix ms the condition began as observation tells; null when it cannot tell (then: first seen). */
  sinceMs: number | null;
  /** How long it must hold before it fires. */
  afterMs: number;
  /** The agent's state as its runtime reports it, when known. */
  state: string | null;
  detail: string;
}

/** `*` and `?` globs over agent names; anything else is literal. */
export function globMatch(pattern: string, name: string): boolean {
  const re = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${re}$`).test(name);
}

export function ruleCovers(rule: AlertRule, agent: string): boolean {
  return rule.agents === null || rule.agents.some((p) => globMatch(p, agent));
}

export function afterMsOf(rule: AlertRule, condition: AlertCondition): number {
  return Math.round((rule.afterSeconds ?? DEFAULT_AFTER_SECONDS[condition]) * 1000);
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

interface Held {
  sinceMs: number | null;
  detail: string;
}

type Check = (agent: DesiredAgent, st: AgentStatus, input: JudgeInput) => Held | null;

/** The heartbeat's `since=` (when the runtime entered its state), unix ms; null when absent or malformed. */
function stateSinceMs(observed: Observed, agent: string): number | null {
  const since = Number(observed.heartbeats[agent]?.keys.since);
  return Number.isFinite(since) && since > 0 ? since * 1000 : null;
}

/** Every condition's test. Each says whether it holds for the agent now, and since when. */
const CHECKS: Readonly<Record<AlertCondition, Check>> = {
  // The runtime itself said it waits for a permission answer (its hook, not a guess from the screen).
  waiting: (agent, st, { observed }) => {
    if (st.state?.state !== 'waiting') return null;
    const since = stateSinceMs(observed, agent.name);
    const event = st.state.event === null ? '' : ` (${st.state.event})`;
    return {
      sinceMs: since,
      detail: `waiting for a permission answer${since === null ? '' : ` since ${iso(since)}`}${event}`,
    };
  },
  // Busy on the outside, no progress inside: the runtime's own record has not changed for as long. The episode
  // counts from the later of the two; a runtime that names no record is never judged wedged.
  wedged: (agent, st, { observed }) => {
    if (st.state?.state !== 'busy') return null;
    const record = observed.heartbeats[agent.name]?.record;
    if (record === undefined || record === null) return null;
    const busySince = stateSinceMs(observed, agent.name) ?? record.mtimeMs;
    return {
      sinceMs: Math.max(busySince, record.mtimeMs),
      detail: `busy since ${iso(busySince)}, and its record ${record.path} (${record.bytes} bytes) has not changed since ${iso(record.mtimeMs)}`,
    };
  },
  // Back-off engaged: the agent died again after a respawn (waiting for the next, or due for it), or has been
  // respawned twice without a healthy period. The back-off record lasts until the agent stays healthy, so one loop
  // is one episode: the moment between "waiting out the back-off" and "due for the next respawn" is no recovery.
  'crash-loop': (_agent, st) => {
    const b = st.backoff;
    const deadAgain = st.flags.includes('DEAD') || st.flags.includes('MISSING');
    if (b === null || !(b.attempts >= 2 || st.flags.includes('BACKOFF') || (b.attempts >= 1 && deadAgain)))
      return null;
    return {
      sinceMs: null,
      detail: `${b.attempts} respawn attempt(s) without a healthy period; next not before ${iso(b.nextAttemptMs)}`,
    };
  },
  // No heartbeat for longer than the agent's limit while its unit says it runs.
  stale: (agent, st, { observed }) => {
    if (!st.heartbeat.expected || st.heartbeat.health !== 'stale' || st.unitActiveState !== 'active')
      return null;
    const ts = observed.heartbeats[agent.name]?.ts ?? null;
    return {
      sinceMs: ts === null ? null : (ts + agent.heartbeat.staleAfterSeconds) * 1000,
      detail: `no heartbeat for ${st.heartbeat.ageSeconds ?? '?'} s (limit ${agent.heartbeat.staleAfterSeconds} s) while ${st.unit} is active`,
    };
  },
  'over-budget': (agent, _st, { budgets }) => {
    const v = budgets?.[agent.name];
    return v?.over === true ? { sinceMs: v.sinceMs, detail: v.detail } : null;
  },
  'restart-deferred': (agent, _st, { observed, restartPending }) => {
    const since = (restartPending ?? observed.state.restartPending ?? {})[agent.name];
    if (since === undefined) return null;
    return { sinceMs: since, detail: `a restart it needs has been deferred since ${iso(since)}` };
  },
};

/**
 * Every (rule, agent, condition) that holds now, in rule order then agent order. Only this host's agents that
 * the manifest wants running are judged: nothing about another host's agent can be observed here.
 */
export function judgeAlerts(input: JudgeInput): Judgment[] {
  const rules = input.desired.alerts ?? [];
  if (rules.length === 0) return [];
  const statuses = input.statuses ?? fleetStatus(input.desired, input.observed);
  const byName = new Map(statuses.map((s) => [s.agent, s]));
  const out: Judgment[] = [];
  for (const rule of rules) {
    for (const agent of input.desired.agents) {
      const st = byName.get(agent.name);
      if (st === undefined || !st.local || !st.wanted || !ruleCovers(rule, agent.name)) continue;
      for (const condition of rule.when) {
        const held = CHECKS[condition](agent, st, input);
        if (held === null) continue;
        out.push({
          rule: rule.name,
          agent: agent.name,
          condition,
          sinceMs: held.sinceMs,
          afterMs: afterMsOf(rule, condition),
          state: st.state?.state ?? null,
          detail: held.detail,
        });
      }
    }
  }
  return out;
}

/**
 * For `fleet ps`: each agent busy with no progress in its record for at least its wedged threshold (the smallest
 * `after` of the rules alerting on `wedged` for it, else the default), and for how many seconds, by name.
 */
export function wedgedAgents(
  desired: DesiredFleet,
  observed: Observed,
  statuses: readonly AgentStatus[],
): Record<string, number> {
  const out: Record<string, number> = {};
  const rules = (desired.alerts ?? []).filter((r) => r.when.includes('wedged'));
  for (const agent of desired.agents) {
    const st = statuses.find((s) => s.agent === agent.name);
    if (st === undefined || !st.local || !st.wanted) continue;
    const held = CHECKS.wedged(agent, st, { desired, observed });
    if (held === null || held.sinceMs === null) continue;
    const afters = rules.filter((r) => ruleCovers(r, agent.name)).map((r) => afterMsOf(r, 'wedged'));
    const afterMs = afters.length > 0 ? Math.min(...afters) : DEFAULT_AFTER_SECONDS.wedged * 1000;
    const forMs = observed.nowMs - held.sinceMs;
    if (forMs >= afterMs) out[agent.name] = Math.floor(forMs / 1000);
  }
  return out;
}
