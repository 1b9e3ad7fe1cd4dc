import { invariant } from './errors';
import { hasQuorum, quorumIndex, voteResult } from './quorum';
import type { VoteResult } from './quorum';
import type { ConfState, NodeId } from './types';

/**
 * Flow control for one follower in `replicate` state: the AppendEntries messages in flight
 * (sent, not yet acknowledged), bounded by count and bytes. A ring buffer of (last index,
 * bytes) per message.
 */
export class Inflights {
  private readonly indexes: number[] = [];
  private readonly sizes: number[] = [];
  private start = 0;
  private bytes = 0;

  constructor(
    readonly maxCount: number,
    readonly maxBytes: number,
  ) {}

  get count(): number {
    return this.indexes.length - this.start;
  }

  get inflightBytes(): number {
    return this.bytes;
  }

  add(lastIndex: number, bytes: number): void {
    this.indexes.push(lastIndex);
    this.sizes.push(bytes);
    this.bytes += bytes;
  }

  /** Frees every message whose last index is <= `index` (acknowledged). */
  freeLE(index: number): void {
    while (this.start < this.indexes.length && (this.indexes[this.start] ?? Infinity) <= index) {
      this.bytes -= this.sizes[this.start] ?? 0;
      this.start++;
    }
    if (this.start > 64 && this.start * 2 > this.indexes.length) {
      this.indexes.splice(0, this.start);
      this.sizes.splice(0, this.start);
      this.start = 0;
    }
  }

  /** Frees the oldest message (a heartbeat answer proves the follower is alive, as in etcd). */
  freeFirstOne(): void {
    const first = this.indexes[this.start];
    if (first !== undefined) this.freeLE(first);
  }

  full(): boolean {
    return this.count >= this.maxCount || (this.maxBytes > 0 && this.bytes >= this.maxBytes);
  }

  reset(): void {
    this.indexes.length = 0;
    this.sizes.length = 0;
    this.start = 0;
    this.bytes = 0;
  }
}

/**
 * How the leader replicates to one follower (etcd's three states):
 * - `probe`: the leader does not know where the follower's log matches; it sends one
 *   AppendEntries per heartbeat interval (or per response) until one succeeds.
 * - `replicate`: the match is known; the leader streams entries optimistically (pipelining),
 *   advancing `next` on send, bounded by {@link Inflights}.
 * - `snapshot`: the follower needs entries already compacted; a snapshot is being streamed
 *   and nothing else is sent until it is reported done or failed.
 */
export type ProgressState = 'probe' | 'replicate' | 'snapshot';

export class Progress {
  /** Highest index known replicated on the follower. Invariant: `match < next`. */
  match = 0;
  /** Index of the next entry to send. */
  next: number;
  state: ProgressState = 'probe';
  /** In `snapshot` state: the index of the snapshot being sent. */
  pendingSnapshot = 0;
  /** Heard from since the last check-quorum round (§6.2). */
  recentActive = false;
  /** In `probe` state: a probe is in flight; wait for its answer or the next heartbeat. */
  probeSent = false;
  readonly inflights: Inflights;

  constructor(
    next: number,
    public isLearner: boolean,
    maxInflightMsgs: number,
    maxInflightBytes: number,
  ) {
    this.next = next;
    this.inflights = new Inflights(maxInflightMsgs, maxInflightBytes);
  }

  private resetState(state: ProgressState): void {
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.state = state;
    this.inflights.reset();
  }

  becomeProbe(): void {
    if (this.state === 'snapshot') {
      const pending = this.pendingSnapshot;
      this.resetState('probe');
      this.next = Math.max(this.match + 1, pending + 1);
    } else {
      this.resetState('probe');
      this.next = this.match + 1;
    }
  }

  becomeReplicate(): void {
    this.resetState('replicate');
    this.next = this.match + 1;
  }

  becomeSnapshot(snapshotIndex: number): void {
    this.resetState('snapshot');
    this.pendingSnapshot = snapshotIndex;
  }

  /** Records an AppendEntries carrying `count` entries (the last one `lastIndex`) sent. */
  sentEntries(count: number, lastIndex: number, bytes: number): void {
    if (this.state === 'replicate') {
      if (count > 0) {
        this.next = lastIndex + 1;
        this.inflights.add(lastIndex, bytes);
      }
    } else if (this.state === 'probe') {
      this.probeSent = true;
    }
  }

  /** Returns whether `index` advanced the match (a non-stale acknowledgement). */
  maybeUpdate(index: number): boolean {
    let updated = false;
    if (this.match < index) {
      this.match = index;
      updated = true;
      this.probeSent = false;
    }
    this.next = Math.max(this.next, index + 1);
    return updated;
  }

  /**
   * Handles a rejection of the append whose prevLogIndex was `rejected`; `nextHint` is where
   * the leader should probe next. Returns false when the rejection is stale.
   */
  maybeDecrTo(rejected: number, nextHint: number): boolean {
    if (this.state === 'replicate') {
      if (rejected <= this.match) return false; // stale: that prefix already matched
      this.next = this.match + 1;
      return true;
    }
    if (this.next - 1 !== rejected) return false; // stale: not the probe in flight
    this.next = Math.max(Math.min(rejected, nextHint), this.match + 1, 1);
    this.probeSent = false;
    return true;
  }

  /**
   * The follower reported (log-lost) that its log ends at `lastIndex`, below `match`: it lost
   * entries it had acknowledged. The only place `match` goes down; probing restarts after
   * what it still holds (and becomes a snapshot when that is compacted).
   */
  resetAfterLogLoss(lastIndex: number): void {
    this.match = lastIndex;
    this.becomeProbe();
    this.next = lastIndex + 1;
    this.probeSent = false;
  }

  /** Whether the leader must hold back appends to this follower. */
  isPaused(): boolean {
    switch (this.state) {
      case 'probe':
        return this.probeSent;
      case 'replicate':
        return this.inflights.full();
      case 'snapshot':
        return true;
    }
  }
}

/** Options that size each follower's flow control. */
export interface FlowControl {
  readonly maxInflightMsgs: number;
  readonly maxInflightBytes: number;
}

/**
 * The configuration (one at a time: thesis §4.1 single-server changes) and, on a leader, the
 * replication progress of every member; on a candidate, the votes received.
 */
export class ProgressTracker {
  conf: ConfState;
  readonly progress = new Map<NodeId, Progress>();
  readonly votes = new Map<NodeId, boolean>();

  constructor(
    conf: ConfState,
    private readonly flow: FlowControl,
  ) {
    this.conf = conf;
  }

  isVoter(id: NodeId): boolean {
    return this.conf.voters.includes(id);
  }

  isMember(id: NodeId): boolean {
    return this.isVoter(id) || this.conf.learners.includes(id);
  }

  members(): NodeId[] {
    return [...this.conf.voters, ...this.conf.learners];
  }

  /** Re-creates every progress (a new leader knows nothing about its followers, §3.5). */
  resetProgress(nextIndex: number): void {
    this.progress.clear();
    for (const id of this.members()) {
      this.progress.set(id, this.newProgress(id, nextIndex));
    }
  }

  /** Switches to `conf`, keeping the progress of members that stay. */
  setConf(conf: ConfState, nextIndex: number, tracking: boolean): void {
    this.conf = conf;
    for (const id of [...this.progress.keys()]) {
      if (!this.isMember(id)) this.progress.delete(id);
    }
    for (const id of this.members()) {
      const existing = this.progress.get(id);
      if (existing !== undefined) existing.isLearner = !this.isVoter(id);
      else if (tracking) this.progress.set(id, this.newProgress(id, nextIndex));
    }
    for (const id of [...this.votes.keys()]) if (!this.isVoter(id)) this.votes.delete(id);
  }

  private newProgress(id: NodeId, nextIndex: number): Progress {
    return new Progress(
      nextIndex,
      !this.isVoter(id),
      this.flow.maxInflightMsgs,
      this.flow.maxInflightBytes,
    );
  }

  get(id: NodeId): Progress | undefined {
    return this.progress.get(id);
  }

  mustGet(id: NodeId): Progress {
    const progress = this.progress.get(id);
    invariant(progress !== undefined, () => `no progress for node ${id}`);
    return progress;
  }

  /** The highest index a majority of voters hold (§3.6.2). */
  committed(): number {
    return quorumIndex(this.conf.voters, (id) => this.progress.get(id)?.match ?? 0);
  }

  recordVote(id: NodeId, granted: boolean): void {
    if (!this.votes.has(id)) this.votes.set(id, granted);
  }

  voteResult(): VoteResult {
    return voteResult(this.conf.voters, this.votes);
  }

  resetVotes(): void {
    this.votes.clear();
  }

  /** Check-quorum (§6.2): did a majority of voters talk to us since the last round? */
  quorumActive(self: NodeId): boolean {
    return hasQuorum(
      this.conf.voters,
      (id) => id === self || this.progress.get(id)?.recentActive === true,
    );
  }
}
