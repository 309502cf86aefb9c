/**
 * `npm run demo:hosts`: many hosts in one command (docs/hosts.md). Three hosts, h1, h2 and h3, each simulated by
 * a sandbox of its own (src/dev/sandbox.ts: a private systemd user manager, tmux directory and home; its name
 * from MOSAIC_HOST), share one register: a private PostgreSQL cluster in a temp dir (src/dev/pg-cluster.ts).
 * The demo shows each host converging its share, `fleet ps --all-hosts`, an agent moved from h1 to h2 without
 * ever running on both, and h3 dying: its agents HOST-STALE, one of them taken over by h1 after takeover_after.
 *
 * Every `fleet` step is the real CLI run in a host's sandbox, shown as printed (paths shortened, diffs left
 * out). The cluster and the sandboxes are started by the demo and removed at the end, also on failure and
 * Ctrl-C (src/dev/demo-runner.ts). Needs PostgreSQL's binaries (/usr/lib/postgresql/<v>/bin), which the
 * single-host demo never does.
 */
import { pathToFileURL } from 'node:url';
import { sandboxStaticReason } from './sandbox.js';
import { postgresUnavailableReason } from './pg-cluster.js';
import { HOSTS, LEASE_S, startHosts, TAKEOVER_S, type HostsDemo } from './demo-hosts-context.js';
import { HOSTS_STEPS } from './demo-hosts-steps.js';
import { runDemoScript, type DemoIO, type DemoScript } from './demo-runner.js';

const script: DemoScript<HostsDemo> = {
  name: 'demo:hosts',
  // PostgreSQL first: it is what this demo needs beyond `npm run demo`.
  staticReason: () => postgresUnavailableReason() ?? sandboxStaticReason(),
  async start(out, resources) {
    const h = await startHosts(out, resources);
    const pid = h.cluster.pid() ?? '?';
    out.write(out.s.dim(`   register: PostgreSQL pid ${pid} in ${h.cluster.dir} (removed at the end)`));
    for (const host of HOSTS) {
      const sb = h.hosts[host].sb;
      out.write(
        out.s.dim(
          `   ${host}: systemd user manager pid ${sb.managerPid} in ${sb.root} (shown as $${host.toUpperCase()}, its home as ~)`,
        ),
      );
    }
    out.write(
      out.s.dim(
        `   lease ${LEASE_S} s, takeover_after ${TAKEOVER_S} s (a real fleet: 60 s and 5 min), so this takes about a minute`,
      ),
    );
    out.write(
      out.s.dim(
        '   (Before steps 3, 4 and 5 and the last `ps --all-hosts`, every live host runs one quiet `fleet reconcile`, as its timer would: the register then has what runs now, and no lease runs out while you read.)',
      ),
    );
    return h;
  },
  steps: HOSTS_STEPS,
  done: 'Demo done: three hosts converged their shares, an agent moved without running twice, and a dead host was taken over.',
};

/** The demo proper. Returns the exit code: 0 done, 1 failed, 128+n interrupted by signal n. */
export function runHostsDemo(
  io: DemoIO = { out: process.stdout, err: process.stderr, env: process.env },
): Promise<number> {
  return runDemoScript(io, script);
}

// Run when executed (`node dist/dev/demo-hosts.js`), not when imported.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await runHostsDemo();
}
