/**
 * Commands and flags -> typed options. Orchestration lives in src/commands/.
 */
import { setFlagsFromString } from 'node:v8';
import { Command, Option } from 'commander';
import type { GlobalOptions, ReconcileOptions } from './options.js';
import { UserError } from './errors.js';

/** commander's error text with each line as `fleet: ...` (its own prefix `error:` dropped). */
export function fleetErrorLines(text: string): string {
  return text.replace(/^(?!$)(?:error: )?/gm, 'fleet: ');
}

/** How a plan is shown: every diff in full, or files as one line each (the default). */
function diffOption(): Option {
  return new Option(
    '--diff',
    'show every file diff in full (default: framework, unit and new env files as one line)',
  ).default(false);
}

/** `--agent NAME`, repeatable: only these agents' part of a plan. */
function agentFilter(description: string): Option {
  return new Option('--agent <name>', description)
    .argParser((v: string, prev: string[]) => [...prev, v])
    .default([]);
}

/**
 * Watch mode runs for days: there V8's optimizing compiler pays, which bin/fleet.js turns off for the short
 * runs of every other command (same V8 versions).
 */
function optimizeLongRun(): void {
  const v8Major = Number(process.versions.v8.split('.')[0]);
  if (v8Major === 11 || v8Major === 12) setFlagsFromString('--turbofan');
}

function globals(cmd: Command): GlobalOptions {
  return cmd.optsWithGlobals<GlobalOptions>();
}

/** `validate` and `ps`: read the manifests, or what runs. */
function addInspectCommands(program: Command): void {
  program
    .command('validate')
    .addHelpText(
      'after',
      '\nExample:\n  fleet validate manifests/   # FILE:LINE:COL: message for every problem',
    )
    .description('check manifests (schema and semantics); errors as FILE:LINE:COL: message')
    .argument('[path...]', 'manifest files or directories (default: the manifests of the home)')
    .action(async (paths: string[], _opts: unknown, cmd: Command) => {
      const { validateCommand } = await import('./commands/validate.js');
      process.exitCode = await validateCommand(paths, globals(cmd));
    });

  program
    .command('ps')
    .addHelpText(
      'after',
      "\nExample:\n  fleet ps cc0 --json         # one agent's row: unit, pane, STATE, heartbeat, flags",
    )
    .description('what is really running, one row per agent (read-only)')
    .argument('[agent...]', 'show only these agents')
    .option('--json', 'one JSON document on stdout', false)
    .option('--all-hosts', "every host's agents, from the register (docs/hosts.md)", false)
    .option('--host <name>', "one host's agents, from the register")
    .option(
      '--agent <name>',
      'show only this agent (repeatable; same as naming it)',
      (v: string, prev: string[]) => [...prev, v],
      [],
    )
    .action(async (agents: string[], _opts: unknown, cmd: Command) => {
      const o = cmd.optsWithGlobals<
        GlobalOptions & { json: boolean; agent: string[]; allHosts: boolean; host?: string }
      >();
      if (o.allHosts || o.host !== undefined) {
        const { psHostsCommand } = await import('./commands/hosts.js');
        process.exitCode = await psHostsCommand(o);
        return;
      }
      const { psCommand } = await import('./commands/ps.js');
      process.exitCode = await psCommand({ ...o, agents: [...agents, ...o.agent] });
    });
}

/** `reconcile`, `plan` and `apply`: the reconciler itself. */
function addReconcileCommands(program: Command): void {
  program
    .command('reconcile')
    .addHelpText(
      'after',
      '\nExample:\n  fleet reconcile --dry-run --detailed-exitcode   # exit 2 when changes are pending',
    )
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
    .addOption(diffOption())
    .addOption(agentFilter("with --dry-run: show only this agent's actions (repeatable)"))
    .action(async (_opts: unknown, cmd: Command) => {
      if (cmd.getOptionValueSource('interval') === 'cli' && cmd.getOptionValue('watch') !== true)
        throw new UserError('--interval only makes sense with --watch');
      if (cmd.getOptionValue('watch') === true) optimizeLongRun();
      const { reconcileCommand } = await import('./commands/reconcile.js');
      process.exitCode = await reconcileCommand(cmd.optsWithGlobals<ReconcileOptions>());
    });

  program
    .command('plan')
    .addHelpText('after', '\nExample:\n  fleet plan --out fleet.plan && fleet apply fleet.plan')
    .description('the dry-run plan; --out saves it for `fleet apply`')
    .option('--out <file>', 'save the plan as JSON')
    .option('--prune', 'include pruning of agents no manifest names', false)
    .option('--json', 'machine-readable output', false)
    .option('--detailed-exitcode', 'exit 0 in sync, 2 when changes are pending', false)
    .addOption(diffOption())
    .addOption(agentFilter("show only this agent's actions (repeatable; --out still saves the whole plan)"))
    .action(async (_opts: unknown, cmd: Command) => {
      const { planCommand } = await import('./commands/reconcile.js');
      const o = cmd.optsWithGlobals<
        GlobalOptions & {
          out?: string;
          prune: boolean;
          json: boolean;
          detailedExitcode: boolean;
          diff: boolean;
          agent: string[];
        }
      >();
      process.exitCode = await planCommand(o);
    });

  program
    .command('apply')
    .addHelpText(
      'after',
      '\nExample:\n  fleet apply fleet.plan      # refuses if the machine changed since `fleet plan`',
    )
    .description('apply exactly a saved plan; refuses when the machine changed since it was made')
    .argument('<file>', 'plan saved by `fleet plan --out`')
    .option('--json', 'machine-readable output', false)
    .action(async (file: string, _opts: unknown, cmd: Command) => {
      const { applyCommand } = await import('./commands/reconcile.js');
      process.exitCode = await applyCommand(file, cmd.optsWithGlobals<GlobalOptions & { json: boolean }>());
    });
}

/** `spend`, `history`, `register` and `alerts`: what was spent, done and raised. */
function addRecordCommands(program: Command): void {
  program
    .command('spend')
    .description("tokens each agent spent (metered from the runtimes' own records), with USD where priced")
    .argument('[agent...]', 'only these agents (default: all)')
    .option('--window <w>', 'time window: 5h, 1d, 7d, 30d or all', '1d')
    .option('--by <key>', 'group rows by agent, model, runtime or tenant', 'agent')
    .option('--json', 'one JSON document on stdout', false)
    .addHelpText('after', '\nExample:\n  fleet spend --window 7d --by model   # a week of tokens per model')
    .action(async (agents: string[], _opts: unknown, cmd: Command) => {
      const { spendCommand } = await import('./commands/spend.js');
      process.exitCode = await spendCommand({
        ...cmd.optsWithGlobals<GlobalOptions & { json: boolean; window: string; by: string }>(),
        agents,
      });
    });

  program
    .command('history')
    .description(
      'what the reconciler and the operator verbs did: the journal, newest first, with who ran each',
    )
    .option('--json', 'one JSON document on stdout', false)
    .option('-n, --limit <n>', 'show the last N entries', '20')
    .option('--all-hosts', "every host's journal, from the register (docs/hosts.md)", false)
    .option('--host <name>', "one host's journal, from the register")
    .addHelpText('after', '\nExample:\n  fleet history -n 5        # the five latest entries, newest first')
    .action(async (_opts: unknown, cmd: Command) => {
      const o = cmd.optsWithGlobals<
        GlobalOptions & { json: boolean; limit: string; allHosts: boolean; host?: string }
      >();
      if (o.allHosts || o.host !== undefined) {
        const { historyHostsCommand } = await import('./commands/hosts.js');
        process.exitCode = await historyHostsCommand(o);
        return;
      }
      const { historyCommand } = await import('./commands/history.js');
      process.exitCode = await historyCommand(o);
    });

  const register = program
    .command('register')
    .description('the register of many hosts (a PostgreSQL database; docs/hosts.md)');
  register
    .command('migrate')
    .description("create or upgrade the register's fleet schema (refuses a newer one)")
    .addHelpText('after', '\nExample:\n  FLEET_REGISTER_URL=postgresql://... fleet register migrate')
    .action(async (_opts: unknown, cmd: Command) => {
      const { registerMigrateCommand } = await import('./commands/register.js');
      process.exitCode = await registerMigrateCommand(globals(cmd));
    });

  program
    .command('alerts')
    .description('open alert episodes (docs/alerts.md): what fired, since when, and whether it was delivered')
    .option('--json', 'one JSON document on stdout', false)
    .action(async (_opts: unknown, cmd: Command) => {
      const { alertsCommand } = await import('./commands/alerts.js');
      process.exitCode = await alertsCommand(cmd.optsWithGlobals<GlobalOptions & { json: boolean }>());
    });
}

/** `restart` and `reset`: operator verbs on running agents. */
function addLifecycleCommands(program: Command): void {
  program
    .command('restart')
    .description(
      "restart agents now (their conversation resumes); waits for no policy, respects the runtime's state",
    )
    .argument('<agent...>', 'agents to restart')
    .option('--now', 'also when the runtime says it is busy, waiting or starting', false)
    .addHelpText(
      'after',
      [
        '',
        'Exit 0 when every named agent was restarted (or started, when it was not running); 1 when one was refused',
        '(busy, waiting, starting: use --now, or retry when idle), unknown or failed. Journaled (fleet history).',
        '',
        'Example:',
        '  fleet restart cc0 cx1     # restart both; a busy one is left alone and named',
      ].join('\n'),
    )
    .action(async (agents: string[], _opts: unknown, cmd: Command) => {
      const { restartCommand } = await import('./commands/restart.js');
      process.exitCode = await restartCommand(
        agents,
        cmd.optsWithGlobals<GlobalOptions & { now: boolean }>(),
      );
    });

  program
    .command('reset')
    .description("type the runtime's own reset command (/clear, /new) into agents: a fresh conversation")
    .argument('<agent...>', 'agents to reset')
    .option('--now', 'also when the runtime says it is busy or waiting', false)
    .option('--timeout <seconds>', 'how long to wait for a starting runtime to take input', '20')
    .addHelpText('after', '\nExample:\n  fleet reset cc0           # types /clear into cc0 once it is idle')
    .action(async (agents: string[], _opts: unknown, cmd: Command) => {
      const { resetCommand } = await import('./commands/reset.js');
      process.exitCode = await resetCommand(
        agents,
        cmd.optsWithGlobals<GlobalOptions & { now: boolean; timeout: string }>(),
      );
    });
}

/** `send` and `tail`: talk to an agent, read what it said. */
function addConversationCommands(program: Command): void {
  program
    .command('send')
    .description("type a prompt into an agent's pane (one paste, then Enter)")
    .argument('<agent>', 'the agent')
    .argument('[message]', 'the prompt; `-` or nothing reads it from stdin')
    .option(
      '--verify',
      'exit 0 only when the runtime itself took the prompt (its heartbeat turned busy)',
      false,
    )
    .option('--wait', 'after it took the prompt, wait until the agent is idle again', false)
    .option('--force', 'type even when the agent is waiting for a permission answer', false)
    .option(
      '--timeout <seconds>',
      'how long to wait for a starting runtime to take input, and then for --verify its acknowledgement',
      '20',
    )
    .addHelpText(
      'after',
      [
        '',
        'Exit 1 with the reason when nothing was typed (waiting for a permission answer, no session), or when',
        '--verify/--wait saw no acknowledgement. Runtimes that report no state: best effort, read from the screen.',
        '',
        'Examples:',
        '  fleet send cc0 "run the tests" --verify',
        '  git diff | fleet send cx1 - --wait',
      ].join('\n'),
    )
    .action(async (agent: string, message: string | undefined, _opts: unknown, cmd: Command) => {
      const { sendCommand } = await import('./commands/send.js');
      process.exitCode = await sendCommand(
        agent,
        message,
        cmd.optsWithGlobals<
          GlobalOptions & { verify: boolean; wait: boolean; force: boolean; timeout: string }
        >(),
      );
    });

  program
    .command('tail')
    .description(
      "what an agent said lately: Claude Code's last messages, or the pane's last lines (read-only)",
    )
    .argument('<agent>', 'the agent')
    .option('-n, --lines <n>', 'how many messages (transcript, default 10) or lines (screen, default 50)')
    .option('-f, --follow', 'keep printing what is new', false)
    .option('--screen', 'the pane even when the runtime names a transcript', false)
    .addHelpText('after', '\nExample:\n  fleet tail cc0 -n 2       # its last prompt and reply')
    .action(async (agent: string, _opts: unknown, cmd: Command) => {
      const { tailCommand } = await import('./commands/tail.js');
      process.exitCode = await tailCommand(
        agent,
        cmd.optsWithGlobals<GlobalOptions & { lines?: string; follow: boolean; screen: boolean }>(),
      );
    });
}

/** `diff` and `watch`: look at what an agent changed or shows. */
function addWorkCommands(program: Command): void {
  program
    .command('diff')
    .description(
      'what an agent changed in its worktree: commits since its base, and what is uncommitted (read-only)',
    )
    .argument('<agent>', 'the agent (it must have a workspace)')
    .option('--stat', 'a summary per file instead of the patch', false)
    .action(async (agent: string, _opts: unknown, cmd: Command) => {
      const { diffCommand } = await import('./commands/diff.js');
      process.exitCode = await diffCommand(agent, cmd.optsWithGlobals<GlobalOptions & { stat: boolean }>());
    });

  program
    .command('watch')
    .description(
      "look at an agent's pane live, read-only (a viewer session; detach with the tmux prefix, then d)",
    )
    .argument('<agent>', 'the agent')
    .addHelpText(
      'after',
      '\nExample:\n  fleet watch cc0           # C-b d to leave; the agent is never typed into or resized',
    )
    .action(async (agent: string, _opts: unknown, cmd: Command) => {
      const { watchAgentCommand } = await import('./commands/watch-agent.js');
      process.exitCode = await watchAgentCommand(agent, globals(cmd));
    });
}

export function buildCli(): Command {
  const program = new Command('fleet')
    .description('Declarative reconciler for fleets of long-running AI agents (systemd user units + tmux).')
    .version('0.1.0')
    .exitOverride()
    .showHelpAfterError(false)
    // Every error line starts with `fleet:` (commander's own say `error: ...`).
    .configureOutput({ outputError: (text, write) => write(fleetErrorLines(text)) })
    .option('--home <dir>', 'Mosaic home (default $MOSAIC_HOME or ~/.config/mosaic)')
    .option('--manifests <path>', 'manifest file or directory (default <home>/fleet)')
    .option('--unit-dir <dir>', 'active systemd user unit directory (default $XDG_CONFIG_HOME/systemd/user)')
    .option(
      '--host-name <name>',
      "this host's name for agents' host: and the register (default $MOSAIC_HOST or the hostname)",
    )
    .option(
      '--source <url[#branch]>',
      "follow the manifests of this git repository and branch (default $MOSAIC_SOURCE, or a manifest's source:)",
    )
    // One place sets them for every command: observation, the manifest cache and the register read $MOSAIC_HOST;
    // loading the fleet reads $MOSAIC_SOURCE (src/source/settings.ts).
    .hook('preAction', (cmd) => {
      const { hostName, source } = cmd.opts<{ hostName?: string; source?: string }>();
      if (hostName !== undefined) process.env.MOSAIC_HOST = hostName;
      if (source !== undefined) process.env.MOSAIC_SOURCE = source;
    })
    // Every command's --help lists --home, --manifests and --unit-dir too.
    .configureHelp({ showGlobalOptions: true });

  addInspectCommands(program);
  addReconcileCommands(program);
  addRecordCommands(program);
  addLifecycleCommands(program);
  addConversationCommands(program);
  addWorkCommands(program);
  return program;
}
