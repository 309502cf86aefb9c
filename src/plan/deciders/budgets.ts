/**
 * Budgets (docs/spend.md, "Budgets"): decided first, producing the desired fleet the other deciders read.
 * Over a budget, by its `on_exceed`:
 *   - warn: a plan warning with the figures; nothing else changes;
 *   - downgrade: the agent's model becomes the budget's `fallback_model` in the effective desired fleet, so its
 *     env file changes and the agents decider restarts it by its restart policy (when-idle: never mid-turn);
 *   - pause: the agent is stopped at its next idle boundary (never while busy or waiting), and kept out of the
 *     agents that should run until the window has room; then it is started again and resumes.
 * Nothing is remembered: every run judges the window afresh, so a window with room undoes each step.
 */
import type { DesiredAgent, DesiredFleet } from '../../model/desired.js';
import type { Action } from '../../model/plan.js';
import { agentUnitName } from '../../base/names.js';
import { agentStatus } from '../health.js';
import { isLocalAgent } from '../../model/desired.js';
import { judgeBudgets, overText, worstOver, type BudgetJudgment } from './budget-judge.js';
import { unitAction, unitActive, type PlanInput, type Scope } from './input.js';
import { DEFAULT_RESTART, idleWait } from './restart-policy.js';

export interface BudgetsDecision {
  /** The fleet the other deciders plan for: downgraded agents carry their fallback model. */
  desired: DesiredFleet;
  /** Agents kept from running by a pause (stopped now, or already stopped). */
  paused: ReadonlySet<string>;
  /** Stops of paused agents at their idle boundary. */
  actions: Action[];
  warnings: string[];
  /** Why each downgraded agent runs another model: appended to its restart's reason. */
  downgraded: Record<string, string>;
  /** A paused agent's window has room again: appended to its start's reason. */
  resumed: Record<string, string>;
}

export function decideBudgets(
  input: PlanInput,
  judged = judgeBudgets(input.desired, input.observed),
): BudgetsDecision {
  const { desired, observed } = input;
  const d: BudgetsDecision = {
    desired,
    paused: new Set(),
    actions: [],
    warnings: [],
    downgraded: {},
    resumed: {},
  };
  const paused = new Set<string>();
  const agents = desired.agents.map((agent) => {
    const over = worstOver(judged[agent.name]);
    if (over === null) {
      const pausing = judged[agent.name]?.find((j) => j.budget.onExceed === 'pause');
      if (pausing !== undefined) d.resumed[agent.name] = `budget has room: ${pausing.figures}`;
      return agent;
    }
    const text = overText(over, observed.nowMs);
    switch (over.budget.onExceed) {
      case 'warn':
        d.warnings.push(`${agent.name}: OVER-BUDGET: ${text}`);
        return agent;
      case 'downgrade':
        return downgrade(agent, over, text, d);
      case 'pause':
        if (pause(input, agent, text, d)) paused.add(agent.name);
        return agent;
      default: {
        const never: never = over.budget.onExceed;
        return never;
      }
    }
  });
  return { ...d, desired: { ...desired, agents }, paused };
}

function downgrade(
  agent: DesiredAgent,
  over: BudgetJudgment,
  text: string,
  d: BudgetsDecision,
): DesiredAgent {
  const model = over.budget.fallbackModel;
  if (model === null || model === agent.modelHint) {
    d.warnings.push(`${agent.name}: OVER-BUDGET: ${text}${model === null ? '' : `; runs ${model}`}`);
    return agent;
  }
  const why = `budget: ${text}: downgraded from ${agent.modelHint ?? 'its default model'} to ${model}`;
  d.warnings.push(`${agent.name}: OVER-BUDGET: ${text}; downgraded to ${model}`);
  d.downgraded[agent.name] = why;
  return { ...agent, modelHint: model };
}

/**
 * A paused agent: stopped now when idle (its unit's stop ends the session by the runtime's own exit keys), left
 * running while busy or waiting (it is stopped at the next idle boundary). True when it is kept from running.
 */
function pause(input: PlanInput, agent: DesiredAgent, text: string, d: BudgetsDecision): boolean {
  const { desired, observed } = input;
  const reason = `paused: ${text}`;
  if (!agent.enabled || !isLocal(input, agent)) return false;
  const unit = agentUnitName(agent.name);
  if (!unitActive(observed, unit)) {
    d.warnings.push(`${agent.name}: ${reason}`);
    return true;
  }
  const status = agentStatus(agent, observed, desired.runtimes[agent.runtime]);
  const live = status.sessionExists === true && !status.paneDead;
  const settle = (desired.reconcile.restart ?? DEFAULT_RESTART).settleSeconds;
  const wait = live ? idleWait(status, settle, 'stops') : null;
  if (wait !== null) {
    d.warnings.push(`${agent.name}: OVER-BUDGET: ${text}; pauses at its next idle moment (${wait})`);
    return false;
  }
  d.actions.push({ ...unitAction('stop', unit, agent.name, reason), ...(live ? { disruptive: true } : {}) });
  d.warnings.push(`${agent.name}: ${reason}`);
  return true;
}

function isLocal(input: PlanInput, agent: DesiredAgent): boolean {
  return isLocalAgent(agent, input.observed.hostname);
}

/** The scope with paused agents out of the agents that should run (so nothing starts or restarts them). */
export function withoutPaused(scope: Scope, paused: ReadonlySet<string>): Scope {
  return paused.size === 0 ? scope : { ...scope, wanted: scope.wanted.filter((a) => !paused.has(a.name)) };
}

/** A downgraded agent's restart and a resumed one's start say why (in the plan and the journal: `fleet history`). */
export function explainBudgets(actions: readonly Action[], d: BudgetsDecision): Action[] {
  const note = (a: Action): string | undefined => {
    if ((a.kind !== 'restart' && a.kind !== 'start') || a.agent === null) return undefined;
    const notes = a.kind === 'restart' ? d.downgraded : d.resumed;
    return Object.hasOwn(notes, a.agent) ? notes[a.agent] : undefined;
  };
  return actions.map((a) => {
    const n = note(a);
    return n === undefined ? a : { ...a, reason: `${a.reason}; ${n}` };
  });
}
