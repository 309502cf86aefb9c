/**
 * The `waiting` alert with a real Claude Code: a tool call held at its permission dialog, a rule with `after: 3s`,
 * watch mode, and a webhook receiver on loopback. Exactly one `waiting` alert arrives within after + 2 s of the
 * dialog (its hook's whole-second `since=` adds up to one more), exactly one `resolved` after the dialog is
 * answered, and nothing else over the next 30 s.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, expect, it } from 'vitest';
import { FLEET_BIN, REPO } from '../helpers/cli.js';
import { waitFor } from '../helpers/fleet.js';
import { describeRuntimes } from './bed.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Got {
  at: number;
  body: { condition: string; agent: string; resolved: boolean; since: string };
}

const got: Got[] = [];
let server: Server | undefined;
afterAll(() => {
  server?.closeAllConnections();
  server?.close();
});

async function receiver(): Promise<string> {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (b: Buffer) => chunks.push(b));
    req.on('end', () => {
      got.push({ at: Date.now(), body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Got['body'] });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => server?.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/alerts`;
}

const YAML = [
  'runtimes:',
  '  claude:',
  "    args: ['--permission-mode', 'default']",
  'alerts:',
  '  - when: [waiting]',
  '    after: 3s',
  '    send: {webhook: {url_env: FLEET_TEST_ALERT_URL}}',
].join('\n');

describeRuntimes('alerts with a real claude', ['claude'], (bed) => {
  it('one waiting alert within after + 2 s in watch mode, one resolved after the answer, nothing more', async () => {
    const b = bed();
    const url = await receiver();
    await b.setup([{ name: 'cc0', runtime: 'claude' }], YAML);
    const r = await b.fleet('reconcile');
    expect(r.code, r.stderr).toBe(0);
    await b.waitState('cc0', 'idle', 90_000);
    let out = '';
    const watcher: ChildProcess = spawn(
      process.execPath,
      [FLEET_BIN, 'reconcile', '--watch', '--json', '--interval', '60'],
      { env: { ...b.sb.env, FLEET_TEST_ALERT_URL: url }, cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    watcher.stdout?.on('data', (c: Buffer) => (out += c.toString()));
    watcher.stderr?.on('data', (c: Buffer) => (out += c.toString()));
    try {
      await waitFor(
        'the watcher',
        () => out.includes('"event":"plan"'),
        30_000,
        () => out,
      );
      b.server.on({
        match: 'fleet-alert-probe',
        toolCall: { name: 'Bash', input: { command: 'touch alert-probe' } },
      });
      await b.type('cc0', 'fleet-alert-probe: make a file');
      await b.waitState('cc0', 'waiting', 30_000);
      const since = Number(b.heartbeat('cc0').since) * 1000;
      await waitFor(
        'the waiting alert',
        () => got.length > 0,
        20_000,
        () => out,
      );
      expect(got[0]?.body).toMatchObject({ condition: 'waiting', agent: 'cc0', resolved: false });
      // The hook's `since=` is whole seconds: the dialog appeared up to 1 s after it.
      expect((got[0]?.at ?? 0) - since).toBeLessThanOrEqual(3_000 + 2_000 + 1_000);
      await sleep(2_000);
      expect(got).toHaveLength(1);
      // Answer the dialog (its default, "Yes"): the tool runs, its PostToolUse hook says busy, the turn ends idle.
      // (Refusing with Esc this long after the dialog appeared left the heartbeat at `waiting` here: reported.)
      await b.keys('cc0', 'Enter');
      let screen = '';
      await waitFor(
        'the resolved message',
        async () => {
          screen = await b.capture('cc0');
          return got.length > 1;
        },
        30_000,
        () => `${out}\nheartbeat: ${JSON.stringify(b.heartbeat('cc0'))}\nscreen:\n${screen}`,
      );
      expect(got[1]?.body).toMatchObject({ condition: 'waiting', agent: 'cc0', resolved: true });
      await sleep(30_000);
      expect(got.map((g) => [g.body.condition, g.body.resolved])).toEqual([
        ['waiting', false],
        ['waiting', true],
      ]);
    } finally {
      if (watcher.exitCode === null) {
        const exited = new Promise<void>((resolve) => watcher.once('exit', () => resolve()));
        watcher.kill('SIGTERM');
        await exited;
      }
    }
  }, 240_000);
});
