/**
 * Every file under a directory, by relative path: mode and bytes (base64), symlinks and (optionally) directories
 * too. Two equal snapshots mean nothing under the directory was created, removed or changed.
 */
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join, relative } from 'node:path';

export function snapshotTree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    if (!existsSync(d)) return;
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      const rel = relative(dir, p);
      if (e.isDirectory()) {
        out[`${rel}/`] = 'dir';
        walk(p);
      } else if (e.isSymbolicLink()) out[rel] = `symlink:${readlinkSync(p)}`;
      else if (e.isFile())
        out[rel] = `${lstatSync(p).mode.toString(8)}:${readFileSync(p).toString('base64')}`;
    }
  };
  walk(dir);
  return out;
}
