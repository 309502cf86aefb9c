/**
 * Commands and flags -> typed options. Orchestration lives in src/commands/.
 */
import { Command, Option } from 'commander';
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
}

function globals(cmd: Command): GlobalOptions {
  return cmd.optsWithGlobals<GlobalOptions>();
}

export function buildCli(): Command {
  const program = new Command('fleet')
    .description('Declarative reconciler for fleets of long-running AI agents (systemd user units + tmux).')
    .version('0.1.0')
    .exitOverride()
    .showHelpAfterError(false)
    .option('--home <dir>', 'Mosaic home (default $MOSAIC_HOME or ~/.config/mosaic)')
    .option('--manifests <path>', 'manifest file or directory (default <home>/fleet)')
    .option('--unit-dir <dir>', 'active systemd user unit directory (default $XDG_CONFIG_HOME/systemd/user)');

  program
    .command('validate')
    .description('check manifests (schema and semantics); errors as FILE:LINE:COL: message')
    .argument('[path...]', 'manifest files or directories (default: the manifests of the home)')
    .action(async (paths: string[], _opts: unknown, cmd: Command) => {
      const { validateCommand } = await import('./commands/validate.js');
      process.exitCode = await validateCommand(paths, globals(cmd));
    });

  program
    .command('ps')
    .description('what is really running, one row per agent (read-only)')
    .argument('[agent...]', 'show only these agents')
    .option('--json', 'one JSON document on stdout', false)
    .action(async (agents: string[], _opts: unknown, cmd: Command) => {
      const { psCommand } = await import('./commands/ps.js');
      const o = cmd.optsWithGlobals<GlobalOptions & { json: boolean }>();
      process.exitCode = await psCommand({ ...o, agents });
    });

  program
    .command('reconcile')
    .description('observe, plan and apply so the machine matches the manifests')
    .option('--dry-run', 'show the plan, change nothing', false)
    .option('--prune', 'stop, disable and archive agents no manifest names', false)
    .option(
      '--detailed-exitcode',
      'with --dry-run: exit 0 in sync, 2 when changes are pending, 1 on error',
      false,
    )
    .option('--json', 'machine-readable output', false)
    .option('--watch', 'keep running: reconcile on manifest edits and on an interval', false)
    .addOption(new Option('--interval <seconds>', 'watch mode resync interval').default('30'))
    .option(
      '-y, --yes',
      'end the running agents the plan names without asking (asked only in a terminal)',
      false,
    )
    .action(async (_opts: unknown, cmd: Command) => {
      const { reconcileCommand } = await import('./commands/reconcile.js');
      process.exitCode = await reconcileCommand(cmd.optsWithGlobals<ReconcileOptions>());
    });

  program
    .command('plan')
    .description('the dry-run plan; --out saves it for `fleet apply`')
    .option('--out <file>', 'save the plan as JSON')
    .option('--prune', 'include pruning of agents no manifest names', false)
    .option('--json', 'machine-readable output', false)
    .option('--detailed-exitcode', 'exit 0 in sync, 2 when changes are pending', false)
    .action(async (_opts: unknown, cmd: Command) => {
      const { planCommand } = await import('./commands/reconcile.js');
      const o = cmd.optsWithGlobals<
        GlobalOptions & { out?: string; prune: boolean; json: boolean; detailedExitcode: boolean }
      >();
      process.exitCode = await planCommand(o);
    });

  program
    .command('apply')
    .description('apply exactly a saved plan; refuses when the machine changed since it was made')
    .argument('<file>', 'plan saved by `fleet plan --out`')
    .option('--json', 'machine-readable output', false)
    .action(async (file: string, _opts: unknown, cmd: Command) => {
      const { applyCommand } = await import('./commands/reconcile.js');
      process.exitCode = await applyCommand(file, cmd.optsWithGlobals<GlobalOptions & { json: boolean }>());
    });

  program
    .command('history')
    .description('what the reconciler did: the apply journal')
    .option('--json', 'one JSON document on stdout', false)
    .option('-n, --limit <n>', 'show the last N entries', '20')
    .action(async (_opts: unknown, cmd: Command) => {
      const { historyCommand } = await import('./commands/history.js');
      process.exitCode = await historyCommand(
        cmd.optsWithGlobals<GlobalOptions & { json: boolean; limit: string }>(),
      );
    });

  return program;
}
