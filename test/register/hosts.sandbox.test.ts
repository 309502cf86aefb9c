/**
 * Two hosts simulated on one machine, each a sandbox of its own (private systemd user manager, tmux directory,
 * home and host name via MOSAIC_HOST), sharing one register in a private PostgreSQL. Each host runs its share;
 * an agent moved from h1 to h2 never runs on both (both tmux servers checked after every step), and h2 starts it
 * only after h1 recorded its stop.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runFleet, type CliResult } from '../helpers/cli.js';
import { describePostgres, useDatabase } from '../helpers/postgres.js';
import { sandboxRequired, sandboxUnavailableReason, startSandbox, type Sandbox } from '../sandbox.js';

const SOCKET = 'mosaic-fleet';

function roster(moverHost: string): string {
  return [
    'version: 1',
    'tmux: {socket_name: mosaic-fleet}',
    'register: {url_env: FLEET_REGISTER_URL, lease: 60s, takeover_after: 5m}',
    'agents:',
    '  - {name: a1, runtime: stub, host: h1}',
    '  - {name: b1, runtime: stub, host: h2}',
    `  - {name: mover, runtime: stub, host: ${moverHost}}`,
    '',
  ].join('\n');
}

describePostgres('an agent moving between two hosts', () => {
  const db = useDatabase();
  const hosts: Record<string, Sandbox> = {};
  let reason: string | null = null;

  beforeAll(async () => {
    reason = await sandboxUnavailableReason();
    if (reason !== null) {
      if (sandboxRequired()) throw new Error(`sandbox required but unavailable: ${reason}`);
      return;
    }
    for (const name of ['h1', 'h2']) {
      hosts[name] = await startSandbox({ env: { MOSAIC_HOST: name, FLEET_REGISTER_URL: db().dsn } });
    }
  });
  afterAll(async () => {
    await Promise.all(Object.values(hosts).map((sb) => sb.stop()));
  });

  const write = (text: string) => {
    for (const sb of Object.values(hosts)) {
      mkdirSync(sb.paths.manifests, { recursive: true });
      writeFileSync(join(sb.paths.manifests, 'roster.yaml'), text);
    }
  };
  const fleet = (host: string, ...args: string[]): Promise<CliResult> => {
    const sb = hosts[host];
    if (sb === undefined) throw new Error(`no sandbox ${host}`);
    return runFleet(sb.env, args, { logDir: sb.root });
  };
  const sessions = async (host: string): Promise<string[]> => {
    try {
      const r = await hosts[host]?.tmux(SOCKET, 'list-sessions', '-F', '#{session_name}');
      return (r?.stdout ?? '').split('\n').filter((s) => s !== '' && s !== '_holder');
    } catch {
      return [];
    }
  };
  /** Reconcile a host, then check that no agent runs on both hosts. */
  const reconcile = async (host: string): Promise<CliResult> => {
    const r = await fleet(host, 'reconcile', '--yes');
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    const [s1, s2] = [await sessions('h1'), await sessions('h2')];
    expect(
      s1.filter((s) => s2.includes(s)),
      `h1 ${s1.join(',')} / h2 ${s2.join(',')}`,
    ).toEqual([]);
    return r;
  };

  it('each host runs its share, and ps --all-hosts shows every agent with its host', async (ctx) => {
    if (reason !== null) ctx.skip();
    write(roster('h1'));
    expect((await fleet('h1', 'register', 'migrate')).code).toBe(0);
    // The first cycle claims, the second starts (a start needs the claim observed).
    for (let i = 0; i < 2; i++) {
      await reconcile('h1');
      await reconcile('h2');
    }
    expect((await sessions('h1')).sort()).toEqual(['a1', 'mover']);
    expect(await sessions('h2')).toEqual(['b1']);
    const view = JSON.parse((await fleet('h2', 'ps', '--all-hosts', '--json')).stdout) as {
      agents: { host: string; agent: string }[];
    };
    expect(view.agents.map((a) => `${a.host}/${a.agent}`)).toEqual(['h1/a1', 'h1/mover', 'h2/b1']);
  });

  it('a moved agent is stopped on h1 first; h2 starts it only after h1 recorded that', async (ctx) => {
    if (reason !== null) ctx.skip();
    write(roster('h2'));
    // h2 first: h1 still holds it, so h2 holds its start.
    const waiting = await fleet('h2', 'reconcile', '--dry-run');
    expect(waiting.stdout).toMatch(/waits for h1 to stop it/);
    await reconcile('h2');
    expect(await sessions('h2')).not.toContain('mover');
    expect(await sessions('h1')).toContain('mover');
    // h1 stops it (the stub is idle) and records the release.
    await reconcile('h1');
    expect(await sessions('h1')).not.toContain('mover');
    // h2 claims it from h1's record, then starts it.
    await reconcile('h2');
    await reconcile('h2');
    expect(await sessions('h2')).toContain('mover');
    expect(await sessions('h1')).not.toContain('mover');
    await reconcile('h1');
    expect(await sessions('h1')).not.toContain('mover');
  });
});
