/**
 * Watch mode's deliveries, off the cycle (docs/alerts.md): a cycle judges the alerts and remembers the episodes
 * under the lock, hands what is due to this queue and ends, so the next cycle (a killed pane's heal, the register's
 * lease) never waits for a sink. The queue sends within the same bounds as a one-shot run, then records the
 * results (under the lock, by the caller's `record`). A message in flight is never handed out again by a later
 * cycle of this watcher, so it is not sent twice; a watcher killed before recording retries it (at least once).
 */
import type { DeliveryReport } from './deliver.js';
import type { DueDelivery } from './episodes.js';

const idOf = (d: DueDelivery): string =>
  [d.episode.rule, d.episode.agent, d.episode.condition, d.episode.sinceMs, d.which].join('\u0000');

export class DeliveryQueue {
  private readonly inFlight = new Set<string>();
  private readonly running = new Set<Promise<void>>();

  constructor(
    private readonly record: (reports: DeliveryReport[], started: Date) => Promise<void>,
    private readonly onError: (error: Error) => void,
  ) {}

  /** Whether this message is being sent now. */
  sending(d: DueDelivery): boolean {
    return this.inFlight.has(idOf(d));
  }

  /** Send in the background; the results are recorded when every message of the batch has an answer. */
  send(due: readonly DueDelivery[], deliver: () => Promise<DeliveryReport[]>): void {
    const ids = due.map(idOf);
    for (const id of ids) this.inFlight.add(id);
    const started = new Date();
    const job: Promise<void> = deliver()
      .then((reports) => this.record(reports, started))
      .catch((error: unknown) => this.onError(error instanceof Error ? error : new Error(String(error))))
      .finally(() => {
        for (const id of ids) this.inFlight.delete(id);
        this.running.delete(job);
      });
    this.running.add(job);
  }

  /** Every batch sent and recorded (a stopping watcher waits for this: bounded by the delivery limits). */
  async idle(): Promise<void> {
    while (this.running.size > 0) await Promise.all([...this.running]);
  }
}
