/**
 * Framework files: the scripts the units run and the roster schema, copied from the package's framework/
 * directory into the Mosaic home. Pure: src/assets.ts reads the package, src/apply writes the results.
 *
 * Only a fixed set of paths may be installed (scripts, runtime integration files, the schema). The seed's worst bug was an update that replaced the operator's
 * roster and wiped fleet/agents and fleet/run; refusing anything outside tools/fleet/*.sh and the schema makes
 * that impossible from here, whatever lands in the package's framework/ directory.
 */
import { InternalError } from '../errors.js';
import type { RenderContext, RenderedFile } from './units.js';

export interface FrameworkFile {
  /** Path relative to the package's framework/ directory, which mirrors the Mosaic home: `tools/fleet/x.sh`. */
  relPath: string;
  content: string;
}

export interface FrameworkAssets {
  files: readonly FrameworkFile[];
}

const SCRIPT = /^tools\/fleet\/[A-Za-z0-9][A-Za-z0-9._-]*\.sh$/;
/** Runtime integration files the scripts and runtimes read: Claude Code settings, the pi extension. */
const INTEGRATION = /^tools\/fleet\/[A-Za-z0-9][A-Za-z0-9._-]*\.(json|ts|js)$/;
export const ROSTER_SCHEMA_PATH = 'fleet/roster.schema.json';

/** Whether a framework/ path is one the reconciler installs (scripts and the schema, nothing else). */
export function isInstallableFrameworkPath(relPath: string): boolean {
  return SCRIPT.test(relPath) || INTEGRATION.test(relPath) || relPath === ROSTER_SCHEMA_PATH;
}

/** Scripts 0755, the schema 0644, at `<mosaicHome>/<relPath>`, sorted by path. */
export function renderFrameworkFiles(assets: FrameworkAssets, ctx: RenderContext): RenderedFile[] {
  const files: RenderedFile[] = [];
  const seen = new Set<string>();
  for (const file of assets.files) {
    if (!isInstallableFrameworkPath(file.relPath)) {
      throw new InternalError(`framework file ${file.relPath} is not one the reconciler may install`);
    }
    if (seen.has(file.relPath)) throw new InternalError(`framework file ${file.relPath} listed twice`);
    seen.add(file.relPath);
    const script = SCRIPT.test(file.relPath);
    const inTools = script || INTEGRATION.test(file.relPath);
    // Scripts and integration files live in toolsDir (which the units name); the schema sits next to the manifests.
    const path = inTools
      ? `${ctx.toolsDir}/${file.relPath.slice('tools/fleet/'.length)}`
      : `${ctx.mosaicHome}/${file.relPath}`;
    const content = file.content.endsWith('\n') || file.content === '' ? file.content : `${file.content}\n`;
    files.push({ path, content, mode: script ? 0o755 : 0o644, role: 'framework' });
  }
  return files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}
