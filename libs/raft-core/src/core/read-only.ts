import { hasQuorum } from './quorum';
import type { NodeId } from './types';

/** A linearizable read the leader is confirming (§6.4). */
export interface PendingRead {
  /** Leadership-confirmation round; heartbeats carry it as their `context`. */
  readonly seq: number;
  /** The node that asked (the leader itself or a follower that forwarded it). */
  readonly requester: NodeId;
  /** The requester's own request id. */
  readonly context: number;
  /** The leader's commit index when the read arrived: the read index. */
  readonly index: number;
}

/**
 * ReadIndex bookkeeping on a leader (thesis §6.4). Each read gets a round number `seq`; any
 * heartbeat sent after it was registered carries a `context >= seq`, so a heartbeat answer
 * with context `c` confirms, for that voter, every read with `seq <= c`. A read is released
 * once a majority of voters (counting the leader) confirmed it, in registration order.
 */
export class ReadOnly {
  /** Monotonic across terms, so answers to an old term's rounds can never confirm new ones. */
  private seq = 0;
  private pending: PendingRead[] = [];
  private readonly acked = new Map<NodeId, number>();

  /** Current round, 0 when no read is pending (heartbeats then carry no context). */
  currentContext(): number {
    return this.pending.length > 0 ? this.seq : 0;
  }

  add(requester: NodeId, context: number, index: number): number {
    this.seq++;
    this.pending.push({ seq: this.seq, requester, context, index });
    return this.seq;
  }

  recvAck(from: NodeId, context: number): void {
    if (context > (this.acked.get(from) ?? 0)) this.acked.set(from, context);
  }

  /** Removes and returns the reads confirmed by a majority of `voters`. */
  takeConfirmed(self: NodeId, voters: readonly NodeId[]): PendingRead[] {
    let count = 0;
    for (const read of this.pending) {
      if (!hasQuorum(voters, (id) => id === self || (this.acked.get(id) ?? 0) >= read.seq)) break;
      count++;
    }
    return count === 0 ? [] : this.pending.splice(0, count);
  }

  /** Drops every pending read (leadership lost); returns them so they can be failed. */
  reset(): PendingRead[] {
    const dropped = this.pending;
    this.pending = [];
    this.acked.clear();
    return dropped;
  }
}
