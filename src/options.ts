/**
 * The typed options each command receives from src/cli.ts. Their own module so the commands and the engine take
 * them without importing the CLI that builds them (cli.ts imports every command: importing it back made a circle).
 */
import type { PathFlags } from './paths.js';

export type GlobalOptions = PathFlags;

export interface ReconcileOptions extends GlobalOptions {
  dryRun: boolean;
  prune: boolean;
  detailedExitcode: boolean;
  json: boolean;
  watch: boolean;
  interval?: string | undefined;
  /** End running agents the plan names without asking (in a terminal, reconcile asks first). */
  yes?: boolean;
  /** Every file diff in full. */
  diff?: boolean;
  /** With --dry-run: only these agents' actions. */
  agent?: string[];
}
