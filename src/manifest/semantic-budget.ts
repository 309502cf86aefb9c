/**
 * Budget rules the schema cannot say (docs/spend.md, "Budgets"): a budget limits something (tokens or usd), a
 * `downgrade` names the model it switches to, and a fallback model is a plain word (it goes into the env file).
 * Pure; every problem is collected at the line it is on.
 */
import type { PathSegment } from './parse.js';
import { isRec, type Collector } from './semantic-checks.js';

const PLAIN_MODEL = /^[A-Za-z0-9._:/@+-]+$/;

function checkBudget(c: Collector, budget: unknown, path: PathSegment[], what: string): void {
  if (!isRec(budget)) return;
  if (budget.tokens === undefined && budget.usd === undefined)
    c.at(path, `${what} limits nothing: give tokens, usd or both`, 'key');
  const fallback = budget.fallback_model;
  if (budget.on_exceed === 'downgrade' && fallback === undefined)
    c.at(
      [...path, 'on_exceed'],
      `${what}: on_exceed: downgrade needs fallback_model (the model to switch to)`,
    );
  if (typeof fallback === 'string' && !PLAIN_MODEL.test(fallback))
    c.at(
      [...path, 'fallback_model'],
      `${what}: fallback_model ${JSON.stringify(fallback)} must be a plain model name (letters, digits and . _ : / @ + -)`,
    );
}

/** Every budget of one manifest: the defaults', each agent's and each tenant's. */
export function checkBudgets(c: Collector, data: Record<string, unknown>): void {
  if (isRec(data.defaults)) checkBudget(c, data.defaults.budget, ['defaults', 'budget'], 'defaults.budget');
  if (Array.isArray(data.agents)) {
    data.agents.forEach((agent: unknown, index) => {
      if (!isRec(agent)) return;
      const name = typeof agent.name === 'string' ? agent.name : `agents[${index}]`;
      checkBudget(c, agent.budget, ['agents', index, 'budget'], `agent ${name}'s budget`);
    });
  }
  if (isRec(data.tenant_budgets)) {
    for (const [tenant, budget] of Object.entries(data.tenant_budgets))
      checkBudget(c, budget, ['tenant_budgets', tenant], `tenant ${tenant}'s budget`);
  }
}
