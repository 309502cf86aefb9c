/**
 * Processes as the benchmark measures them: wall time and CPU time (user + sys of the process and every
 * descendant it reaped), and what /proc says about a long-running process and its children.
 *
 * CPU comes from bash's `times` builtin (getrusage(RUSAGE_CHILDREN), millisecond resolution) in a small bash
 * wrapper around the command: no extra package, and finer than /proc's cutime/cstime (clock ticks, 10 ms here).
 * RUSAGE_CHILDREN counts a descendant once its parent has waited for it, so a `fleet` run's execa spawns are in
 * its figure; what systemd or a tmux server does for it is not (they are not its descendants). Bytes read come the
 * same way: the kernel adds a reaped child's I/O counters (rchar) to its parent's, so the wrapper's own
 * /proc/$$/io, read with builtins before and after the wait, grows by what the command read.
 */
import { execFileSync, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

export interface Measured {
  /** Wall time of the command alone (bash's EPOCHREALTIME around fork+exec and wait), ms. */
  wallMs: number;
  /** User + sys CPU of the command and its reaped descendants, ms. */
  cpuMs: number;
  userMs: number;
  sysMs: number;
  /**
   * Bytes read by the command and its reaped descendants (rchar of /proc/PID/io: read(2) and friends, from the
   * page cache or not), as the wrapper's own counter grew across the wait; null when /proc/PID/io is unreadable.
   */
  readBytes: number | null;
  code: number;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/**
 * The wrapper. The command runs as a background job so its pid can be handed back first (fd 3) and a timeout
 * can end exactly that process; `wait` still reaps it, so `times` counts it. fd 3 is closed in the command, so
 * nothing it starts can hold the report pipe open.
 */
const WRAPPER = [
  'rchar() { local k v; r=; while IFS=": " read -r k v; do [[ $k == rchar ]] && r=$v; done </proc/$$/io; } 2>/dev/null',
  'rchar; r0=$r',
  't0=$EPOCHREALTIME',
  '"$@" 3>&- &',
  'p=$!',
  'echo "pid $p" >&3',
  'wait "$p"; rc=$?',
  't1=$EPOCHREALTIME',
  'rchar; r1=$r',
  '{ echo "wall $t0 $t1"; echo "io $r0 $r1"; times; } >&3',
  'exit $rc',
].join('\n');

/** Commands in flight, by pid (ours): a Ctrl-C ends them too. */
export const inFlight = new Set<number>();

/** `X.YYY` or `XmY.YYYs` (bash prints the locale's decimal separator) to milliseconds. */
function toMs(text: string): number {
  const t = text.replace(',', '.');
  const m = /^(\d+)m([\d.]+)s$/.exec(t);
  return m ? (Number(m[1]) * 60 + Number(m[2])) * 1000 : Number(t) * 1000;
}

/** Run argv under the wrapper and report its wall and CPU time. Never rejects for a non-zero exit. */
export function measure(
  argv: readonly string[],
  opts: { env: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number },
): Promise<Measured> {
  return new Promise((resolveRun, reject) => {
    const child = spawn('bash', ['-c', WRAPPER, 'bench-measure', ...argv], {
      env: opts.env,
      cwd: opts.cwd,
      stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let report = '';
    let pid = 0;
    let timedOut = false;
    child.stdout?.on('data', (b: Buffer) => out.push(b));
    child.stderr?.on('data', (b: Buffer) => err.push(b));
    const fd3 = child.stdio[3] as NodeJS.ReadableStream;
    fd3.setEncoding('utf8');
    fd3.on('data', (s: string) => {
      report += s;
      const m = /^pid (\d+)$/m.exec(report);
      if (pid === 0 && m) {
        pid = Number(m[1]);
        inFlight.add(pid);
      }
    });
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        if (pid > 1) process.kill(pid, 'SIGKILL');
      } catch {
        // it ended just now
      }
    }, opts.timeoutMs ?? 300_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      inFlight.delete(pid);
      const wall = /^wall (\S+) (\S+)$/m.exec(report);
      // `times` prints the shell's own times, then its children's: the second line is the command's.
      const times = report
        .split('\n')
        .filter((l) => /^\d+m[\d.,]+s \d+m[\d.,]+s$/.test(l.trim()))
        .map((l) => l.trim().split(' ').map(toMs));
      const children = times[1];
      if (!wall || children === undefined) {
        reject(
          new Error(`no timing report from the wrapper for ${argv.join(' ')}: ${JSON.stringify(report)}`),
        );
        return;
      }
      const [userMs = NaN, sysMs = NaN] = children;
      const io = /^io (\d+) (\d+)$/m.exec(report);
      resolveRun({
        wallMs: (Number(wall[2]?.replace(',', '.')) - Number(wall[1]?.replace(',', '.'))) * 1000,
        cpuMs: userMs + sysMs,
        userMs,
        sysMs,
        readBytes: io ? Number(io[2]) - Number(io[1]) : null,
        code: code ?? 1,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        timedOut,
      });
    });
  });
}

// ---------------------------------------------------------------------------------------------------------------
// /proc

let clkTck: number | undefined;

/** Clock ticks per second, the unit of /proc/PID/stat's times. */
export function clockTicks(): number {
  if (clkTck === undefined) {
    try {
      clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clkTck = 100;
    }
  }
  return clkTck;
}

interface ProcStat {
  pid: number;
  ppid: number;
  /** utime + stime + cutime + cstime, in clock ticks: the process and the children it has reaped. */
  ticks: number;
}

function readStat(pid: number): ProcStat | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // comm (field 2) may hold spaces and parentheses: the fields that follow start after the last ')'.
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const n = (k: number): number => Number(f[k - 3] ?? 0);
  return { pid, ppid: n(4), ticks: n(14) + n(15) + n(16) + n(17) };
}

/** The process and its live descendants, from one pass over /proc. */
export function processTree(root: number): ProcStat[] {
  const all: ProcStat[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const s = readStat(Number(name));
    if (s) all.push(s);
  }
  const inTree = new Set([root]);
  // Parents are not always listed before their children (pids wrap): repeat until nothing is added.
  for (let grew = true; grew;) {
    grew = false;
    for (const s of all) {
      if (!inTree.has(s.pid) && inTree.has(s.ppid)) {
        inTree.add(s.pid);
        grew = true;
      }
    }
  }
  return all.filter((s) => inTree.has(s.pid));
}

/**
 * CPU ticks of a process tree so far: each live member's own time plus what it reaped. The difference of two
 * readings counts a child that was alive at the first and reaped by the second exactly once.
 */
export function treeTicks(root: number): number {
  return processTree(root).reduce((sum, s) => sum + s.ticks, 0);
}

/** VmRSS and VmHWM (peak) of one process, in MiB; null when it is gone. */
export function memoryMiB(pid: number): { rss: number; peak: number } | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return null;
  }
  const kib = (key: string): number =>
    Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN);
  return { rss: kib('VmRSS') / 1024, peak: kib('VmHWM') / 1024 };
}

/** Sum of VmRSS over a process tree, MiB (the watcher plus any helper it keeps running). */
export function treeRssMiB(root: number): number {
  return processTree(root).reduce((sum, s) => sum + (memoryMiB(s.pid)?.rss ?? 0), 0);
}

/** CPU usage of a cgroup v2 directory so far (usage_usec of cpu.stat), ms; null when unreadable. */
export function cgroupCpuMs(dir: string): number | null {
  try {
    const m = /^usage_usec (\d+)$/m.exec(readFileSync(`${dir}/cpu.stat`, 'utf8'));
    return m ? Number(m[1]) / 1000 : null;
  } catch {
    return null;
  }
}

export function now(): number {
  return performance.now();
}
