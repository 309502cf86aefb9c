/**
 * Which word of a command is the program it runs. A shell consumes some words before the program: `exec`,
 * `command`, `builtin`, assignments (`A=1`), and the small programs that only set something up and then exec the
 * next word (`env`, `nohup`, `setsid`, `nice`, `stdbuf`, `time`). An agent whose `command:` is `exec run.sh` runs
 * run.sh, not a program called exec: judged by the first word, it was reported DRIFT and respawned in a loop.
 * Pure.
 */

/** Each consumer, with its options that take a separate argument (`env -u NAME`, `nice -n 5`). */
const CONSUMERS: ReadonlyMap<string, ReadonlySet<string>> = new Map([
  ['exec', new Set(['-a'])],
  ['command', new Set<string>()],
  ['builtin', new Set<string>()],
  ['nohup', new Set<string>()],
  ['setsid', new Set<string>()],
  ['time', new Set<string>()],
  ['env', new Set(['-u', '--unset', '-C', '--chdir', '-S', '--split-string'])],
  ['nice', new Set(['-n', '--adjustment'])],
  ['stdbuf', new Set(['-i', '-o', '-e', '--input', '--output', '--error'])],
]);

const ASSIGNMENT = /^[A-Za-z_][A-Za-z0-9_]*=/;

function basename(p: string): string {
  const trimmed = p.replace(/\/+$/, '');
  return trimmed.slice(trimmed.lastIndexOf('/') + 1);
}

/**
 * The words from the program on: leading assignments and consumers (with their options and, for `env`, its
 * assignments) dropped. `env -S 'prog args'` splits its string into the words that follow. [] when nothing is
 * left to run (`exec` alone, `env A=1`).
 */
export function programWords(words: readonly string[]): string[] {
  let i = 0;
  while (i < words.length) {
    const word = words[i] ?? '';
    if (ASSIGNMENT.test(word)) {
      i++;
      continue;
    }
    const consumer = basename(word);
    const takesArg = CONSUMERS.get(consumer);
    if (takesArg === undefined) break;
    i++;
    for (; i < words.length; i++) {
      const w = words[i] ?? '';
      if (w === '--') {
        i++;
        break;
      }
      if (consumer === 'env' && ASSIGNMENT.test(w)) continue;
      if (consumer === 'env' && (w === '-S' || w === '--split-string')) {
        const split = (words[i + 1] ?? '').split(/\s+/).filter((s) => s !== '');
        return programWords([...split, ...words.slice(i + 2)]);
      }
      if (!w.startsWith('-') || w === '-') break;
      // `-n 5` takes the next word; `-n5`, `--adjustment=5`, `-oL` carry their argument.
      if (takesArg.has(w)) i++;
    }
  }
  return words.slice(i);
}
