/**
 * Content rules for `workspace` (docs/workspaces.md): its paths are absolute, its branch is a name git accepts,
 * it is not given together with `working_directory`, and no two agents share a branch of one repository or a
 * worktree path. Pure; the problems go to the caller's collector like every other semantic check.
 */
import { posix } from 'node:path';
import type { SourceRef } from '../model/desired.js';
import type { PathSegment } from './parse.js';
import { checkPlain, checkWorkingDirectory, fmtRef, isRec, type Collector } from './semantic-checks.js';
import type { RawWorkspace } from './types.js';
import { defaultBranch, defaultWorktreePath, mergedWorkspace } from './workspace.js';

/** Where each repository's branch and each worktree path is claimed, across every file. */
export class WorkspaceSites {
  readonly branches = new Map<string, { agent: string; ref: SourceRef }>();
  readonly paths = new Map<string, { agent: string; ref: SourceRef }>();
}

/**
 * Why git would refuse `name` as a branch (`git check-ref-format --branch`), in words; undefined when it would
 * not. The rules of git-check-ref-format(1), plus the ones `--branch` adds (not `-` first, not `HEAD`).
 */
export function branchNameProblem(name: string): string | undefined {
  if (name === '@' || name === 'HEAD') return `is reserved by git`;
  if (name.startsWith('-')) return 'must not start with "-"';
  if (name.startsWith('/') || name.endsWith('/')) return 'must not start or end with "/"';
  if (name.includes('//')) return 'must not contain "//"';
  if (name.includes('..')) return 'must not contain ".."';
  if (name.includes('@{')) return 'must not contain "@{"';
  if (name.endsWith('.')) return 'must not end with "."';
  // eslint-disable-next-line no-control-regex -- git refuses control characters in ref names
  const bad = /[\u0000-\u0020\u007f~^:?*[\\]/.exec(name)?.[0];
  if (bad !== undefined) return bad === ' ' ? 'contains a space' : `contains ${JSON.stringify(bad)}`;
  for (const part of name.split('/')) {
    if (part.startsWith('.')) return `has a part starting with "." (${JSON.stringify(part)})`;
    if (part.endsWith('.lock')) return `has a part ending with ".lock" (${JSON.stringify(part)})`;
  }
  return undefined;
}

/** A path as written, normalized for comparison (`~` is the same home for every file of a fleet). */
function norm(path: string): string {
  const n = posix.normalize(path);
  return n.length > 1 && n.endsWith('/') ? n.slice(0, -1) : n;
}

function checkFields(c: Collector, ws: unknown, at: PathSegment[]): void {
  if (!isRec(ws)) return;
  for (const key of ['repo', 'path']) {
    if (typeof ws[key] === 'string') checkWorkingDirectory(c, ws[key], [...at, key]);
  }
  if (typeof ws.branch === 'string' && checkPlain(c, ws.branch, [...at, 'branch'])) {
    const problem = branchNameProblem(ws.branch);
    if (problem !== undefined)
      c.at([...at, 'branch'], `workspace branch ${JSON.stringify(ws.branch)} ${problem}: git refuses it`);
  }
  if (typeof ws.base === 'string' && checkPlain(c, ws.base, [...at, 'base']) && ws.base.startsWith('-')) {
    c.at([...at, 'base'], `workspace base ${JSON.stringify(ws.base)} must not start with "-"`);
  }
}

/** Every workspace rule for one file; cross-file claims (branches, paths) are kept in `sites`. */
export function checkWorkspaces(c: Collector, data: Record<string, unknown>, sites: WorkspaceSites): void {
  const defaults = isRec(data.defaults) ? data.defaults : undefined;
  const defaultWs = defaults?.workspace;
  if (defaultWs !== undefined) checkFields(c, defaultWs, ['defaults', 'workspace']);
  if (defaults !== undefined && isRec(defaultWs) && defaults.working_directory !== undefined) {
    c.at(
      ['defaults', 'workspace'],
      `defaults sets both workspace and working_directory (at ${fmtRef(c.ref(['defaults', 'working_directory'], 'key'))}); a workspace's worktree is the working directory: keep one`,
      'key',
    );
  }
  if (!Array.isArray(data.agents)) return;
  data.agents.forEach((agent: unknown, index) => {
    if (!isRec(agent) || typeof agent.name !== 'string') return;
    const at: PathSegment[] = ['agents', index, 'workspace'];
    checkFields(c, agent.workspace, at);
    if (agent.workspace !== undefined && agent.workspace !== null && !isRec(agent.workspace)) return;
    const merged = mergedWorkspace(isRec(defaultWs) ? defaultWs : undefined, agent.workspace);
    if (merged === null) return;
    const own = 'workspace' in agent;
    const where = own ? at : ['defaults', 'workspace'];
    if (agent.working_directory !== undefined) {
      const wd = fmtRef(c.ref(['agents', index, 'working_directory'], 'key'));
      c.at(
        own ? at : ['agents', index, 'working_directory'],
        own
          ? `agent "${agent.name}" sets both workspace and working_directory (at ${wd}); its worktree is its working directory: keep one`
          : `agent "${agent.name}" sets working_directory, but defaults.workspace gives it a worktree; keep one (workspace: null opts out)`,
        'key',
      );
      return;
    }
    if (typeof merged.repo !== 'string') {
      c.at(where, `agent "${agent.name}" has a workspace without a repo (set workspace.repo)`, 'key');
      return;
    }
    claim(c, agent.name, merged, own ? at : ['agents', index, 'name'], sites);
  });
}

/** Two agents on one branch of one repository, or on one worktree path, would trample each other. */
function claim(
  c: Collector,
  agent: string,
  ws: RawWorkspace,
  at: PathSegment[],
  sites: WorkspaceSites,
): void {
  const repo = norm(ws.repo ?? '');
  const branch = ws.branch ?? defaultBranch(agent);
  const path = norm(ws.path ?? defaultWorktreePath(repo, agent));
  const ref = c.ref(at, 'key');
  const branchKey = `${repo}\u0000${branch}`;
  const seenBranch = sites.branches.get(branchKey);
  if (seenBranch !== undefined && seenBranch.agent !== agent) {
    c.at(
      at,
      `agent "${agent}" uses branch ${JSON.stringify(branch)} of ${repo}, as does agent "${seenBranch.agent}" (at ${fmtRef(seenBranch.ref)}); each agent needs its own branch`,
      'key',
    );
  } else sites.branches.set(branchKey, { agent, ref });
  const seenPath = sites.paths.get(path);
  if (seenPath !== undefined && seenPath.agent !== agent) {
    c.at(
      at,
      `agent "${agent}" has worktree path ${path}, as does agent "${seenPath.agent}" (at ${fmtRef(seenPath.ref)}); each agent needs its own worktree`,
      'key',
    );
  } else sites.paths.set(path, { agent, ref });
  if (path === repo || path.startsWith(`${repo}/`)) {
    c.at(at, `agent "${agent}" has worktree path ${path} inside its repository ${repo}`, 'key');
  }
}
