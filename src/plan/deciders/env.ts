/**
 * Env files: each local agent's `<home>/fleet/agents/NAME.env`, rendered from the manifest and merged with the
 * operator's own lines. Also what later deciders ask about them: each agent's file as systemd will read it.
 */
import type { WriteFileAction } from '../../model/plan.js';
import { renderEnvFileParsed } from '../../render/env.js';
import { fileAction, sortFileActions } from './files.js';
import type { PlanInput, Scope } from './input.js';

/** File modes the reconciler writes with. Env files may hold the operator's secrets. */
const ENV_MODE = 0o600;

export interface EnvDecision {
  /** Env file writes, by path. */
  actions: WriteFileAction[];
  /** Each local agent's rendered env file, parsed: the keys an agent started now gets. */
  rendered: ReadonlyMap<string, ReadonlyMap<string, string>>;
}

export function decideEnvFiles(input: PlanInput, scope: Scope): EnvDecision {
  const { desired, observed, ctx } = input;
  const actions: WriteFileAction[] = [];
  const rendered = new Map<string, ReadonlyMap<string, string>>();
  for (const agent of scope.local) {
    const path = envFilePath(ctx.mosaicHome, agent.name);
    const existing = observed.files[path];
    const { text: content, entries } = renderEnvFileParsed(
      agent,
      ctx,
      existing?.content ?? null,
      desired.runtimes,
    );
    rendered.set(agent.name, entries);
    const a = fileAction(
      { path, content, mode: ENV_MODE, role: 'env' },
      existing,
      observed.state.written,
      agent.name,
    );
    if (a) actions.push(a);
  }
  sortFileActions(actions);
  return { actions, rendered };
}

export function envFilePath(mosaicHome: string, agent: string): string {
  return `${mosaicHome}/fleet/agents/${agent}.env`;
}
