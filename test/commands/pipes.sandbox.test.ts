/**
 * A closed stdout at fleet scale: `fleet reconcile | head -c 100` on a fresh 50-agent install applies the whole
 * plan, journals it, frees the lock and prints no stack trace; the next dry-run is in sync.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { FLEET_BIN, runFleet } from '../helpers/cli.js';
import { uniqueSocket } from '../helpers/fleet.js';
import { describeSandbox } from '../sandbox.js';

describeSandbox('closed pipes at fleet scale', (sandbox) => {
  it('`fleet reconcile | head -c 100` on a fresh 50-agent install: applied, journaled, lock free, then in sync', async () => {
    const sb = sandbox();
    const names = Array.from({ length: 50 }, (_, i) => `p${String(i).padStart(2, '0')}`);
    mkdirSync(join(sb.paths.mosaicHome, 'fleet'), { recursive: true });
    writeFileSync(
      join(sb.paths.mosaicHome, 'fleet', 'roster.yaml'),
      [
        'version: 1',
        `tmux: {socket_name: ${uniqueSocket('fleet-pipe')}}`,
        'agents:',
        ...names.map((n) => `  - {name: ${n}, runtime: stub, model_hint: m}`),
        '',
      ].join('\n'),
    );
    const child = spawn(
      'bash',
      ['-c', `"${process.execPath}" "${FLEET_BIN}" reconcile | head -c 100; exit "\${PIPESTATUS[0]}"`],
      {
        env: { ...sb.env, NO_COLOR: '1' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((r) => child.on('close', (c) => r(c)));
    expect(out.length).toBe(100);
    expect(err).not.toMatch(/\n\s+at |Error:/);
    expect(code).toBe(0);
    const journal = readFileSync(join(sb.paths.stateDir, 'journal.jsonl'), 'utf8').trim().split('\n');
    const last = JSON.parse(journal.at(-1) ?? '{}') as {
      command: string;
      result: string;
      actions: unknown[];
    };
    expect(last).toMatchObject({ command: 'fleet reconcile', result: 'ok' });
    expect(last.actions.length).toBeGreaterThan(100);
    expect(existsSync(join(sb.paths.stateDir, 'lock'))).toBe(false);
    const dry = await runFleet(sb.env, ['reconcile', '--dry-run', '--detailed-exitcode'], {
      logDir: sb.root,
    });
    expect(dry.code, dry.stdout).toBe(0);
  }, 180_000);
});
