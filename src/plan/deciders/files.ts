/**
 * Framework and unit files: what the reconciler renders (framework scripts and schema, the holder and agent
 * units, the convergence units) against what is on disk. Also the facts later deciders need about the units:
 * which unit files change, and whether the agent template's settings (what a running agent sees) change.
 */
import type { Observed, ObservedFile } from '../../model/observed.js';
import type { FileRole, WriteFileAction } from '../../model/plan.js';
import { assertNever } from '../../errors.js';
import { renderFrameworkFiles } from '../../render/framework.js';
import { AGENT_TEMPLATE_UNIT } from '../../base/names.js';
import {
  declaredUnitDigest,
  effectiveUnitDigest,
  renderUnits,
  type RenderedFile,
} from '../../render/units.js';
import { renderConvergenceUnits } from '../../render/convergence.js';
import { sha256 } from '../digest.js';
import type { PlanInput, Scope } from './input.js';

export interface FilesDecision {
  /** Writes of framework and unit files, framework first, each group by path. */
  actions: WriteFileAction[];
  /** Paths of the unit files whose content this plan changes. */
  changedUnits: ReadonlySet<string>;
  /** The agent template's settings differ from the installed one's (comments aside). */
  templateChanged: boolean;
  /** `MOSAIC_UNIT_DIGEST` the rendered template gives an agent started now; null without one. */
  unitDigest: string | null;
}

export function decideFiles(input: PlanInput, scope: Scope): FilesDecision {
  const { observed, ctx } = input;
  const rendered = [
    ...renderFrameworkFiles(input.framework, ctx),
    ...(scope.local.length > 0 ? renderUnits(scope.localFleet, ctx, input.templates) : []),
    ...renderConvergenceUnits(input.desired, ctx, input.convergence, input.invocation),
  ];
  const actions: WriteFileAction[] = [];
  for (const file of rendered) {
    const a = fileAction(file, observed.files[file.path], observed.state.written, null);
    if (a) actions.push(a);
  }
  sortFileActions(actions);
  const changedUnits = new Set<string>();
  for (const a of actions) {
    if (a.role === 'unit' && a.before !== a.after) changedUnits.add(a.path);
  }
  // What a running agent sees of the template is its settings: a comment edit changes nothing for it.
  const templatePath = `${ctx.unitDir}/${AGENT_TEMPLATE_UNIT}`;
  const renderedTemplate = rendered.find((f) => f.path === templatePath)?.content ?? null;
  const observedTemplate = observed.files[templatePath]?.content ?? null;
  const templateChanged =
    renderedTemplate !== null &&
    observedTemplate !== null &&
    effectiveUnitDigest(observedTemplate) !== effectiveUnitDigest(renderedTemplate);
  return { actions, changedUnits, templateChanged, unitDigest: declaredUnitDigest(renderedTemplate) };
}

/**
 * One rendered file against the one on disk: null when both content and mode match, else the write with the
 * reason an operator reads. `written` is the state file's record of what the reconciler last wrote.
 */
export function fileAction(
  file: RenderedFile | { path: string; content: string; mode: number; role: 'env' },
  observedFile: ObservedFile | undefined,
  written: Observed['state']['written'],
  agent: string | null,
): WriteFileAction | null {
  const before = observedFile?.content ?? null;
  const contentSame = before === file.content;
  // Mode matters for scripts (must be executable) and env files (private); an operator's chmod is drift too.
  const modeSame = observedFile?.mode === file.mode;
  if (contentSame && modeSame) return null;
  let reason: string;
  if (before === null) reason = `${file.role} file not installed`;
  else if (contentSame)
    reason = `mode is ${(observedFile?.mode ?? 0).toString(8)}, want ${file.mode.toString(8)}`;
  else if (file.role === 'env') reason = 'managed keys differ from the manifest';
  else if (written[file.path] === undefined) reason = `${file.role} file differs from the rendered one`;
  else if (written[file.path] !== sha256(before))
    reason = `${file.role} file was edited by hand since the last reconcile`;
  else reason = `${file.role} file out of date with the manifest`;
  // Framework-owned files and units the operator changed (or that we never wrote) are copied aside once before
  // being replaced. Env files are merged, never clobbered, so they need no backup.
  const backup =
    file.role !== 'env' && before !== null && !contentSame && written[file.path] !== sha256(before);
  return {
    kind: 'write-file',
    role: file.role,
    path: file.path,
    before,
    after: file.content,
    mode: file.mode,
    backup,
    reason,
    agent,
  };
}

/** Framework files, then units, then env files; by path within each. */
export function sortFileActions(files: WriteFileAction[]): void {
  files.sort(
    (a, b) => roleOrder(a.role) - roleOrder(b.role) || (a.path < b.path ? -1 : a.path > b.path ? 1 : 0),
  );
}

function roleOrder(role: FileRole): number {
  switch (role) {
    case 'framework':
      return 0;
    case 'unit':
      return 1;
    case 'env':
      return 2;
    default:
      return assertNever(role, 'file role');
  }
}
