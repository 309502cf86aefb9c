/**
 * Watch mode's background deliveries (src/alerts/background.ts) and how their results are put back into the
 * episodes the state file has by then (withDeliveries in src/alerts/episodes.ts).
 */
import { describe, expect, it } from 'vitest';
import { DeliveryQueue } from '../../src/alerts/background.js';
import type { DeliveryReport } from '../../src/alerts/deliver.js';
import { dueDeliveries, owesMessages, stepEpisodes, withDeliveries } from '../../src/alerts/episodes.js';
import type { Judgment } from '../../src/alerts/judge.js';
import type { AlertDelivery } from '../../src/model/observed.js';

const T0 = 1_800_000_000_000;
const judgment: Judgment = {
  rule: 'r',
  agent: 'a',
  condition: 'waiting',
  sinceMs: T0,
  afterMs: 1000,
  state: 'waiting',
  detail: 'waiting',
};
const fired = () => stepEpisodes([], [judgment], new Set(['r']), T0 + 2000);
const delivered: AlertDelivery = { status: 'delivered', attempts: 1, lastAttemptMs: T0 + 3000 };

describe('withDeliveries', () => {
  it('puts a result into the episode it was sent for, and only while that message is as it was when sent', () => {
    const eps = fired();
    const [due] = dueDeliveries(eps, T0 + 2000);
    if (due === undefined) throw new Error('nothing due');
    const after = withDeliveries(eps, [{ due, delivery: delivered }]);
    expect(after[0]?.fire).toEqual(delivered);
    expect(owesMessages(after)).toBe(false);
    // A cycle in between resolved and forgot the episode: the late result changes nothing.
    expect(withDeliveries([], [{ due, delivery: delivered }])).toEqual([]);
    // Another episode of the same rule, agent and condition (it began again): not this result's.
    const again = eps.map((e) => ({ ...e, sinceMs: T0 + 9000 }));
    expect(withDeliveries(again, [{ due, delivery: delivered }])[0]?.fire?.status).toBe('pending');
  });

  it('a resolved episode whose messages are settled is done with', () => {
    const eps = fired().map((e) => ({
      ...e,
      fire: delivered,
      resolvedAtMs: T0 + 5000,
      resolve: { status: 'pending' as const, attempts: 0, lastAttemptMs: null },
    }));
    const [due] = dueDeliveries(eps, T0 + 5000);
    if (due === undefined) throw new Error('nothing due');
    expect(due.which).toBe('resolve');
    expect(withDeliveries(eps, [{ due, delivery: delivered }])).toEqual([]);
  });
});

describe('DeliveryQueue', () => {
  it('a message in flight is not handed out again; its results are recorded once; idle waits for them', async () => {
    const eps = fired();
    const due = dueDeliveries(eps, T0 + 2000);
    const recorded: DeliveryReport[][] = [];
    const queue = new DeliveryQueue(
      (reports) => {
        recorded.push(reports);
        return Promise.resolve();
      },
      (e) => {
        throw e;
      },
    );
    let answer: (r: DeliveryReport[]) => void = () => undefined;
    queue.send(due, () => new Promise((r) => (answer = r)));
    expect(due.every((d) => queue.sending(d))).toBe(true);
    const idle = queue.idle();
    answer([]);
    await idle;
    expect(recorded).toEqual([[]]);
    expect(due.some((d) => queue.sending(d))).toBe(false);
  });

  it('a failing batch is reported, and its messages can be sent again', async () => {
    const errors: string[] = [];
    const queue = new DeliveryQueue(
      () => Promise.reject(new Error('lock never came')),
      (e) => errors.push(e.message),
    );
    const due = dueDeliveries(fired(), T0 + 2000);
    queue.send(due, () => Promise.resolve([]));
    await queue.idle();
    expect(errors).toEqual(['lock never came']);
    expect(due.some((d) => queue.sending(d))).toBe(false);
  });
});
