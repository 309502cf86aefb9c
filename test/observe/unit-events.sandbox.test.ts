/**
 * unit-events against the real systemd user manager of the sandbox: a stop and a failure of our units are
 * reported at once, naming the unit and its new state, on the private socket and on the user bus; a manager
 * that re-executes drops us, and we come back; close() leaves nothing open; no socket at all is an error, not
 * an exception. (The bound of 2 s is generous on purpose: the point is that nothing waits for a poll.)
 */
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  watchUnitEvents,
  type UnitEvent,
  type UnitEventSource,
  type UnitEventTransport,
} from '../../src/observe/unit-events.js';
import { describeSandbox, type Sandbox } from '../sandbox.js';

const BOUND_MS = 2_000;

interface Seen extends UnitEvent {
  at: number;
}

interface Listener {
  source: UnitEventSource;
  events: Seen[];
  errors: Error[];
  connected: UnitEventTransport[];
  until(what: string, pred: () => boolean, ms?: number): Promise<void>;
  /** The first event for `unit` with `state` after `since`, waited for up to BOUND_MS; its delay from `since`. */
  delayOf(unit: string, state: string, since: number): Promise<number>;
}

function listen(env: NodeJS.ProcessEnv): Listener {
  const events: Seen[] = [];
  const errors: Error[] = [];
  const connected: UnitEventTransport[] = [];
  let wake: () => void = () => undefined;
  const source = watchUnitEvents(
    env,
    (e) => {
      events.push({ ...e, at: Date.now() });
      wake();
    },
    (e) => {
      errors.push(e);
      wake();
    },
    {
      onConnected: (t) => {
        connected.push(t);
        wake();
      },
    },
  );
  const until = async (what: string, pred: () => boolean, ms = 10_000): Promise<void> => {
    const deadline = Date.now() + ms;
    while (!pred()) {
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(
          `timed out after ${ms} ms waiting for ${what}; events ${JSON.stringify(events)}; errors ${JSON.stringify(errors.map((e) => e.message))}`,
        );
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  };
  const delayOf = async (unit: string, state: string, since: number): Promise<number> => {
    const match = (): Seen | undefined =>
      events.find((e) => e.at >= since && e.unit === unit && e.activeState === state);
    await until(`${unit} ${state}`, () => match() !== undefined, BOUND_MS);
    return match()!.at - since;
  };
  return { source, events, errors, connected, until, delayOf };
}

/** Inodes of this process's open sockets. */
function openSockets(): Set<string> {
  const out = new Set<string>();
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const link = readlinkSync(`/proc/self/fd/${fd}`);
      if (link.startsWith('socket:')) out.add(link);
    } catch {
      // closed meanwhile
    }
  }
  return out;
}

/** PIDs of this process's children (any thread's). */
function children(): string[] {
  return readdirSync('/proc/self/task')
    .flatMap((tid) => readFileSync(`/proc/self/task/${tid}/children`, 'utf8').trim().split(/\s+/))
    .filter(Boolean)
    .sort();
}

const AGENT_TEMPLATE = [
  '[Service]',
  'Type=oneshot',
  'RemainAfterExit=yes',
  // The instance named "bad" fails to start: a failure without anything else in the way.
  'ExecStart=/bin/sh -c \'test "%i" != bad\'',
  '',
].join('\n');

describeSandbox('unit events: systemd tells watch mode at once when our units change state', (sandbox) => {
  let sb: Sandbox;
  beforeAll(async () => {
    sb = sandbox();
    await sb.writeUnit('mosaic-agent@.service', AGENT_TEMPLATE);
    await sb.writeUnit(
      'unrelated.service',
      '[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/true\n',
    );
    await sb.systemctl('daemon-reload');
  });

  it('on the private socket: a stop and a failure, named with their new state, within 2 s; nothing else', async () => {
    const l = listen({ ...sb.env });
    try {
      await l.until('connected', () => l.connected.length === 1);
      expect(l.connected[0]).toEqual({
        kind: 'private',
        socketPath: join(sb.env.XDG_RUNTIME_DIR!, 'systemd', 'private'),
      });

      const t1 = 'mosaic-agent@t1.service';
      let since = Date.now();
      await sb.systemctl('start', t1);
      expect(await l.delayOf(t1, 'active', since)).toBeLessThan(BOUND_MS);

      since = Date.now();
      await sb.systemctl('stop', t1);
      expect(await l.delayOf(t1, 'inactive', since)).toBeLessThan(BOUND_MS);

      since = Date.now();
      const failed = await sb.run(['systemctl', '--user', 'start', 'mosaic-agent@bad.service'], {
        reject: false,
      });
      expect(failed.exitCode).not.toBe(0);
      expect(await l.delayOf('mosaic-agent@bad.service', 'failed', since)).toBeLessThan(BOUND_MS);

      await sb.systemctl('start', 'unrelated.service');
      await sb.systemctl('stop', 'unrelated.service');
      // A marker after them: once it is seen, anything about unrelated.service would have been seen too.
      since = Date.now();
      await sb.systemctl('start', t1);
      await l.delayOf(t1, 'active', since);
      expect(l.events.filter((e) => !e.unit.startsWith('mosaic-agent@'))).toEqual([]);
      expect(l.errors).toEqual([]);
    } finally {
      await l.source.close();
    }
  });

  it('on the user bus when there is no private socket: subscribes, then the same events', async (ctx) => {
    // The bus is dbus.socket's (socket-activated); this machine's dbus-user-session ships it.
    const socketUnit = await sb.run(['systemctl', '--user', 'is-active', 'dbus.socket'], { reject: false });
    if (socketUnit.stdout.trim() !== 'active')
      ctx.skip(`no user bus here (dbus.socket: ${socketUnit.stdout.trim()})`);
    // Start the bus and wait until the manager is on it, so Subscribe does not race the manager joining.
    const deadline = Date.now() + 10_000;
    for (;;) {
      const ping = await sb.run(
        [
          'busctl',
          '--user',
          'call',
          'org.freedesktop.systemd1',
          '/org/freedesktop/systemd1',
          'org.freedesktop.DBus.Peer',
          'Ping',
        ],
        { reject: false },
      );
      if (ping.exitCode === 0) break;
      if (Date.now() > deadline) throw new Error(`systemd never joined the user bus: ${ping.stderr}`);
      await new Promise((r) => setTimeout(r, 100));
    }

    const bus = join(sb.env.XDG_RUNTIME_DIR!, 'bus');
    const l = listen({ DBUS_SESSION_BUS_ADDRESS: `unix:path=${bus}` });
    try {
      await l.until('connected', () => l.connected.length === 1);
      expect(l.connected[0]).toEqual({ kind: 'user-bus', socketPath: bus });
      const t2 = 'mosaic-agent@t2.service';
      let since = Date.now();
      await sb.systemctl('start', t2);
      expect(await l.delayOf(t2, 'active', since)).toBeLessThan(BOUND_MS);
      since = Date.now();
      await sb.systemctl('stop', t2);
      expect(await l.delayOf(t2, 'inactive', since)).toBeLessThan(BOUND_MS);
      expect(l.errors).toEqual([]);
    } finally {
      await l.source.close();
    }
  });

  it('close() leaves no socket and no child process behind', async () => {
    const socketsBefore = openSockets();
    const childrenBefore = children();
    const l = listen({ ...sb.env });
    await l.until('connected', () => l.connected.length === 1);
    const ours = [...openSockets()].filter((s) => !socketsBefore.has(s));
    expect(ours).toHaveLength(1); // the check below can fail: there is a socket to find
    expect(children()).toEqual(childrenBefore);
    await l.source.close();
    expect(l.source.transport()).toBeNull();
    const after = openSockets();
    expect(ours.filter((s) => after.has(s))).toEqual([]);
    expect(children()).toEqual(childrenBefore);
    // Closed means deaf: a later change reports nothing.
    await sb.systemctl('restart', 'mosaic-agent@t1.service');
    expect(l.events).toEqual([]);
    expect(l.errors).toEqual([]);
  });

  it('a manager that re-executes drops us: one error, a reconnection, and events again', async () => {
    const l = listen({ ...sb.env });
    try {
      await l.until('connected', () => l.connected.length === 1);
      await sb.systemctl('daemon-reexec');
      await l.until('the drop', () => l.errors.length === 1);
      expect(l.errors[0]?.message).toMatch(/lost the connection to systemd/);
      await l.until('connected again', () => l.connected.length === 2);
      const since = Date.now();
      await sb.systemctl('stop', 'mosaic-agent@t1.service');
      expect(await l.delayOf('mosaic-agent@t1.service', 'inactive', since)).toBeLessThan(BOUND_MS);
      expect(l.errors).toHaveLength(1);
    } finally {
      await l.source.close();
    }
  });
});

describe('unit events without a systemd to listen to', () => {
  it('report one error, throw nothing, keep retrying quietly, and stop when closed', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'fleet-ue-none-'));
    try {
      const l = listen({ XDG_RUNTIME_DIR: empty });
      await l.until('the error', () => l.errors.length === 1);
      expect(l.errors[0]?.message).toMatch(
        /systemd unit events unavailable: no socket of the systemd user manager/,
      );
      // Two retries later (0.5 s, then 1 s), still the one report.
      await new Promise((r) => setTimeout(r, 1_700));
      expect(l.errors).toHaveLength(1);
      const timersBefore = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
      await l.source.close();
      const timersAfter = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
      expect(timersAfter).toBe(timersBefore - 1); // the pending retry is gone
      expect(l.events).toEqual([]);
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });
});
