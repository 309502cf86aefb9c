/**
 * `fleet ps --json`: the JSON document (format in docs/ps.md). Pure: takes the report, returns text.
 */
import type { WorkspaceStatus } from '../model/observed.js';
import { isDirty } from '../workspaces/work.js';
import type { PsReport } from './ps.js';

/** 2: agents gained `state` (the runtime's own busy / idle / waiting report). */
export const PS_FORMAT_VERSION = 2;

function workspaceJson(s: WorkspaceStatus | undefined): unknown {
  if (s === undefined) return null;
  return {
    path: s.path,
    branch: s.branch,
    present: s.present,
    dirty: isDirty(s),
    uncommitted_files: s.uncommitted,
    untracked_files: s.untracked,
    error: s.error,
  };
}

/** The JSON document (docs/ps.md). snake_case keys; times as ISO 8601 strings and unix seconds. */
export function psToJson(report: PsReport): unknown {
  return {
    format_version: PS_FORMAT_VERSION,
    generated_at: new Date(report.nowMs).toISOString(),
    host: report.host,
    tenant_id: report.tenantId,
    manifests: report.sources,
    agents: report.agents.map((s) => ({
      name: s.agent,
      tenant_id: s.tenantId,
      host: s.host,
      local: s.local,
      wanted: s.wanted,
      unit: {
        name: s.unit,
        active_state: s.unitActiveState === '' ? null : s.unitActiveState,
        sub_state: s.unitSubState === '' ? null : s.unitSubState,
        file_state: s.unitFileState,
      },
      session: {
        socket: s.socketName,
        name: s.session,
        exists: s.sessionExists,
        pane_dead: s.paneDead,
        pane_dead_status: s.paneDeadStatus,
        pane_dead_signal: s.paneDeadSignal,
        pane_pid: s.panePid,
        command: s.paneCommand,
        start_command: s.paneStartCommand,
        created: s.sessionCreated,
        idle_seconds: s.idleSeconds,
      },
      expected_program: s.expectedProgram,
      drift_reason: s.driftReason,
      state:
        s.state === null
          ? null
          : {
              value: s.state.state,
              for_seconds: s.state.forSeconds,
              event: s.state.event,
              session: s.state.session,
            },
      heartbeat: {
        age_seconds: s.heartbeat.ageSeconds,
        health: s.heartbeat.health,
        expected: s.heartbeat.expected,
      },
      backoff:
        s.backoff === null
          ? null
          : {
              attempts: s.backoff.attempts,
              last_attempt_at: new Date(s.backoff.lastAttemptMs).toISOString(),
              next_attempt_at: new Date(s.backoff.nextAttemptMs).toISOString(),
              due: s.backoff.due,
            },
      ...(report.spend === undefined
        ? {}
        : { spend: { window: report.spend.window, tokens: report.spend.tokens[s.agent] ?? 0 } }),
      flags: s.flags,
      ...(report.workspaces !== undefined ? { workspace: workspaceJson(report.workspaces[s.agent]) } : {}),
      wedged_seconds: report.wedged?.[s.agent] ?? null,
      ...(report.budgets !== undefined ? { budget: report.budgets[s.agent] ?? null } : {}),
    })),
    unmanaged: report.unmanaged.map((u) => ({ socket: u.socketName, session: u.session })),
    orphans: (report.orphans ?? []).map((o) => ({
      agent: o.agent,
      unit: o.unit,
      session: o.session,
      socket: o.socketName,
      env_file: o.envFile,
    })),
    problems: report.problems.map((p) => ({ kind: p.kind, message: p.message })),
  };
}

export function renderPsJson(report: PsReport): string {
  return `${JSON.stringify(psToJson(report), null, 2)}\n`;
}
