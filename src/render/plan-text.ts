/**
 * Plan -> text for people: a marker per action, a unified diff under every file it would write, a one-line reason
 * for everything else, orphans, skipped agents, warnings, and a summary line.
 */
import { createTwoFilesPatch } from 'diff';
import { assertNever } from '../errors.js';
import type { Action, Plan } from '../model/plan.js';

export interface TextStyle {
  color: boolean;
  /**
   * Every file's unified diff in full. Without it (the default), framework and unit files and new env files are
   * one line each (what and how many lines), and runs of the same action on many agents are one line naming them
   * all: a fresh fleet's plan stays readable at any size. Env file updates always show their diff.
   */
  diff?: boolean;
}

const codes = { red: 31, green: 32, yellow: 33, cyan: 36, bold: 1, dim: 2 } as const;
type Code = keyof typeof codes;

function paint(style: TextStyle, code: Code, text: string): string {
  return style.color ? `\u001b[${codes[code]}m${text}\u001b[0m` : text;
}

/** The marker for an action: `+` create, `~` change, `-` remove, `>` start, `@` respawn. */
export function marker(a: Action): { sign: string; code: Code } {
  // Ending a running agent's session is the most destructive thing a plan does: its own sign, in red.
  if (isDisruptive(a)) return { sign: '!', code: 'red' };
  switch (a.kind) {
    case 'write-file':
      return a.before === null ? { sign: '+', code: 'green' } : { sign: '~', code: 'yellow' };
    case 'enable':
      return { sign: '+', code: 'green' };
    case 'start':
      return { sign: '>', code: 'green' };
    case 'restart':
    case 'daemon-reload':
      return { sign: '~', code: 'yellow' };
    case 'respawn':
      return { sign: '@', code: 'cyan' };
    case 'stop':
    case 'disable':
    case 'kill-session':
    case 'archive-file':
    case 'worktree-remove':
      return { sign: '-', code: 'red' };
    case 'worktree-add':
      return { sign: '+', code: 'green' };
    case 'worktree-lock':
    case 'worktree-move':
      return { sign: '~', code: 'yellow' };
    default:
      return assertNever(a, 'action');
  }
}

/** What an action acts on, as one short string (also used in JSON and the journal). */
export function actionTarget(a: Action): string {
  switch (a.kind) {
    case 'write-file':
    case 'archive-file':
      return a.path;
    case 'daemon-reload':
      return 'systemd --user';
    case 'enable':
    case 'disable':
    case 'start':
    case 'restart':
    case 'stop':
      return a.unit;
    case 'respawn':
    case 'kill-session':
      return `${a.socketName === '' ? '(default socket)' : a.socketName}:${a.session}`;
    case 'worktree-add':
    case 'worktree-lock':
    case 'worktree-move':
    case 'worktree-remove':
      return a.path;
    default:
      return assertNever(a, 'action');
  }
}

export function actionVerb(a: Action): string {
  if (a.kind === 'write-file') return a.before === null ? 'create' : 'update';
  if (a.kind === 'archive-file') return 'archive';
  if (a.kind === 'kill-session') return 'kill session';
  if (a.kind.startsWith('worktree-')) return a.kind.replace('-', ' ');
  return a.kind;
}

export function fileDiff(path: string, before: string | null, after: string | null): string {
  const patch = createTwoFilesPatch(
    before === null ? '/dev/null' : `a${path}`,
    after === null ? '/dev/null' : `b${path}`,
    before ?? '',
    after ?? '',
    undefined,
    undefined,
    { context: 3 },
  );
  // Drop the "Index:/====" preamble; keep ---/+++ and hunks.
  return patch
    .split('\n')
    .filter((l, i) => !(i < 2 && (l.startsWith('Index:') || l.startsWith('===='))))
    .join('\n')
    .trimEnd();
}

function colorDiff(style: TextStyle, diff: string): string {
  return diff
    .split('\n')
    .map((l) => {
      if (l.startsWith('+++') || l.startsWith('---')) return paint(style, 'bold', l);
      if (l.startsWith('+')) return paint(style, 'green', l);
      if (l.startsWith('-')) return paint(style, 'red', l);
      if (l.startsWith('@@')) return paint(style, 'cyan', l);
      return l;
    })
    .join('\n');
}

/** The running agents a plan ends (restarts or stops), apart from every other action. */
export function disruptiveActions(plan: Plan): Action[] {
  return plan.actions.filter(isDisruptive);
}

/** An action that ends something running in an agent's pane. */
export function isDisruptive(a: Action): boolean {
  return (
    (a.kind === 'restart' || a.kind === 'stop' || a.kind === 'kill-session' || a.kind === 'respawn') &&
    a.disruptive === true
  );
}

/** "2 running agents will be restarted, 1 stopped; 3 restarts deferred until idle" (null when neither). */
export function disruptionLine(plan: Plan): string | null {
  const ends = disruptiveActions(plan);
  const restarts = ends.filter((a) => a.kind === 'restart' || a.kind === 'respawn').length;
  const stops = ends.filter((a) => a.kind === 'stop').length;
  const parts: string[] = [];
  if (restarts > 0) parts.push(`${restarts} running agent${restarts === 1 ? '' : 's'} will be restarted`);
  if (stops > 0) parts.push(`${stops} running agent${stops === 1 ? '' : 's'} will be stopped`);
  const d = plan.deferredRestarts.length;
  if (d > 0) parts.push(`${d} restart${d === 1 ? '' : 's'} deferred`);
  return parts.length === 0 ? null : `${parts.join(', ')}.`;
}

export function summaryLine(plan: Plan): string {
  const s = plan.summary;
  if (
    plan.actions.length === 0 &&
    (plan.deferred.length > 0 || plan.held.length > 0 || plan.deferredRestarts.length > 0)
  ) {
    const parts = [
      plan.deferred.length > 0 ? `${plan.deferred.length} respawn(s) deferred by back-off` : null,
      plan.held.length > 0 ? `${plan.held.length} held back (see the warnings)` : null,
      plan.deferredRestarts.length > 0
        ? `${plan.deferredRestarts.length} restart(s) of running agents deferred`
        : null,
    ].filter((x) => x !== null);
    return `No changes to apply now; ${parts.join(', ')}.`;
  }
  if (plan.actions.length === 0) return 'No changes. The fleet matches the manifests.';
  return `Plan: ${s.add} to add, ${s.change} to change, ${s.remove} to remove, ${s.other} unit/session ${s.other === 1 ? 'action' : 'actions'}.`;
}

/** "+3 -1 lines" for a file change; "12 lines" for a new file. */
function lineCount(before: string | null, after: string): string {
  const count = (t: string) => (t === '' ? 0 : t.replace(/\n$/, '').split('\n').length);
  if (before === null) return `${count(after)} lines`;
  let added = 0;
  let removed = 0;
  for (const l of fileDiff('/x', before, after).split('\n')) {
    if (l.startsWith('+') && !l.startsWith('+++')) added++;
    else if (l.startsWith('-') && !l.startsWith('---')) removed++;
  }
  return `+${added} -${removed} lines`;
}

/** Whether a file action shows its diff: env updates always, the rest only with --diff. */
function showsDiff(a: Action, style: TextStyle): boolean {
  if (a.kind !== 'write-file' || a.before === a.after) return false;
  return style.diff === true || (a.role === 'env' && a.before !== null);
}

/** Actions that many agents share and read as one line: the same kind and reason, each for one agent. */
function groupKey(a: Action): string | null {
  if (a.kind === 'write-file') return a.role === 'env' && a.before === null ? `create-env|${a.reason}` : null;
  if (a.kind === 'enable' || a.kind === 'start' || a.kind === 'disable') {
    return a.agent !== null ? `${a.kind}|${a.reason}` : null;
  }
  return null;
}

function wrapNames(names: readonly string[], width = 100): string[] {
  const lines: string[] = [];
  let line = '';
  for (const n of names) {
    const next = line === '' ? n : `${line}, ${n}`;
    if (next.length > width && line !== '') {
      lines.push(`${line},`);
      line = n;
    } else line = next;
  }
  if (line !== '') lines.push(line);
  return lines;
}

/** The opening line: how many agents the plan touches, and how. */
function affectedLine(plan: Plan): string | null {
  const agents = new Set<string>();
  for (const a of plan.actions) if ('agent' in a && a.agent !== null) agents.add(a.agent);
  for (const d of plan.deferredRestarts) agents.add(d.agent);
  for (const h of plan.held) agents.add(h.agent);
  if (agents.size === 0) return null;
  const ends = disruptiveActions(plan).length;
  const parts = [
    `${agents.size} agent${agents.size === 1 ? '' : 's'} affected`,
    ends > 0 ? `${ends} running agent${ends === 1 ? '' : 's'} ended now` : null,
    plan.deferredRestarts.length > 0 ? `${plan.deferredRestarts.length} restart(s) deferred` : null,
    plan.held.length > 0 ? `${plan.held.length} held back` : null,
  ].filter((x) => x !== null);
  return `${parts.join('; ')}.`;
}

export function renderPlanText(plan: Plan, style: TextStyle = { color: false }): string {
  const out: string[] = [];
  const affected = affectedLine(plan);
  if (affected !== null && plan.actions.length + plan.deferredRestarts.length + plan.held.length > 3) {
    out.push(paint(style, 'bold', affected), '');
  }
  pushEndsAndDeferredRestarts(out, plan, style);
  pushActions(out, plan, style);
  pushLeftAlone(out, plan, style);
  if (out.length > 0) out.push('');
  out.push(paint(style, 'bold', summaryLine(plan)));
  const disruption = disruptionLine(plan);
  if (disruption !== null) out.push(paint(style, 'bold', disruption));
  return `${out.join('\n')}\n`;
}

/** The running agents this plan ends, each with why, and the restarts it leaves for later. */
function pushEndsAndDeferredRestarts(out: string[], plan: Plan, style: TextStyle): void {
  // What matters first: the running agents this plan ends, each with why, and the ones it leaves for later.
  const ends = disruptiveActions(plan);
  if (ends.length > 0) {
    out.push(
      paint(
        style,
        'red',
        `Running agents this plan ends (${ends.length}; their conversations resume where the runtime can):`,
      ),
    );
    for (const a of ends) {
      if (a.kind === 'restart' || a.kind === 'stop')
        out.push(`  ${a.agent ?? a.unit}: ${a.kind} now: ${a.reason}`);
    }
    out.push('');
  }
  if (plan.deferredRestarts.length > 0) {
    out.push(
      'Restarts deferred (the session keeps running; a later reconcile, the timer or watch mode does them):',
    );
    for (const d of plan.deferredRestarts) {
      out.push(
        `  ${d.agent}: ${d.need}; not now: ${d.reason} (pending since ${new Date(d.sinceMs).toISOString()})`,
      );
    }
    out.push('');
  }
}

/** Every action in order, runs of three or more alike (env files, units) folded into one line. */
function pushActions(out: string[], plan: Plan, style: TextStyle): void {
  for (let i = 0; i < plan.actions.length; i++) {
    const a = plan.actions[i];
    const m = marker(a);
    const key = style.diff === true ? null : groupKey(a);
    if (key !== null) {
      let j = i;
      while (j + 1 < plan.actions.length && groupKey(plan.actions[j + 1]) === key) j++;
      if (j - i >= 2) {
        const group = plan.actions.slice(i, j + 1);
        const names = group.map((x) => ('agent' in x && x.agent !== null ? x.agent : actionTarget(x)));
        const what = a.kind === 'write-file' ? `${group.length} env files` : `${group.length} agent units`;
        out.push(
          `${paint(style, m.code, m.sign)} ${actionVerb(a)} ${paint(style, 'bold', what)}  ${paint(style, 'dim', `# ${a.reason}`)}`,
        );
        for (const l of wrapNames(names)) out.push(indent(l));
        i = j;
        continue;
      }
    }
    const head = `${paint(style, m.code, m.sign)} ${actionVerb(a)} ${paint(style, 'bold', actionTarget(a))}`;
    const extra = a.kind === 'write-file' && a.backup ? ' (the current file is backed up first)' : '';
    const size =
      a.kind === 'write-file' && a.before !== a.after && !showsDiff(a, style)
        ? ` (${lineCount(a.before, a.after)}; --diff shows it)`
        : '';
    out.push(`${head}  ${paint(style, 'dim', `# ${a.reason}${extra}${size}`)}`);
    if (a.kind === 'write-file') {
      if (!showsDiff(a, style)) continue;
      out.push(indent(colorDiff(style, fileDiff(a.path, a.before, a.after))));
    } else if (a.kind === 'archive-file' || a.kind === 'worktree-move') {
      out.push(indent(`moved to ${a.to}`));
    }
  }
}

/** What the plan does not touch: orphans, other hosts' agents, back-off, held starts, warnings. */
function pushLeftAlone(out: string[], plan: Plan, style: TextStyle): void {
  if (plan.orphans.length > 0) {
    out.push('');
    out.push('Orphans (no manifest names them; left running; `--prune` stops, disables and archives them):');
    for (const o of plan.orphans) {
      const parts = [
        o.unit ? `unit ${o.unit}` : null,
        o.session !== null
          ? `session ${o.socketName === '' ? '(default socket)' : o.socketName}:${o.session}`
          : null,
        o.envFile ? `env ${o.envFile}` : null,
      ].filter((x) => x !== null);
      out.push(`  ${o.agent}: ${parts.join(', ')}`);
    }
  }
  if (plan.skipped.length > 0) {
    out.push('');
    out.push('Skipped (another host):');
    for (const s of plan.skipped) out.push(`  ${s.agent}: ${s.reason}`);
  }
  if (plan.deferred.length > 0) {
    out.push('');
    out.push('Deferred by crash-loop back-off (not converged; retried when the gap has passed):');
    for (const d of plan.deferred) {
      out.push(
        `  ${d.agent}: ${d.reason}; ${d.attempts} attempt(s) so far, next at ${new Date(d.nextAttemptMs).toISOString()}`,
      );
    }
  }
  if (plan.held.length > 0) {
    out.push('');
    out.push(
      'Held back (the new start is known to fail; a running session is kept; done once the cause is gone):',
    );
    for (const h of plan.held) out.push(`  ${h.agent}: ${h.action} (${h.need}): ${h.reason}`);
  }
  for (const w of plan.warnings) {
    out.push('');
    out.push(`${paint(style, 'yellow', 'Warning:')} ${w}`);
  }
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((l) => `    ${l}`)
    .join('\n');
}
