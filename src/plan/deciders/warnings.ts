/**
 * Warnings: what the operator must know that no action fixes. Sessions the fleet cannot prove are its own,
 * starts known to fail (said before they fail), and linger off (user units stop at logout: told, never changed).
 */
import type { BlockedStart } from './start-check.js';
import type { PlanInput, Scope } from './input.js';

export interface WarningsBasis {
  /** Sessions left alone by the removals. */
  leftAlone: readonly string[];
  /** Starts held as known to fail, in the order they were held. */
  blocked: readonly BlockedStart[];
  /** Whether the plan has anything to do. */
  acting: boolean;
  /** Working directories the plan makes (the agents' worktrees). */
  madeDirs: ReadonlySet<string>;
}

export function decideWarnings(input: PlanInput, scope: Scope, basis: WarningsBasis): string[] {
  const { observed } = input;
  const warnings: string[] = [...basis.leftAlone];
  for (const agent of scope.wanted) {
    // The session script refuses to guess a directory; say why the start will fail before it does.
    if (observed.dirs?.[agent.workingDirectory] === false && !basis.madeDirs.has(agent.workingDirectory)) {
      warnings.push(
        `${agent.name}: working directory ${agent.workingDirectory} does not exist; its session cannot start until it does`,
      );
    }
  }
  for (const [program, names] of missingPrograms(basis)) {
    warnings.push(
      `runtime program '${program}' is not on the user manager's PATH (${observed.managerPath ?? '?'}): ` +
        `${names.join(', ')} not started or restarted until it is (install it, or set the manager's PATH with ` +
        '`systemctl --user set-environment PATH=...`)',
    );
  }
  // Said when there is something to do, not on every quiet run of the timer.
  if (observed.systemd.linger === false && scope.wanted.length > 0 && basis.acting) {
    warnings.push(
      'linger is off for this user: user units stop at logout (enable it with `loginctl enable-linger`)',
    );
  }
  return warnings;
}

/** Each missing runtime program and the agents held for it, in the order first held. */
function missingPrograms(basis: WarningsBasis): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const { agent, block } of basis.blocked) {
    if (block.cause !== 'program') continue;
    const list = out.get(block.program) ?? [];
    if (!list.includes(agent)) list.push(agent);
    out.set(block.program, list);
  }
  return out;
}
