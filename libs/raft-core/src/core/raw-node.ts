import type { ConfChange } from './conf-change';
import { invariant } from './errors';
import type { Message, SnapshotChunk } from './messages';
import { Raft } from './raft';
import type { RaftOptions, RaftRole, ReadState, SnapshotRequest } from './raft';
import type { ProgressState } from './progress';
import { NONE } from './types';
import type { ConfState, Entry, HardState, NodeId, SnapshotMeta } from './types';

/** Volatile state worth telling the application about. */
export interface SoftState {
  readonly lead: NodeId;
  readonly role: RaftRole;
}

/**
 * Everything the core wants done, in the order it must be done (etcd's `Ready`):
 *
 * 1. **Persist**: install `snapshot` (restore the state machine from the SnapshotStore, then
 *    `LogStorage.applySnapshot`), append `entries`, record `hardState`; then, if `mustSync`,
 *    `sync()`. Nothing below may happen before this is durable: messages include votes and
 *    append acknowledgements that promise durability (Figure 2 "persist before responding").
 * 2. **Send** `messages`; start streaming `snapshotsToSend`; write `snapshotChunks`.
 * 3. **Apply** `committedEntries` in order (they may include entries of step 1 — applied only
 *    once persisted). Serve `readStates` once applied >= their index; fail `readFailures`.
 * 4. **Advance**: call {@link RawNode.advance} with this Ready.
 */
export interface Ready {
  /** Present when the role or the known leader changed. */
  readonly softState?: SoftState;
  /** Present when term, vote or commit changed: persist it. */
  readonly hardState?: HardState;
  /** Entries to append to storage (the first may truncate a conflicting suffix). */
  readonly entries: readonly Entry[];
  /** A snapshot received from the leader to install, before `entries`. */
  readonly snapshot?: SnapshotMeta;
  /** Whether persisting needs an fsync (entries, term or vote changed; commit alone does not). */
  readonly mustSync: boolean;
  /** Messages to send after persisting. */
  readonly messages: readonly Message[];
  /** Entries to apply, in order, after persisting. */
  readonly committedEntries: readonly Entry[];
  /** Reads confirmed: serve each once the state machine applied `index`. */
  readonly readStates: readonly ReadState[];
  /** Contexts of reads that failed (leader unknown, changed or refused). */
  readonly readFailures: readonly number[];
  /** Leader only: snapshots to stream to followers whose entries were compacted. */
  readonly snapshotsToSend: readonly SnapshotRequest[];
  /** Follower only: snapshot chunks received from the leader, to write in order. */
  readonly snapshotChunks: readonly SnapshotChunk[];
}

/** A proposal's place in the log. It is committed when an entry with both is committed. */
export interface ProposalPosition {
  readonly index: number;
  readonly term: number;
}

/** A snapshot of the node's state, for the driver, tests and diagnostics. */
export interface Status {
  readonly id: NodeId;
  readonly term: number;
  readonly vote: NodeId;
  readonly lead: NodeId;
  readonly role: RaftRole;
  readonly commit: number;
  readonly applied: number;
  readonly lastIndex: number;
  readonly conf: ConfState;
  readonly leadTransferee: NodeId;
  /**
   * Leader only (0 otherwise): payload bytes of the entries it appended in its term and has
   * not yet applied, checked against `maxUncommittedEntriesSize`.
   */
  readonly uncommittedSize: number;
  /**
   * Append acknowledgements ignored because they claimed an index beyond this leader's log
   * (the follower's log was not built by this cluster); never decreases.
   */
  readonly acksBeyondLog: number;
  /** The follower that sent the latest of them (NONE before any). */
  readonly lastAckBeyondLogFrom: NodeId;
  /** Leader only. */
  readonly progress: ReadonlyMap<NodeId, { match: number; next: number; state: ProgressState }>;
}

/**
 * The synchronous, deterministic Raft node the driver (and the simulation) runs: feed it
 * ticks, messages and proposals; take a {@link Ready}; do what it says; {@link advance}.
 *
 * Contract: between `ready()` and `advance()` no other method may be called (the driver
 * queues inputs that arrive meanwhile and steps them after advancing — which is also what
 * batches proposals into one append and one fsync, group commit).
 */
export class RawNode {
  readonly raft: Raft;
  private prevHardState: HardState;
  private prevSoftState: SoftState;
  private pending: Ready | undefined;

  constructor(options: RaftOptions) {
    this.raft = new Raft(options);
    this.prevHardState = this.hardState();
    this.prevSoftState = this.softState();
  }

  get id(): NodeId {
    return this.raft.id;
  }

  private checkIdle(): void {
    invariant(this.pending === undefined, 'RawNode used between ready() and advance()');
  }

  /** Advances logical time by one tick. */
  tick(): void {
    this.checkIdle();
    this.raft.tick();
  }

  /** Starts an election now (tests and forced failover). */
  campaign(): void {
    this.checkIdle();
    this.raft.hup(false);
  }

  /** Steps a message from a peer. Messages from unknown or stale senders are ignored safely. */
  step(message: Message): void {
    this.checkIdle();
    this.raft.step(message);
  }

  /**
   * Proposes commands. Returns the position of the last one (the others precede it).
   * @throws NotLeaderError when not the leader; ProposalDroppedError during a transfer, or
   * when the leader's entries not yet applied would exceed `maxUncommittedEntriesSize`
   * (`'uncommitted-limit'`; all of `data` is refused then).
   */
  propose(...data: Uint8Array[]): ProposalPosition {
    this.checkIdle();
    const index = this.raft.propose(data);
    return { index, term: this.raft.term };
  }

  /**
   * Proposes a membership change.
   * @throws NotLeaderError; ProposalDroppedError when another change is pending, the change
   * is invalid, or a promoted learner is not caught up.
   */
  proposeConfChange(change: ConfChange): ProposalPosition {
    this.checkIdle();
    const index = this.raft.proposeConfChange(change);
    return { index, term: this.raft.term };
  }

  /** Requests a linearizable read; `context` identifies it in readStates / readFailures. */
  readIndex(context: number): void {
    this.checkIdle();
    this.raft.readIndex(context);
  }

  /** Starts handing leadership to `target` (§3.10). */
  transferLeadership(target: NodeId): void {
    this.checkIdle();
    this.raft.transferLeadership(target);
  }

  /** The driver finished (or gave up) streaming a snapshot to `to`. */
  reportSnapshot(to: NodeId, success: boolean): void {
    this.checkIdle();
    this.raft.reportSnapshot(to, success);
  }

  /**
   * The transport failed to deliver to `to` (etcd's `ReportUnreachable`): a leader stops
   * pipelining appends to it (replicate → probe) until it answers again.
   */
  reportUnreachable(to: NodeId): void {
    this.checkIdle();
    this.raft.reportUnreachable(to);
  }

  /**
   * The driver assembled and stored a snapshot streamed by the leader; the next Ready carries
   * it in `snapshot` when the state machine must be restored from it.
   */
  installSnapshot(meta: SnapshotMeta): boolean {
    this.checkIdle();
    return this.raft.installSnapshot(meta);
  }

  private hardState(): HardState {
    return { term: this.raft.term, vote: this.raft.vote, commit: this.raft.log.committed };
  }

  private softState(): SoftState {
    return { lead: this.raft.lead, role: this.raft.role };
  }

  /** Whether {@link ready} would return anything to do. */
  hasReady(): boolean {
    if (this.pending !== undefined) return false;
    const raft = this.raft;
    const hs = this.hardState();
    return (
      raft.needsBroadcast ||
      raft.msgs.length > 0 ||
      raft.log.hasUnstableEntries() ||
      raft.log.unstableSnapshot() !== undefined ||
      raft.log.hasNextCommittedEntries() ||
      raft.readStates.length > 0 ||
      raft.readFailures.length > 0 ||
      raft.snapshotRequests.length > 0 ||
      raft.incomingChunks.length > 0 ||
      hs.term !== this.prevHardState.term ||
      hs.vote !== this.prevHardState.vote ||
      hs.commit !== this.prevHardState.commit ||
      raft.lead !== this.prevSoftState.lead ||
      raft.role !== this.prevSoftState.role
    );
  }

  /** Takes the pending work. Call {@link advance} with it once done. */
  ready(): Ready {
    this.checkIdle();
    const raft = this.raft;
    raft.flush();
    const hs = this.hardState();
    const ss = this.softState();
    const entries = raft.log.unstableEntries();
    const snapshot = raft.log.unstableSnapshot();
    const termOrVoteChanged =
      hs.term !== this.prevHardState.term || hs.vote !== this.prevHardState.vote;
    const ready: {
      -readonly [K in keyof Ready]: Ready[K];
    } = {
      entries,
      mustSync: termOrVoteChanged || entries.length > 0 || snapshot !== undefined,
      messages: raft.msgs,
      committedEntries: raft.log.nextCommittedEntries(raft.options.maxCommittedSizePerReady),
      readStates: raft.readStates,
      readFailures: raft.readFailures,
      snapshotsToSend: raft.snapshotRequests,
      snapshotChunks: raft.incomingChunks,
    };
    if (termOrVoteChanged || hs.commit !== this.prevHardState.commit) ready.hardState = hs;
    if (ss.lead !== this.prevSoftState.lead || ss.role !== this.prevSoftState.role)
      ready.softState = ss;
    if (snapshot !== undefined) ready.snapshot = snapshot;
    raft.msgs = [];
    raft.readStates = [];
    raft.readFailures = [];
    raft.snapshotRequests = [];
    raft.incomingChunks = [];
    this.pending = ready;
    return ready;
  }

  /** Acknowledges that `ready` was persisted, sent and applied. */
  advance(ready: Ready): void {
    invariant(this.pending === ready, 'advance() called with a Ready that is not the pending one');
    this.pending = undefined;
    const raft = this.raft;
    if (ready.hardState !== undefined) this.prevHardState = ready.hardState;
    if (ready.softState !== undefined) this.prevSoftState = ready.softState;
    if (ready.snapshot !== undefined) {
      raft.log.stableSnapTo(ready.snapshot.index);
      if (raft.log.applied < ready.snapshot.index) raft.log.applied = ready.snapshot.index;
    }
    const lastEntry = ready.entries[ready.entries.length - 1];
    if (lastEntry !== undefined) raft.log.stableTo(lastEntry.index, lastEntry.term);
    const lastCommitted = ready.committedEntries[ready.committedEntries.length - 1];
    if (lastCommitted !== undefined) raft.log.appliedTo(lastCommitted.index);
    raft.reduceUncommittedSize(ready.committedEntries);
    raft.onStable();
  }

  status(): Status {
    const raft = this.raft;
    const progress = new Map<NodeId, { match: number; next: number; state: ProgressState }>();
    if (raft.role === 'leader') {
      for (const [id, p] of raft.trk.progress)
        progress.set(id, { match: p.match, next: p.next, state: p.state });
    }
    return {
      id: raft.id,
      term: raft.term,
      vote: raft.vote,
      lead: raft.lead,
      role: raft.role,
      commit: raft.log.committed,
      applied: raft.log.applied,
      lastIndex: raft.log.lastIndex(),
      conf: raft.trk.conf,
      leadTransferee: raft.leadTransferee,
      uncommittedSize: raft.uncommittedSize,
      acksBeyondLog: raft.acksBeyondLog,
      lastAckBeyondLogFrom: raft.lastAckBeyondLogFrom,
      progress,
    };
  }

  /** Whether this node is the leader (a cheap shortcut of `status().role`). */
  isLeader(): boolean {
    return this.raft.role === 'leader';
  }

  /** The leader this node knows of, or NONE. */
  leader(): NodeId {
    return this.raft.lead === NONE ? NONE : this.raft.lead;
  }
}
