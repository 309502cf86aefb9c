/**
 * Runtime recognition: what program the roster says an agent's pane runs, and whether anything in the pane's
 * process tree runs it (DRIFT). Words a shell consumes, interpreters and the fleet's launcher are seen through,
 * so the program named is the one that does the work.
 */
import type { DesiredAgent, RuntimeSpec } from '../model/desired.js';
import type { Observed, ObservedPane, ObservedProcess } from '../model/observed.js';
import { programWords } from '../runtimes/recognize.js';

/** Programs that run a script named by a later argument: the script, not the interpreter, is "the program". */
const INTERPRETERS = new Set([
  'bash',
  'sh',
  'dash',
  'zsh',
  'ksh',
  'fish',
  'env',
  'python',
  'python2',
  'python3',
  'node',
  'nodejs',
  'deno',
  'bun',
  'perl',
  'ruby',
  'tsx',
  'npx',
  'uv',
]);

/** The fleet's launcher (framework/tools/fleet/run-agent.sh): it execs the runtime named by its first argument. */
export const LAUNCHER = 'run-agent.sh';

/** Shell syntax beyond "program arg arg": pipes, lists, redirections, substitutions, assignments, globs. */
const COMPOUND = /[|&;<>()$`\\\n*?{}[\]]|^\s*\w+=/;

export function basename(p: string): string {
  const trimmed = p.replace(/\/+$/, '');
  return trimmed.slice(trimmed.lastIndexOf('/') + 1);
}

/** First word of a simple command, honouring plain single/double quotes around it. */
function firstWord(command: string): string {
  const m = /^\s*(?:'([^']*)'|"([^"]*)"|(\S+))/.exec(command);
  return m ? (m[1] ?? m[2] ?? m[3] ?? '') : '';
}

/** Words of a simple command (no shell syntax): whitespace-separated, plain quotes removed. */
function words(command: string): string[] {
  const out: string[] = [];
  for (const m of command.matchAll(/'([^']*)'|"([^"]*)"|(\S+)/g)) out.push(m[1] ?? m[2] ?? m[3] ?? '');
  return out;
}

/** tmux shows start commands with arguments in double quotes and `"`, `$`, `\` escaped; undo that for comparing. */
function unTmux(text: string): string {
  return text.replace(/\\(["$\\])/g, '$1').replace(/"/g, '');
}

/** The program names a process stands for: argv[0], and for an interpreter the script (or `-c` command) it runs. */
export function programNames(argv: readonly string[]): string[] {
  const first = argv[0];
  if (first === undefined || first === '') return [];
  const name = basename(first);
  const names = [name];
  // `python3.11` is a python.
  if (!INTERPRETERS.has(name) && !INTERPRETERS.has(name.replace(/[\d.]+$/, ''))) return names;
  for (let i = 1; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === '--') continue;
    if (arg.startsWith('-')) {
      // `bash -c 'cmd args'`, `bash -lc ...`, `python -c ...`: the next argument is the command itself.
      if (/^-[a-zA-Z]*c$/.test(arg) && i + 1 < argv.length) {
        // Its program is the first word a shell does not consume (`exec pi`, `A=1 nohup pi`), judged in turn
        // (`exec python3 x.py` runs x.py).
        names.push(...programNames(programWords(words(argv[i + 1] ?? ''))));
        break;
      }
      continue;
    }
    // `env VAR=x prog`: skip assignments.
    if (name === 'env' && /^\w+=/.test(arg)) continue;
    names.push(basename(arg));
    // The fleet's launcher runs the program named after it (until it execs it).
    if (basename(arg) === LAUNCHER) names.push(...programNames(argv.slice(i + 1)));
    break;
  }
  return names;
}

export interface Expected {
  /** What is shown and compared: a program basename, or the whole command for shell syntax. */
  program: string;
  /** true when the command is shell syntax and is compared against the pane's start command. */
  compound: boolean;
  /**
   * Every name that counts as the expected program in the pane's process tree: the program, the runtime
   * adapter's `programs` (an npm shim's native binary, a process title), and the name the program resolves to
   * through links on the user manager's PATH.
   */
  names?: string[];
}

/**
 * What the roster says the pane runs. The operator's `command` wins over the runtime (it is what the start
 * script runs); its first word is the program unless it is shell syntax, whose first word proves nothing
 * (`cd x && claude`), so such commands are compared whole against what tmux started.
 */
export function expectedProgram(
  agent: DesiredAgent,
  runtime: RuntimeSpec | undefined,
  resolved: Observed['programs'] = undefined,
): Expected {
  if (agent.command !== null && agent.command.trim() !== '') {
    if (COMPOUND.test(agent.command)) return { program: agent.command.trim(), compound: true };
    // `python3 /opt/agent.py` runs agent.py: judged like a process argv, the script is the program.
    // `exec run.sh`, `env A=1 run.sh`, `nohup run.sh` run run.sh (src/runtimes/recognize.ts).
    const names = programNames(programWords(words(agent.command)));
    return { program: names.at(-1) ?? basename(firstWord(agent.command)), compound: false };
  }
  const command = runtime?.command ?? agent.runtime;
  const program = basename(command);
  const target = resolved?.[command]?.realPath;
  const names = [program, ...(runtime?.programs ?? []), ...(target ? [basename(target)] : [])];
  return { program, compound: false, names: [...new Set(names)] };
}

/**
 * Drift: does anything in the pane's process tree run the expected program? Any process counts, not only the
 * pane's first one, because a runtime started through a shell or wrapper is a descendant of it.
 */
export function driftCheck(
  expected: Expected,
  pane: ObservedPane,
): { drift: boolean; reason: string | null; shown: ObservedProcess | null } {
  if (expected.compound) {
    // Shell syntax is started as `bash -lc "<command>"`: compare what tmux started. The pane's processes cannot
    // prove anything here, since any word of the command may be the long-running one.
    const started = unTmux(pane.startCommand);
    const ok = started.includes(unTmux(expected.program));
    return {
      drift: !ok,
      reason: ok ? null : `pane was started with '${started}', the roster's command is '${expected.program}'`,
      shown: pane.processes[0] ?? null,
    };
  }
  const names = new Set(expected.names ?? [expected.program]);
  const match = pane.processes.find(
    (p) => programNames(p.argv).some((n) => names.has(n)) || (p.exe != null && names.has(basename(p.exe))),
  );
  if (match !== undefined) return { drift: false, reason: null, shown: match };
  if (pane.processes.length === 0) {
    // The pane process vanished between tmux answering and the /proc read: tmux's own name for the foreground
    // process is the only evidence left.
    const ok = names.has(pane.currentCommand);
    return {
      drift: !ok && pane.currentCommand !== '',
      reason: ok ? null : `pane runs '${pane.currentCommand}', the roster says '${expected.program}'`,
      shown: null,
    };
  }
  // A wrapper that exec'd a differently named program keeps the pid tmux started: when the pane was started
  // with the expected program (directly or through the fleet's launcher), its first process is still that
  // start, whatever name it took since. A pane respawned with anything else has another start command.
  const started = programNames(words(unTmux(pane.startCommand)));
  if (started.some((n) => names.has(n)))
    return { drift: false, reason: null, shown: pane.processes[0] ?? null };
  const runs = pane.processes[0]?.argv.join(' ') ?? pane.currentCommand;
  return { drift: true, reason: `pane runs '${runs}', the roster says '${expected.program}'`, shown: null };
}
