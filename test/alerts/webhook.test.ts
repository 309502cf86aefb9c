/**
 * Alert delivery against a real HTTP receiver on loopback: whatever the receiver does (nothing listening, 500,
 * an answer 30 s late, a 100 MB reply, a redirect), delivery ends within its bounds, retries a bounded number of
 * times, journals the result and keeps an undelivered alert pending in the state file.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runAlerts } from '../../src/alerts/run.js';
import { MAX_DELIVERY_ATTEMPTS } from '../../src/alerts/episodes.js';
import type { DeliveryLimits } from '../../src/alerts/deliver.js';
import { createRunner } from '../../src/exec.js';
import type { AlertRule } from '../../src/model/desired.js';
import { readState } from '../../src/observe/files.js';
import { readJournal } from '../../src/apply/journal.js';
import { writeState } from '../../src/apply/state.js';
import { agent, fleet, NOW_SEC, observedBuilder, runtime } from '../helpers/builders.js';

const LIMITS: DeliveryLimits = { attemptTimeoutMs: 1000, totalMs: 2500, triesPerCycle: 2, retryPauseMs: 100 };

interface Receiver {
  url: string;
  bodies: string[];
  close(): Promise<void>;
  server: Server;
}

async function receiver(
  handle: (req: IncomingMessage, res: ServerResponse, n: number) => void,
): Promise<Receiver> {
  const bodies: string[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (b: Buffer) => chunks.push(b));
    req.on('end', () => {
      bodies.push(Buffer.concat(chunks).toString('utf8'));
      handle(req, res, bodies.length);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/hook?token=secret`,
    bodies,
    server,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

let home: string;
let stateDir: string;
let receivers: Receiver[] = [];

beforeEach(() => {
  home = mkdtempSync(join(tmpdir(), 'fleet-alerts-'));
  stateDir = join(home, 'fleet', 'reconciler');
  mkdirSync(stateDir, { recursive: true });
  receivers = [];
});
afterEach(async () => {
  await Promise.all(receivers.map((r) => r.close()));
  rmSync(home, { recursive: true, force: true });
});

const RULE: AlertRule = {
  name: 'ops',
  when: ['waiting'],
  agents: null,
  afterSeconds: 3,
  send: { kind: 'webhook', urlEnv: 'TEST_ALERT_URL' },
  source: { file: 'roster.yaml', line: 1, col: 1 },
};

/** One look at a claude agent waiting for 60 s, and the alerts step after it. */
function step(url: string | undefined, waiting = true) {
  const a = agent('c1', { runtime: 'claude', tenantId: 't1' });
  const o = observedBuilder()
    .healthyAgent(a, { pid: 4242, argv: ['claude'] })
    .heartbeatRaw(
      'c1',
      `ts=${NOW_SEC - 1}\nstate=${waiting ? 'waiting' : 'idle'}\nsince=${NOW_SEC - 60}\nevent=PermissionRequest\npid=4242\n`,
    )
    .build();
  const desired = fleet([a], {
    alerts: [RULE],
    runtimes: { claude: runtime('claude', { state: 'claude-hooks' }) },
  });
  return runAlerts({
    desired,
    observed: o,
    stateDir,
    runner: createRunner(),
    command: 'fleet reconcile',
    env: url === undefined ? {} : { TEST_ALERT_URL: url },
    limits: LIMITS,
  });
}

async function timed<T>(f: () => Promise<T>): Promise<[T, number]> {
  const t = Date.now();
  const r = await f();
  return [r, Date.now() - t];
}

describe('webhook delivery', () => {
  it('delivers the alert JSON once, journals it, and never repeats it; the end sends one resolved', async () => {
    const r = await receiver((_q, res) => res.writeHead(204).end());
    receivers.push(r);
    await step(r.url);
    await step(r.url);
    expect(r.bodies).toHaveLength(1);
    const msg = JSON.parse(r.bodies[0] ?? '{}') as Record<string, unknown>;
    expect(msg).toMatchObject({
      condition: 'waiting',
      agent: 'c1',
      host: 'testhost',
      tenant: 't1',
      since: new Date((NOW_SEC - 60) * 1000).toISOString(),
      state: 'waiting',
      resolved: false,
      rule: 'ops',
    });
    expect(String(msg.detail)).toContain('PermissionRequest');
    const state = await readState(stateDir);
    expect(state.alerts?.[0]?.fire?.status).toBe('delivered');
    await step(r.url, false);
    expect(r.bodies).toHaveLength(2);
    expect(JSON.parse(r.bodies[1] ?? '{}')).toMatchObject({ condition: 'waiting', resolved: true });
    expect((await readState(stateDir)).alerts).toBeUndefined();
    const journal = await readJournal(stateDir);
    expect(journal.flatMap((e) => e.actions.map((a) => [a.kind, a.outcome]))).toEqual([
      ['alert-fired', 'done'],
      ['alert-resolved', 'done'],
    ]);
    // The URL's path and query (which may hold a token) are never journaled.
    expect(JSON.stringify(journal)).not.toContain('secret');
  });

  it('receiver down: bounded tries, journaled as failed, kept pending in the state', async () => {
    const r = await receiver(() => {});
    const url = r.url;
    await r.close();
    const [out, ms] = await timed(() => step(url));
    expect(ms).toBeLessThan(LIMITS.totalMs + 2000);
    expect(out.deliveries[0]?.attempts).toBe(LIMITS.triesPerCycle);
    expect(out.deliveries[0]?.result.message).toContain('ECONNREFUSED');
    expect((await readState(stateDir)).alerts?.[0]?.fire).toMatchObject({ status: 'pending', attempts: 2 });
    const journal = await readJournal(stateDir);
    expect(journal[0]?.actions[0]).toMatchObject({ kind: 'alert-fired', outcome: 'failed' });
  });

  it('answering 500: retried a bounded number of times over all cycles, then given up, and never again', async () => {
    const r = await receiver((_q, res) => res.writeHead(500).end('boom: database down'));
    receivers.push(r);
    const a = await step(r.url);
    expect(a.deliveries[0]?.result.message).toBe('HTTP 500: boom: database down');
    // Retries across cycles wait a growing pause; bring the last attempt back to make the next one due now.
    for (let i = 0; i < 10; i++) {
      const s = await readState(stateDir);
      const e = s.alerts?.[0];
      if (e?.fire?.status !== 'pending') break;
      e.fire.lastAttemptMs = 0;
      await writeState(stateDir, s);
      await step(r.url);
    }
    expect(r.bodies).toHaveLength(MAX_DELIVERY_ATTEMPTS);
    expect((await readState(stateDir)).alerts?.[0]?.fire).toMatchObject({
      status: 'failed',
      attempts: MAX_DELIVERY_ATTEMPTS,
    });
    await step(r.url);
    expect(r.bodies).toHaveLength(MAX_DELIVERY_ATTEMPTS);
    const journal = await readJournal(stateDir);
    expect(journal.at(-1)?.actions[0]?.message).toContain(`given up after ${MAX_DELIVERY_ATTEMPTS} attempts`);
  });

  it('answering after 30 s: each attempt times out, the whole delivery ends within its bound', async () => {
    const r = await receiver((_q, res) => {
      setTimeout(() => res.writeHead(204).end(), 30_000).unref();
    });
    receivers.push(r);
    const [out, ms] = await timed(() => step(r.url));
    expect(ms).toBeLessThan(LIMITS.totalMs + 2000);
    expect(out.deliveries[0]?.result).toEqual({ ok: false, message: 'timed out after 1000 ms' });
    expect(r.bodies.length).toBeLessThanOrEqual(LIMITS.triesPerCycle);
  });

  it('a 100 MB reply is never read: the connection is dropped after a few KB', async () => {
    let written = 0;
    let finished = false;
    const r = await receiver((_q, res) => {
      res.writeHead(500, { 'content-type': 'text/plain' });
      const chunk = Buffer.alloc(1024 * 1024, 'x');
      const pump = (): void => {
        while (written < 100 * 1024 * 1024) {
          written += chunk.length;
          if (!res.write(chunk)) {
            res.once('drain', pump);
            return;
          }
        }
        finished = true;
        res.end();
      };
      res.on('close', () => {});
      pump();
    });
    receivers.push(r);
    const heapBefore = process.memoryUsage().heapUsed;
    const [out, ms] = await timed(() => step(r.url));
    expect(ms).toBeLessThan(LIMITS.totalMs + 2000);
    expect(out.deliveries[0]?.result.message).toMatch(/^HTTP 500: x{10}/);
    expect(out.deliveries[0]?.result.message.length).toBeLessThan(300);
    expect(finished).toBe(false);
    expect(written).toBeLessThan(50 * 1024 * 1024);
    expect(process.memoryUsage().heapUsed - heapBefore).toBeLessThan(40 * 1024 * 1024);
  });

  it('a redirect is not followed, to another host or the same', async () => {
    const other = await receiver((_q, res) => res.writeHead(204).end());
    receivers.push(other);
    const r = await receiver((_q, res) => res.writeHead(302, { location: other.url }).end());
    receivers.push(r);
    const out = await step(r.url);
    expect(out.deliveries[0]?.result.message).toMatch(
      /^HTTP 302: redirect to http:\/\/127\.0\.0\.1:\d+ not followed$/,
    );
    expect(other.bodies).toHaveLength(0);
  });

  it('a variable that is not set is a failed delivery naming it, not an error', async () => {
    const out = await step(undefined);
    expect(out.deliveries[0]?.result.message).toBe(
      "$TEST_ALERT_URL is not set in the reconciler's environment",
    );
  });
});
