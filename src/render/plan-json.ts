/**
 * Plan -> one JSON document (documented in docs/plan-format.md). snake_case keys; `format_version` first.
 */
import type { Plan } from '../model/plan.js';
import { actionTarget, fileDiff, isDisruptive } from './plan-text.js';
import { workspaceFields } from './plan-workspace.js';

export function planToJson(plan: Plan, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    format_version: plan.formatVersion,
    ...extra,
    observed_digest: plan.observedDigest,
    summary: plan.summary,
    changes_pending:
      plan.actions.length > 0 ||
      plan.deferred.length > 0 ||
      plan.held.length > 0 ||
      plan.deferredRestarts.length > 0,
    actions: plan.actions.map((a) => ({
      kind: a.kind,
      target: actionTarget(a),
      reason: a.reason,
      ...('agent' in a && a.agent !== null ? { agent: a.agent } : {}),
      ...(isDisruptive(a) ? { disruptive: true } : {}),
      ...(a.kind === 'write-file'
        ? {
            role: a.role,
            create: a.before === null,
            mode: `0${a.mode.toString(8)}`,
            backup: a.backup,
            diff: a.before === a.after ? '' : fileDiff(a.path, a.before, a.after),
          }
        : {}),
      ...(a.kind === 'archive-file' ? { to: a.to } : {}),
      ...workspaceFields(a),
    })),
    orphans: plan.orphans.map((o) => ({
      agent: o.agent,
      unit: o.unit,
      session: o.session,
      socket_name: o.socketName,
      env_file: o.envFile,
    })),
    skipped: plan.skipped,
    deferred: plan.deferred.map((d) => ({
      agent: d.agent,
      reason: d.reason,
      attempts: d.attempts,
      next_attempt_at: new Date(d.nextAttemptMs).toISOString(),
    })),
    held: plan.held,
    deferred_restarts: plan.deferredRestarts.map((d) => ({
      agent: d.agent,
      need: d.need,
      reason: d.reason,
      since: new Date(d.sinceMs).toISOString(),
    })),
    warnings: plan.warnings,
    patch: plan.patch,
  };
}
