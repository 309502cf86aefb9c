import { describe, expect, it } from 'vitest';
import {
  applyOwnership,
  decideOwnership,
  type OwnershipAgent,
  type RegisterSnapshot,
} from '../../../src/plan/deciders/ownership.js';
import type { Plan } from '../../../src/model/plan.js';
import { agent, fleet, HOSTNAME, NOW_MS, observedBuilder } from '../../helpers/builders.js';
import { lines, planFor } from '../../helpers/planning.js';

const NOW = 1_800_000_000_000;
const a = (over: Partial<OwnershipAgent> = {}): OwnershipAgent => ({
  name: 'x',
  host: 'h2',
  local: true,
  runningHere: false,
  idle: true,
  ...over,
});
const reg = (over: Partial<RegisterSnapshot> = {}): RegisterSnapshot => ({
  nowMs: NOW,
  ownership: {},
  leaseEnds: { h1: NOW + 30_000, h2: NOW + 30_000 },
  ...over,
});
const decide = (agent: OwnershipAgent, register: RegisterSnapshot | null) =>
  decideOwnership({ host: 'h2', takeoverAfterMs: 300_000, agents: [agent], register })[0];

describe('ownership decider', () => {
  it('claims an agent nobody holds, holds one it holds', () => {
    expect(decide(a(), reg())).toMatchObject({ kind: 'claim', epoch: 0 });
    expect(
      decide(a(), reg({ ownership: { x: { agent: 'x', holder: 'h2', epoch: 3, released: false } } })),
    ).toMatchObject({ kind: 'hold', epoch: 3 });
  });

  it('waits while the old host holds it and its lease runs; claims once it recorded the stop', () => {
    const held = { x: { agent: 'x', holder: 'h1', epoch: 4, released: false } };
    // h1's lease ends in 30 s: taken over 300 s after that, unless h1 renews it.
    expect(decide(a(), reg({ ownership: held }))).toMatchObject({
      kind: 'wait',
      holder: 'h1',
      takeoverInMs: 330_000,
    });
    expect(decide(a(), reg({ ownership: { x: { ...held.x, released: true } } }))).toMatchObject({
      kind: 'claim',
      epoch: 4,
      reason: 'h1 recorded that it stopped it (epoch 4)',
    });
  });

  it('takes over from a dead host only after its lease has been over for takeover_after', () => {
    const held = { x: { agent: 'x', holder: 'h1', epoch: 4, released: false } };
    const over = (ms: number) => reg({ ownership: held, leaseEnds: { h1: NOW - ms } });
    expect(decide(a(), over(299_000))).toMatchObject({ kind: 'wait', takeoverInMs: 1_000 });
    expect(decide(a(), over(300_000))).toMatchObject({ kind: 'claim', epoch: 4 });
  });

  it('with the register unreachable: keeps what runs, starts nothing', () => {
    expect(decide(a({ runningHere: true }), null)).toMatchObject({ kind: 'unknown' });
    expect(decide(a(), null)).toMatchObject({
      kind: 'unknown',
      reason: 'register unreachable: not started until its ownership is confirmed',
    });
  });

  it('with a register that refused (no rights, a newer schema), the reason says so, not "unreachable"', () => {
    const [d] = decideOwnership({
      host: 'h2',
      takeoverAfterMs: 300_000,
      agents: [a()],
      register: null,
      unreadable: 'register: permission denied for schema fleet',
    });
    expect(d).toMatchObject({
      kind: 'unknown',
      reason: 'register: permission denied for schema fleet: not started until its ownership is confirmed',
    });
  });

  it('with the register unreachable, heals what it held at the last contact while no one can have taken it', () => {
    const at = (nowMs: number) =>
      decideOwnership({
        host: 'h2',
        takeoverAfterMs: 300_000,
        agents: [a()],
        register: null,
        lastContact: { held: ['x'], safeUntilMs: NOW },
        nowMs,
      })[0];
    expect(at(NOW - 1)).toMatchObject({ kind: 'hold' });
    expect(at(NOW)).toMatchObject({ kind: 'unknown' });
  });

  it('a copy running here while another host holds a later epoch is fenced', () => {
    const held = { x: { agent: 'x', holder: 'h1', epoch: 5, released: false } };
    expect(decide(a({ runningHere: true }), reg({ ownership: held }))).toMatchObject({ kind: 'fenced' });
  });

  it('an agent moved away that still runs here is handed over; one that does not is left alone', () => {
    expect(decide(a({ host: 'h3', local: false, runningHere: true }), reg())).toMatchObject({
      kind: 'hand-over',
      to: 'h3',
    });
    expect(decide(a({ host: 'h3', local: false }), reg())).toBeUndefined();
    expect(decide(a({ host: null }), reg())).toBeUndefined();
  });
});

describe('applyOwnership', () => {
  const plan = (actions: Plan['actions']): Plan => ({
    formatVersion: 1,
    observedDigest: 'd',
    actions,
    orphans: [],
    notRunning: [],
    skipped: [],
    warnings: [],
    deferred: [],
    held: [],
    deferredRestarts: [],
    restartPending: {},
    backoffResets: [],
    patch: [],
    summary: { add: 0, change: 0, remove: 0, other: 0 },
  });
  const units = { unit: (n: string) => `mosaic-agent@${n}.service`, idle: () => true };

  it('holds the start (and the boot enable) of an agent this host does not hold, with the reason', () => {
    const p = plan([
      { kind: 'enable', unit: 'mosaic-agent@x.service', agent: 'x', reason: 'boot' },
      { kind: 'start', unit: 'mosaic-agent@x.service', agent: 'x', reason: 'not running' },
      { kind: 'start', unit: 'mosaic-agent@y.service', agent: 'y', reason: 'not running' },
    ]);
    const out = applyOwnership(
      p,
      [{ agent: 'x', kind: 'wait', holder: 'h1', takeoverInMs: 1_000, reason: 'waits for h1' }],
      units,
    );
    expect(out.actions.map((x) => `${x.kind} ${'agent' in x ? x.agent : ''}`)).toEqual(['start y']);
    expect(out.held).toEqual([{ agent: 'x', action: 'start', need: 'not running', reason: 'waits for h1' }]);
  });

  it('stops and disables an agent handed over once it is idle; only warns while it is busy', () => {
    const d = [{ agent: 'x', kind: 'hand-over' as const, to: 'h3', reason: 'moved to h3' }];
    expect(applyOwnership(plan([]), d, units).actions.map((x) => x.kind)).toEqual(['stop', 'disable']);
    const busy = applyOwnership(plan([]), d, { ...units, idle: () => false });
    expect(busy.actions).toEqual([]);
    expect(busy.warnings).toEqual(['x: moved to h3']);
  });
});

describe('ownership inside plan()', () => {
  const desired = fleet([agent('x', { host: HOSTNAME }), agent('y', { host: 'h9' }), agent('z')], {
    register: { urlEnv: 'R', urlFile: null, leaseSeconds: 60, takeoverAfterSeconds: 300 },
  });
  const startsOf = (p: Plan) =>
    lines(p).flatMap((l) => (l.kind === 'start' && l.target.startsWith('mosaic-agent@') ? [l.target] : []));

  it('with the register read: starts only what this host holds; the decisions ride on the plan', () => {
    const observed = observedBuilder().build();
    observed.register = {
      snapshot: {
        nowMs: NOW_MS,
        ownership: { x: { agent: 'x', holder: 'h9', epoch: 2, released: false } },
        leaseEnds: { h9: NOW_MS + 30_000 },
      },
      unreadable: null,
      lastContact: null,
    };
    const p = planFor(desired, observed);
    expect(startsOf(p)).toEqual(['mosaic-agent@z.service']);
    expect(p.held.map((h) => `${h.agent}: ${h.reason}`)).toEqual([
      expect.stringMatching(/^x: waits for h9 to stop it/),
    ]);
    expect(p.ownership?.map((d) => `${d.agent} ${d.kind}`)).toEqual(['x wait']);
    // The summary counts what the plan does, after ownership held x's start and its boot enable.
    const all = planFor(fleet(desired.agents), observedBuilder().build());
    expect(p.summary.other).toBe(all.summary.other - 2);
    expect(p.actions.filter((a) => 'agent' in a && a.agent === 'x').map((a) => a.kind)).not.toContain(
      'enable',
    );
  });

  it('without a register: no decisions and nothing held', () => {
    const p = planFor(fleet(desired.agents), observedBuilder().build());
    expect(p.ownership).toBeUndefined();
    expect(startsOf(p)).toContain('mosaic-agent@x.service');
  });

  it('the register unreachable: nothing with a host: is started, the rest is', () => {
    const observed = observedBuilder().build();
    observed.register = { snapshot: null, unreadable: 'register unreachable', lastContact: null };
    const p = planFor(desired, observed);
    expect(startsOf(p)).toEqual(['mosaic-agent@z.service']);
    expect(p.ownership?.map((d) => d.kind)).toEqual(['unknown']);
  });
});
