/**
 * Self-test of the sandbox every systemd/tmux test relies on: if these fail, nothing else can be trusted.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { describeSandbox, startSandbox } from './sandbox.js';

/** A zombie counts as gone: on machines whose PID 1 does not reap, exited daemons linger as zombies. */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

describeSandbox('test sandbox', (sandbox) => {
  it('runs a private systemd user manager that answers', async () => {
    const sb = sandbox();
    const { stdout } = await sb.systemctl('show', '-p', 'Version');
    expect(stdout).toMatch(/^Version=\d+/);
    expect(sb.paths.unitDir.startsWith(sb.root)).toBe(true);
    expect(sb.paths.mosaicHome.startsWith(sb.root)).toBe(true);
    expect(statSync(sb.env.XDG_RUNTIME_DIR ?? '').mode & 0o777).toBe(0o700);
  });

  it('runs units with the sandbox environment, and their tmux servers land in the private dir', async () => {
    const sb = sandbox();
    const out = join(sb.root, 'unit-env.txt');
    await sb.writeUnit(
      'sbtest-env.service',
      [
        '[Service]',
        'Type=oneshot',
        'RemainAfterExit=yes',
        `ExecStart=/bin/sh -c 'env > ${out}; tmux -L sbtest new-session -d -s fromunit sleep 600'`,
        '',
      ].join('\n'),
    );
    await sb.systemctl('daemon-reload');
    await sb.systemctl('start', 'sbtest-env.service');
    const seen = readFileSync(out, 'utf8');
    expect(seen).toContain(`TMUX_TMPDIR=${sb.env.TMUX_TMPDIR}\n`);
    expect(seen).toContain(`MOSAIC_HOME=${sb.paths.mosaicHome}\n`);
    expect(seen).toContain(`XDG_CONFIG_HOME=${sb.env.XDG_CONFIG_HOME}\n`);
    // The session the unit created is visible through the sandbox's own socket dir.
    expect(existsSync(join(sb.tmuxSocketDir, 'sbtest'))).toBe(true);
    const { stdout } = await sb.tmux('sbtest', 'list-sessions', '-F', '#{session_name}');
    expect(stdout.trim()).toBe('fromunit');
    const { stdout: state } = await sb.systemctl('show', '-p', 'ActiveState,SubState', 'sbtest-env.service');
    expect(state).toContain('ActiveState=active');
  });
});

describeSandbox('test sandbox stop()', () => {
  it('leaves no manager process, no tmux server and no temp dir, and can be called twice', async () => {
    const sb = await startSandbox();
    const pid = sb.managerPid;
    await sb.tmux('sbstop', 'new-session', '-d', '-s', 'x', 'sleep 600');
    const { stdout } = await sb.tmux('sbstop', 'display-message', '-p', '-t', '=x:0.0', '#{pid}');
    const tmuxPid = Number(stdout.trim());
    expect(alive(pid)).toBe(true);
    expect(alive(tmuxPid)).toBe(true);
    await sb.stop();
    await sb.stop();
    expect(alive(pid)).toBe(false);
    expect(alive(tmuxPid)).toBe(false);
    expect(existsSync(sb.root)).toBe(false);
  });
});
