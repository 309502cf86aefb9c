/**
 * What the register (docs/hosts.md) says about ownership, as observed at the start of a cycle, and what the
 * ownership decider (src/plan/deciders/ownership.ts) decides from it. Pure types.
 */

export interface OwnershipRow {
  agent: string;
  holder: string;
  epoch: number;
  released: boolean;
}

/** What the register said at the start of the cycle. */
export interface RegisterSnapshot {
  /** The register's clock (unix ms): leases are judged by it, not by this host's clock. */
  nowMs: number;
  ownership: Record<string, OwnershipRow>;
  /** Each host's lease end (unix ms). */
  leaseEnds: Record<string, number>;
}

/**
 * What this host knew at its last successful publication: the agents it held, and until when (this host's clock)
 * no other host can have taken them over: that publication's time + lease + takeover_after.
 */
export interface LastContact {
  held: readonly string[];
  safeUntilMs: number;
}

/** The register as one cycle observed it (only for a fleet with `register:`). */
export interface ObservedRegister {
  /** null when it could not be read (unreachable, refused): ownership is then unknown. */
  snapshot: RegisterSnapshot | null;
  /**
   * Why the snapshot is null: `register unreachable` for an outage, else the one line of the refusal (no rights,
   * a newer schema): the plan's reasons say which, since only an outage passes by itself. null with a snapshot.
   */
  unreadable: string | null;
  /** Only read when the snapshot is null: what the last successful publication said. */
  lastContact: LastContact | null;
}

export type OwnershipDecision =
  | { agent: string; kind: 'hold'; epoch: number; reason: string }
  | { agent: string; kind: 'claim'; epoch: number; reason: string }
  | {
      agent: string;
      kind: 'wait';
      holder: string;
      /** In how long the holder's lease will have been over for takeover_after, if it is not renewed. */
      takeoverInMs: number;
      reason: string;
    }
  | { agent: string; kind: 'unknown'; reason: string }
  | { agent: string; kind: 'hand-over'; to: string; reason: string }
  | { agent: string; kind: 'fenced'; holder: string; reason: string };
