/**
 * Leader-local broker sessions (Kafka's `broker.session.timeout.ms`).
 *
 * Heartbeats are not written to the Raft log: only the leader tracks when it last heard
 * from each broker, and it proposes `FenceBroker` when a session expires. A new leader knows
 * nothing of the old leader's clocks, so it starts every broker's session afresh when it
 * takes over (a grace period of one session timeout) instead of fencing them all at once.
 */
export interface LivenessOptions {
  readonly sessionTimeoutMs: number;
  /** Monotonic milliseconds. */
  readonly now: () => number;
  /** Proposes fencing; resolves when committed (or rejects; the tracker retries on a later check). */
  readonly fence: (brokerId: number, brokerEpoch: number) => Promise<void>;
  readonly logger: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
}

interface Session {
  epoch: number;
  lastSeen: number;
  fenced: boolean;
  fencing: boolean;
}

export class BrokerLiveness {
  private readonly sessions = new Map<number, Session>();
  private active = false;

  constructor(private readonly options: LivenessOptions) {}

  /** This node became leader: every known unfenced broker gets a fresh session. */
  becameLeader(
    brokers: ReadonlyArray<{ brokerId: number; brokerEpoch: number; fenced: boolean }>,
  ): void {
    this.active = true;
    this.sessions.clear();
    const now = this.options.now();
    for (const b of brokers) {
      this.sessions.set(b.brokerId, {
        epoch: b.brokerEpoch,
        lastSeen: now,
        fenced: b.fenced,
        fencing: false,
      });
    }
  }

  /** This node is no longer leader: forget everything (the next leader starts afresh). */
  steppedDown(): void {
    this.active = false;
    this.sessions.clear();
  }

  /** A broker registered (new epoch) or sent a heartbeat that the leader accepted. */
  heard(brokerId: number, brokerEpoch: number, fenced: boolean): void {
    if (!this.active) return;
    const session = this.sessions.get(brokerId);
    const now = this.options.now();
    if (session === undefined || session.epoch !== brokerEpoch) {
      this.sessions.set(brokerId, { epoch: brokerEpoch, lastSeen: now, fenced, fencing: false });
      return;
    }
    session.lastSeen = now;
    session.fenced = fenced;
  }

  /** The broker left the cluster (controlled shutdown / unregister). */
  removed(brokerId: number): void {
    this.sessions.delete(brokerId);
  }

  /** The broker was fenced by a committed command (by us or an earlier leader). */
  markFenced(brokerId: number): void {
    const session = this.sessions.get(brokerId);
    if (session !== undefined) session.fenced = true;
  }

  /** Milliseconds since the leader last heard from the broker, if it tracks it. */
  sinceLastHeard(brokerId: number): number | undefined {
    const session = this.sessions.get(brokerId);
    return session === undefined ? undefined : this.options.now() - session.lastSeen;
  }

  /** Proposes FenceBroker for every expired session; call periodically on the leader. */
  check(): number {
    if (!this.active) return 0;
    const now = this.options.now();
    let proposed = 0;
    for (const [brokerId, session] of this.sessions) {
      if (session.fenced || session.fencing) continue;
      const silentMs = now - session.lastSeen;
      if (silentMs <= this.options.sessionTimeoutMs) continue;
      session.fencing = true;
      proposed += 1;
      this.options.logger.info(
        { brokerId, brokerEpoch: session.epoch, silentMs },
        'broker session expired: fencing it',
      );
      this.options.fence(brokerId, session.epoch).then(
        () => {
          session.fencing = false;
          session.fenced = true;
        },
        (err: unknown) => {
          session.fencing = false;
          this.options.logger.warn(
            { brokerId, err: (err as Error).message },
            'could not fence broker; will retry',
          );
        },
      );
    }
    return proposed;
  }
}
