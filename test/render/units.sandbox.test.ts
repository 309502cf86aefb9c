/**
 * The rendered units and env files, read by a real systemd user manager (the sandbox, DOMAIN.md section 7).
 *
 * The Mosaic home has a space, `%` and `$` in its path, so every escaping rule of the renderers is exercised
 * by the component that actually interprets it.
 */
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { expect, it } from 'vitest';
import { waitFor } from '../helpers/fleet.js';
import { loadAssets } from '../../src/assets.js';
import { parseEnvFile } from '../../src/base/env-file.js';
import { renderEnvFile } from '../../src/render/env.js';
import { renderFrameworkFiles } from '../../src/render/framework.js';
import { agentUnitName, exactSession, HOLDER_UNIT } from '../../src/base/names.js';
import {
  execProgram,
  execWord,
  pathSetting,
  renderUnits,
  type RenderedFile,
} from '../../src/render/units.js';
import { describeSandbox, type Sandbox } from '../sandbox.js';
import { agent, ctxFor, fleet, runtime } from './helpers.js';

function oddCtx(sb: Sandbox): ReturnType<typeof ctxFor> {
  return ctxFor(join(sb.root, 'odd home 100%', '$HOME', 'mosaic'), sb.paths.unitDir);
}

async function install(files: Array<Pick<RenderedFile, 'path' | 'content' | 'mode'>>): Promise<void> {
  for (const file of files) {
    await mkdir(dirname(file.path), { recursive: true });
    await writeFile(file.path, file.content);
    await chmod(file.path, file.mode);
  }
}

describeSandbox('rendered units and env files under a real systemd user manager', (sandbox) => {
  it('EnvironmentFile= reads back exactly the values the renderer wrote', async () => {
    const sb = sandbox();
    const ctx = oddCtx(sb);
    const tricky = agent({
      name: 'coder0',
      workingDirectory: '/srv/my work/"quoted" $HOME ${USER} #hash \\back\\slash\\',
      modelHint: "it's `model` 100% ; done",
      command: 'python3 -c "print(\'hi\')" | tee $LOG # not a comment',
      socketName: '',
    });
    const operatorLines = [
      '# site note: keep',
      'OPERATOR_PLAIN=kept',
      "OPERATOR_SINGLE='single $quoted'",
      'OPERATOR_CONT=one\\',
      'two',
      'not an assignment',
      // systemd 252 continues a comment that ends in a backslash: the next line is not an assignment.
      '# continued comment \\',
      'OPERATOR_HIDDEN=swallowed',
      '1INVALID=ignored',
      '',
    ].join('\n');
    const text = renderEnvFile(tricky, ctx, operatorLines, { pi: runtime('pi', '/opt/pi bin/pi') });
    const envFile = `${ctx.mosaicHome}/fleet/agents/coder0.env`;
    await install([{ path: envFile, content: text, mode: 0o644 }]);

    const dumper = join(sb.root, 'dump env.sh');
    await install([{ path: dumper, content: '#!/bin/sh\nenv -0 > "$1"\n', mode: 0o755 }]);
    const dumpFile = join(sb.root, 'dump 100% $x.bin');
    await sb.writeUnit(
      'fleet-envdump@.service',
      [
        '[Service]',
        'Type=oneshot',
        // The same path rendering the agent template uses.
        `EnvironmentFile=${pathSetting(`${ctx.mosaicHome}/fleet/agents`)}/%i.env`,
        `ExecStart=${execProgram(dumper)} ${execWord(dumpFile)}`,
        '',
      ].join('\n'),
    );
    await sb.systemctl('daemon-reload');
    await sb.systemctl('start', 'fleet-envdump@coder0.service');

    const seen = new Map<string, string>();
    for (const item of readFileSync(dumpFile, 'utf8').split('\0')) {
      const eq = item.indexOf('=');
      if (eq > 0) seen.set(item.slice(0, eq), item.slice(eq + 1));
    }
    const parsed = parseEnvFile(text).entries;
    // Every value our parser predicts is what systemd handed the process, byte for byte.
    for (const [key, value] of parsed) expect({ key, value: seen.get(key) }).toEqual({ key, value });
    expect(seen.get('MOSAIC_AGENT_WORKDIR')).toBe(tricky.workingDirectory);
    expect(seen.get('MOSAIC_AGENT_MODEL')).toBe(tricky.modelHint);
    expect(seen.get('MOSAIC_AGENT_COMMAND')).toBe(tricky.command);
    expect(seen.get('MOSAIC_AGENT_RUNTIME_COMMAND')).toBe('/opt/pi bin/pi');
    expect(seen.get('MOSAIC_TMUX_SOCKET')).toBe('');
    expect(seen.get('MOSAIC_HOME')).toBe(ctx.mosaicHome);
    expect(seen.get('OPERATOR_SINGLE')).toBe('single $quoted');
    expect(seen.get('OPERATOR_CONT')).toBe('onetwo');
    expect(seen.has('1INVALID')).toBe(false);
    expect(parsed.has('OPERATOR_HIDDEN')).toBe(false);
    expect(seen.has('OPERATOR_HIDDEN')).toBe(false);
    expect([...seen.keys()].filter((k) => k.startsWith('OPERATOR_')).sort()).toEqual([
      'OPERATOR_CONT',
      'OPERATOR_PLAIN',
      'OPERATOR_SINGLE',
    ]);
  });

  it('runs an agent: holder and template start the stub in tmux, stop removes only its session', async () => {
    const sb = sandbox();
    const ctx = oddCtx(sb);
    const assets = await loadAssets();
    const socket = `fleet-units-${process.pid}`;
    const workdir = join(sb.root, 'work dir');
    await mkdir(workdir, { recursive: true });
    const desired = fleet(
      [
        agent({
          name: 'coder0',
          runtime: 'stub',
          modelHint: 'test model',
          socketName: socket,
          workingDirectory: workdir,
        }),
      ],
      { stub: runtime('stub', `${ctx.toolsDir}/stub-agent.sh`) },
    );
    const [coder] = desired.agents;
    if (coder === undefined) throw new Error('no agent');
    await install([
      ...renderFrameworkFiles(assets.framework, ctx),
      ...renderUnits(desired, ctx, assets.templates),
    ]);
    const env = renderEnvFile(
      coder,
      ctx,
      'MOSAIC_HEARTBEAT_INTERVAL=1\nOPERATOR_TOKEN="secret value"\n',
      desired.runtimes,
    );
    await install([{ path: `${ctx.mosaicHome}/fleet/agents/coder0.env`, content: env, mode: 0o644 }]);
    await sb.systemctl('daemon-reload');

    const unit = agentUnitName('coder0');
    await sb.systemctl('start', unit);
    const { stdout: holderState } = await sb.systemctl('show', '-p', 'ActiveState', HOLDER_UNIT);
    expect(holderState.trim()).toBe('ActiveState=active');
    const { stdout: sessions } = await sb.tmux(socket, 'list-sessions', '-F', '#{session_name}');
    expect(sessions.trim().split('\n').sort()).toEqual(['_holder', 'coder0']);

    // The pane runs the runtime command with the model, in the agent's working directory.
    const { stdout: pane } = await sb.tmux(
      socket,
      'list-panes',
      '-t',
      '=coder0:',
      '-F',
      '#{pane_pid}\t#{pane_current_path}',
    );
    const [pid, path] = pane.trim().split('\t');
    expect(path).toBe(workdir);
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8')
      .split('\0')
      .filter((a) => a !== '');
    expect(argv.slice(-3)).toEqual([`${ctx.toolsDir}/stub-agent.sh`, '--model', 'test model']);
    // The agent sees its env file, operator keys included, although the holder started the tmux server.
    const environ = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
    expect(environ).toContain('OPERATOR_TOKEN=secret value');
    expect(environ).toContain('MOSAIC_AGENT_NAME=coder0');
    expect(environ).toContain('MOSAIC_TMUX_SOCKET=' + socket);

    // The stub got MOSAIC_HOME and its interval from the env file, through tmux, and beats.
    const hbPath = `${ctx.mosaicHome}/fleet/run/coder0.hb`;
    const hb = await waitFor(
      'a heartbeat',
      () => (existsSync(hbPath) ? readFileSync(hbPath, 'utf8') : null),
      15_000,
    );
    expect(hb).toMatch(/^ts=\d+\npid=\d+\nmodel=test model\n$/);

    // Restarting the holder must not take the agents' tmux server down with it (KillMode=process).
    await sb.systemctl('restart', HOLDER_UNIT);
    await sb.tmux(socket, 'has-session', '-t', exactSession('coder0'));

    await sb.systemctl('stop', unit);
    const { stdout: after } = await sb.tmux(socket, 'list-sessions', '-F', '#{session_name}');
    expect(after.trim()).toBe('_holder');
  });
});
