/**
 * The runtime's own report of what an agent is doing (its STATE), as judged from the heartbeat (src/plan/
 * agent-state.ts). Types only: the planner judges it, the runtimes' ready signals read it, `ps` shows it.
 */

/**
 * What the runtime itself last said it was doing (docs/runtimes.md), from the heartbeat its hooks or extension
 * wrote: starting (launched, no event yet), busy (a turn in progress), idle (waiting for a prompt), waiting (for a
 * permission answer), exited (it said it quit), unknown (the signal is stale, malformed, or from a previous run).
 */
export type AgentState = 'starting' | 'busy' | 'idle' | 'waiting' | 'exited' | 'unknown';

export interface StateStatus {
  state: AgentState;
  /** Seconds in this state; null when unknown. */
  forSeconds: number | null;
  /** The runtime's event that set it (`UserPromptSubmit`, `agent_end`, ...). */
  event: string | null;
  /** The runtime's own conversation id, as it reported it. */
  session: string | null;
}
