import type { LogStorage } from '../storage/log-storage';
import { applyConfChange, decodeConfChange, encodeConfChange } from './conf-change';
import type { ConfChange } from './conf-change';
import {
  CompactedError,
  InvariantViolation,
  NotLeaderError,
  ProposalDroppedError,
  invariant,
} from './errors';
import { RaftLog } from './log';
import { entrySize } from './messages';
import type {
  AppendRequest,
  AppendResponse,
  HeartbeatResponse,
  Message,
  SnapshotChunk,
  VoteRequest,
  VoteResponse,
} from './messages';
import { Prng } from './prng';
import { ProgressTracker } from './progress';
import { ReadOnly } from './read-only';
import { NONE } from './types';
import type { ConfState, Entry, NodeId, SnapshotMeta } from './types';

export type RaftRole = 'follower' | 'pre-candidate' | 'candidate' | 'leader';

/**
 * Options of the consensus core. Time is counted in ticks: the driver calls `tick()` every
 * `tickMs` milliseconds.
 */
export interface RaftOptions {
  /** This node's id (> 0). */
  readonly id: NodeId;
  /** Storage to read the durable log from. Must outlive the core. */
  readonly storage: LogStorage;
  /**
   * Election timeout in ticks. A follower campaigns after a random timeout in
   * `[electionTick, 2 * electionTick)` without hearing from a leader (§3.4). Default 10.
   */
  readonly electionTick?: number;
  /** Heartbeat interval in ticks; must be < electionTick. Default 1. */
  readonly heartbeatTick?: number;
  /** Seed of the PRNG that randomizes election timeouts. Default: the node id. */
  readonly randomSeed?: number;
  /** Pre-vote (§9.6): a node must win a trial election before disrupting the term. Default true. */
  readonly preVote?: boolean;
  /**
   * Check-quorum (§6.2): a leader that has not heard from a majority within an election
   * timeout steps down, and followers that heard from a leader recently ignore vote
   * requests (§4.2.3). Default true.
   */
  readonly checkQuorum?: boolean;
  /**
   * How reads are confirmed. `safe` (default): ReadIndex with a heartbeat round (§6.4).
   * `lease-based` (§6.4.1): the leader answers from its lease without a round trip. Lease
   * reads assume clocks drift by less than the margin between the election timeout and the
   * time a leader needs to notice it lost its quorum: every node's tick rate must be within
   * that bound of the others', or a deposed leader may serve stale reads. Requires checkQuorum.
   */
  readonly readOnly?: 'safe' | 'lease-based';
  /** Approximate byte limit of one AppendEntries message. Default 1 MiB. */
  readonly maxSizePerMsg?: number;
  /** Max AppendEntries in flight per follower in replicate state (pipelining). Default 256. */
  readonly maxInflightMsgs?: number;
  /** Max bytes in flight per follower (0 = unlimited). Default 0. */
  readonly maxInflightBytes?: number;
  /** Approximate byte limit of the committed entries in one Ready. Default 8 MiB. */
  readonly maxCommittedSizePerReady?: number;
  /** A learner is promoted only when at most this many entries behind the leader. Default 1000. */
  readonly maxLearnerLag?: number;
  /**
   * Back-pressure when commits stall (etcd's `MaxUncommittedEntriesSize`): the most payload
   * bytes (`data` only) of entries the leader appended in its term and has not yet applied.
   * A proposal that would go beyond it is refused with `ProposalDroppedError`
   * (`'uncommitted-limit'`), except when nothing is uncommitted — one entry larger than the
   * limit still goes through — or its payload is empty. 0 = no limit. Default 64 MiB.
   */
  readonly maxUncommittedEntriesSize?: number;
}

/** Options after defaults. */
export type ResolvedRaftOptions = Required<RaftOptions>;

/** Resolves defaults and validates (fails fast with a clear message). */
export function resolveRaftOptions(options: RaftOptions): ResolvedRaftOptions {
  const resolved: ResolvedRaftOptions = {
    electionTick: 10,
    heartbeatTick: 1,
    randomSeed: options.id,
    preVote: true,
    checkQuorum: true,
    readOnly: 'safe',
    maxSizePerMsg: 1024 * 1024,
    maxInflightMsgs: 256,
    maxInflightBytes: 0,
    maxCommittedSizePerReady: 8 * 1024 * 1024,
    maxLearnerLag: 1000,
    maxUncommittedEntriesSize: 64 * 1024 * 1024,
    ...options,
  };
  const fail = (why: string): never => {
    throw new RangeError(`invalid Raft options: ${why}`);
  };
  if (!Number.isInteger(resolved.id) || resolved.id <= 0) fail('id must be a positive integer');
  if (resolved.heartbeatTick <= 0) fail('heartbeatTick must be > 0');
  if (resolved.electionTick <= resolved.heartbeatTick) fail('electionTick must be > heartbeatTick');
  if (resolved.maxInflightMsgs <= 0) fail('maxInflightMsgs must be > 0');
  if (
    !Number.isSafeInteger(resolved.maxUncommittedEntriesSize) ||
    resolved.maxUncommittedEntriesSize < 0
  )
    fail('maxUncommittedEntriesSize must be an integer >= 0 (0 = no limit)');
  if (resolved.readOnly === 'lease-based' && !resolved.checkQuorum)
    fail('lease-based reads require checkQuorum');
  return resolved;
}

/** A read the application may serve once it has applied `index`. */
export interface ReadState {
  readonly context: number;
  readonly index: number;
}

/** Asks the driver to stream the snapshot `meta` (from its SnapshotStore) to `to`. */
export interface SnapshotRequest {
  readonly to: NodeId;
  readonly term: number;
  readonly meta: SnapshotMeta;
}

/**
 * The consensus algorithm (etcd's `raft`): a synchronous state machine stepped by messages,
 * ticks and proposals. Its outputs accumulate in public fields the {@link RawNode} drains
 * into a Ready. Section numbers cite Ongaro's thesis.
 */
export class Raft {
  readonly id: NodeId;
  readonly options: ResolvedRaftOptions;
  readonly log: RaftLog;
  readonly trk: ProgressTracker;

  term = 0;
  vote: NodeId = NONE;
  lead: NodeId = NONE;
  role: RaftRole = 'follower';

  /** Outgoing messages, sent by the driver after it persisted the Ready they came with. */
  msgs: Message[] = [];
  readStates: ReadState[] = [];
  /** Contexts of this node's reads that failed (leadership changed or the leader refused). */
  readFailures: number[] = [];
  snapshotRequests: SnapshotRequest[] = [];
  /** Snapshot chunks received from the current leader, for the driver to write. */
  incomingChunks: SnapshotChunk[] = [];

  /** Ticks since the last election timeout reset (leader: since the last check-quorum). */
  electionElapsed = 0;
  heartbeatElapsed = 0;
  randomizedElectionTimeout = 0;
  /** Target of an ongoing leadership transfer (§3.10), or NONE. */
  leadTransferee: NodeId = NONE;
  /** Index of the latest conf-change entry the leader may not yet have committed. */
  pendingConfIndex = 0;
  /** Proposals were appended since the last broadcast; flushed once per Ready (batching). */
  needsBroadcast = false;
  /**
   * Leader: payload bytes of the entries it appended in this term and has not yet applied
   * (etcd's `uncommittedSize`), checked against `maxUncommittedEntriesSize`. Invariant: never
   * more than the payload bytes of the log after `applied` — it may be less, since `reset()`
   * zeroes it (entries of earlier terms are not counted) and applying them saturates at 0.
   */
  uncommittedSize = 0;
  /**
   * Successful append responses this node, as leader, ignored because they acknowledged an
   * index beyond its own log: the follower holds a log this cluster did not build (e.g. it
   * kept its log while the other nodes were wiped). Taking them would point the follower's
   * progress past the log and fail the next send. Only ever grows.
   */
  acksBeyondLog = 0;
  /** The follower of the latest such response (NONE before any). */
  lastAckBeyondLogFrom: NodeId = NONE;

  private readonly readOnly = new ReadOnly();
  /** ReadIndex requests waiting for the leader's first commit in its term (§6.4 step 1). */
  private pendingReadIndex: { requester: NodeId; context: number }[] = [];
  /**
   * Configurations in the log: the base one at the snapshot index, then one per conf-change
   * entry, so a truncated change can fall back to the previous configuration (§4.1).
   */
  private confHistory: { index: number; conf: ConfState }[];
  private readonly prng: Prng;

  constructor(options: RaftOptions) {
    this.options = resolveRaftOptions(options);
    this.id = this.options.id;
    this.prng = new Prng(this.options.randomSeed);
    const storage = this.options.storage;
    this.log = new RaftLog(storage);
    const { hardState, conf } = storage.initialState();
    this.confHistory = [{ index: storage.snapshotMeta().index, conf }];
    this.trk = new ProgressTracker(conf, this.options);
    // Thesis §4.1: a server uses the latest configuration in its log, committed or not.
    this.scanConfEntries(storage.firstIndex(), storage.lastIndex());
    this.term = hardState.term;
    this.vote = hardState.vote;
    invariant(
      hardState.commit <= this.log.lastIndex() || hardState.commit === 0,
      () => `hard state commit ${hardState.commit} beyond last index ${this.log.lastIndex()}`,
    );
    this.log.commitTo(Math.max(hardState.commit, this.log.committed));
    this.becomeFollower(this.term, NONE);
  }

  private scanConfEntries(lo: number, hi: number): void {
    for (let index = lo; index <= hi; index += 1) {
      const batch = this.log.slice(index, hi + 1, 64 * 1024 * 1024);
      for (const entry of batch) if (entry.kind === 'conf-change') this.onConfEntryAppended(entry);
      index += batch.length - 1;
    }
  }

  // ---------------------------------------------------------------------------------------
  // Roles

  private reset(term: number): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = NONE;
    }
    this.lead = NONE;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.resetRandomizedElectionTimeout();
    this.leadTransferee = NONE;
    this.trk.resetVotes();
    this.trk.progress.clear();
    this.pendingConfIndex = 0;
    this.uncommittedSize = 0;
    this.failPendingReads();
  }

  private failPendingReads(): void {
    const dropped: { requester: NodeId; context: number }[] = [
      ...this.readOnly.reset(),
      ...this.pendingReadIndex,
    ];
    this.pendingReadIndex = [];
    for (const read of dropped) this.respondRead(read.requester, read.context, 0, true);
  }

  private resetRandomizedElectionTimeout(): void {
    const base = this.options.electionTick;
    this.randomizedElectionTimeout = base + this.prng.nextInt(base);
  }

  becomeFollower(term: number, lead: NodeId): void {
    this.reset(term);
    this.role = 'follower';
    this.lead = lead;
  }

  private becomePreCandidate(): void {
    invariant(this.role !== 'leader', 'a leader cannot become a pre-candidate');
    // §9.6: no term change and no vote, so a failed pre-vote disturbs nobody.
    this.trk.resetVotes();
    this.role = 'pre-candidate';
    this.lead = NONE;
  }

  private becomeCandidate(): void {
    invariant(this.role !== 'leader', 'a leader cannot become a candidate');
    this.reset(this.term + 1);
    this.vote = this.id;
    this.role = 'candidate';
  }

  private becomeLeader(): void {
    invariant(this.role === 'candidate', 'only a candidate can become leader');
    this.reset(this.term);
    this.role = 'leader';
    this.lead = this.id;
    const last = this.log.lastIndex();
    this.trk.resetProgress(last + 1);
    const self = this.trk.get(this.id);
    if (self !== undefined) {
      self.match = this.log.stableLastIndex();
      self.becomeReplicate();
      self.recentActive = true;
    }
    // §3.6.2/§6.4: a new leader commits a no-op entry of its term to learn what is committed;
    // no conf change may be proposed until it is (the single-server change fix of §4.1).
    // Its payload is empty, so the uncommitted limit (just reset) never refuses it.
    this.appendEntries([{ kind: 'normal', data: new Uint8Array(0) }]);
    this.pendingConfIndex = this.log.lastIndex();
    this.needsBroadcast = true;
  }

  private promotable(): boolean {
    return this.trk.isVoter(this.id) && this.log.unstableSnapshot() === undefined;
  }

  // ---------------------------------------------------------------------------------------
  // Time

  tick(): void {
    if (this.role === 'leader') this.tickHeartbeat();
    else this.tickElection();
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.hup(false);
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.options.electionTick) {
      this.electionElapsed = 0;
      if (this.options.checkQuorum) {
        // §6.2: a leader that cannot reach a majority steps down, so clients find the real one.
        if (!this.trk.quorumActive(this.id)) {
          this.becomeFollower(this.term, NONE);
          return;
        }
        for (const [id, progress] of this.trk.progress)
          if (id !== this.id) progress.recentActive = false;
      }
      // §3.10: a transfer that did not finish within an election timeout is abandoned.
      if (this.leadTransferee !== NONE) this.leadTransferee = NONE;
    }
    if (this.heartbeatElapsed >= this.options.heartbeatTick) {
      this.heartbeatElapsed = 0;
      this.bcastHeartbeat();
    }
  }

  /** Starts an election (a pre-vote first, unless this is a leadership transfer). */
  hup(transfer: boolean): void {
    if (this.role === 'leader' || !this.promotable()) return;
    if (this.options.preVote && !transfer) this.campaign('pre-election', false);
    else this.campaign('election', transfer);
  }

  private campaign(kind: 'pre-election' | 'election', transfer: boolean): void {
    let term: number;
    if (kind === 'pre-election') {
      this.becomePreCandidate();
      term = this.term + 1;
    } else {
      this.becomeCandidate();
      term = this.term;
    }
    const preVote = kind === 'pre-election';
    this.trk.recordVote(this.id, true);
    if (this.trk.voteResult() === 'won') {
      // Single-voter cluster.
      if (preVote) this.campaign('election', transfer);
      else this.becomeLeader();
      return;
    }
    const lastLogIndex = this.log.lastIndex();
    const lastLogTerm = this.log.lastTerm();
    for (const to of this.trk.conf.voters) {
      if (to === this.id) continue;
      this.send({
        type: 'vote-request',
        from: this.id,
        to,
        term,
        preVote,
        lastLogIndex,
        lastLogTerm,
        transfer,
      });
    }
  }

  // ---------------------------------------------------------------------------------------
  // Messages

  private send(message: Message): void {
    this.msgs.push(message);
  }

  /** Steps a message received from a peer. */
  step(m: Message): void {
    if (m.to !== this.id) return;
    if (m.term > this.term) {
      if (m.type === 'vote-request') {
        // §4.2.3: ignore vote requests while a leader is believed alive, so a removed or
        // partitioned server cannot disrupt a healthy cluster (leadership transfers excepted).
        const inLease =
          this.options.checkQuorum &&
          this.lead !== NONE &&
          this.electionElapsed < this.options.electionTick;
        if (!m.transfer && inLease) return;
      }
      if (m.type === 'vote-request' && m.preVote) {
        // §9.6: never change term because of a pre-vote.
      } else if (m.type === 'vote-response' && m.preVote && m.granted) {
        // The term is the one we will campaign with; it becomes ours only in the real election.
      } else if (m.type === 'append' || m.type === 'heartbeat' || m.type === 'snapshot-chunk') {
        this.becomeFollower(m.term, m.from);
      } else {
        this.becomeFollower(m.term, NONE);
      }
    } else if (m.term < this.term) {
      if (
        (this.options.checkQuorum || this.options.preVote) &&
        (m.type === 'append' || m.type === 'heartbeat')
      ) {
        // Tell a stale leader about the new term so it steps down (it may have been partitioned).
        this.send(this.appendResponse(m.from, true, 0, 0, 0));
      } else if (m.type === 'vote-request' && m.preVote) {
        this.send(this.voteResponse(m.from, this.term, true, false));
      }
      return;
    }

    if (m.type === 'vote-request') {
      this.handleVoteRequest(m);
      return;
    }
    switch (this.role) {
      case 'leader':
        this.stepLeader(m);
        break;
      case 'candidate':
      case 'pre-candidate':
        this.stepCandidate(m);
        break;
      case 'follower':
        this.stepFollower(m);
        break;
    }
  }

  private handleVoteRequest(m: VoteRequest): void {
    // §3.6.1 election restriction; one vote per term (persisted before the answer leaves).
    const canVote =
      this.vote === m.from ||
      (this.vote === NONE && this.lead === NONE) ||
      (m.preVote && m.term > this.term);
    if (canVote && this.log.isUpToDate(m.lastLogIndex, m.lastLogTerm)) {
      this.send(this.voteResponse(m.from, m.term, m.preVote, true));
      if (!m.preVote) {
        this.electionElapsed = 0;
        this.vote = m.from;
      }
    } else {
      this.send(this.voteResponse(m.from, this.term, m.preVote, false));
    }
  }

  private voteResponse(to: NodeId, term: number, preVote: boolean, granted: boolean): VoteResponse {
    return { type: 'vote-response', from: this.id, to, term, preVote, granted };
  }

  private appendResponse(
    to: NodeId,
    success: boolean,
    index: number,
    conflictIndex: number,
    conflictTerm: number,
  ): AppendResponse {
    return {
      type: 'append-response',
      from: this.id,
      to,
      term: this.term,
      success,
      index,
      conflictIndex,
      conflictTerm,
    };
  }

  private stepLeader(m: Message): void {
    const progress = this.trk.get(m.from);
    switch (m.type) {
      case 'append':
      case 'heartbeat':
      case 'snapshot-chunk':
        throw new InvariantViolation(`two leaders in term ${this.term}: ${this.id} and ${m.from}`);
      case 'read-index':
        this.handleReadIndex(m.from, m.context);
        return;
      case 'append-response':
        if (progress !== undefined) this.handleAppendResponse(m, progress);
        return;
      case 'heartbeat-response':
        if (progress !== undefined) this.handleHeartbeatResponse(m);
        return;
      case 'log-lost':
        if (progress !== undefined && m.lastIndex < progress.match) {
          progress.resetAfterLogLoss(m.lastIndex);
          this.sendAppend(m.from, false);
        }
        return;
      case 'snapshot-ack':
        if (progress !== undefined) progress.recentActive = true;
        return;
      case 'vote-response':
      case 'timeout-now':
      case 'read-index-response':
        return;
    }
  }

  private handleAppendResponse(
    m: AppendResponse,
    progress: ReturnType<ProgressTracker['mustGet']>,
  ): void {
    progress.recentActive = true;
    if (!m.success) {
      // Fast back-off (§5.3 optimisation): jump to the last index where our log can match,
      // skipping a whole term of the follower's conflicting entries per round trip.
      const nextHint =
        m.conflictTerm > 0
          ? this.log.findConflictByTerm(m.conflictIndex, m.conflictTerm).index + 1
          : m.conflictIndex + 1;
      if (progress.maybeDecrTo(m.index, nextHint)) {
        if (progress.state === 'replicate') progress.becomeProbe();
        this.sendAppend(m.from, false);
      }
      return;
    }
    if (m.index > this.log.lastIndex()) {
      this.acksBeyondLog += 1;
      this.lastAckBeyondLogFrom = m.from;
      return;
    }
    const wasPaused = progress.isPaused();
    if (!progress.maybeUpdate(m.index)) return;
    if (progress.state === 'probe') progress.becomeReplicate();
    else if (progress.state === 'snapshot' && progress.match + 1 >= this.log.firstIndex()) {
      progress.becomeProbe();
      progress.becomeReplicate();
    } else if (progress.state === 'replicate') progress.inflights.freeLE(m.index);

    if (this.maybeCommit()) {
      // Coalesced: one broadcast of the new commit index per Ready, not one per response.
      this.needsBroadcast = true;
      this.sendAppendsTo(m.from, false);
    } else if (wasPaused || progress.next <= this.log.lastIndex()) {
      // A follower that was paused may have missed commit updates: send even if empty.
      this.sendAppendsTo(m.from, wasPaused);
    }
    if (m.from === this.leadTransferee && progress.match === this.log.lastIndex()) {
      this.send({ type: 'timeout-now', from: this.id, to: m.from, term: this.term });
    }
  }

  private handleHeartbeatResponse(m: HeartbeatResponse): void {
    const progress = this.trk.mustGet(m.from);
    progress.recentActive = true;
    progress.probeSent = false;
    // A full window with a live follower means appends were lost: free a slot so the next
    // append can go out (and be rejected, sending the follower back to probe).
    if (progress.state === 'replicate' && progress.inflights.full())
      progress.inflights.freeFirstOne();
    // Also recovers appends lost in replicate state: an empty append at `next - 1` is
    // rejected by a follower missing entries, which puts it back into probe.
    if (progress.match < this.log.lastIndex()) this.sendAppend(m.from, true);
    if (m.context > 0 && this.trk.isVoter(m.from)) {
      this.readOnly.recvAck(m.from, m.context);
      this.releaseConfirmedReads();
    }
  }

  private releaseConfirmedReads(): void {
    for (const read of this.readOnly.takeConfirmed(this.id, this.trk.conf.voters)) {
      this.respondRead(read.requester, read.context, read.index, false);
    }
  }

  private stepCandidate(m: Message): void {
    switch (m.type) {
      case 'append':
      case 'heartbeat':
      case 'snapshot-chunk':
        // §3.4: a candidate that hears from a leader of its term returns to follower.
        this.becomeFollower(m.term, m.from);
        this.stepFollower(m);
        return;
      case 'vote-response': {
        if (m.preVote !== (this.role === 'pre-candidate')) return;
        this.trk.recordVote(m.from, m.granted);
        const result = this.trk.voteResult();
        if (result === 'won') {
          if (this.role === 'pre-candidate') this.campaign('election', false);
          else {
            this.becomeLeader();
            this.bcastAppend();
          }
        } else if (result === 'lost') {
          this.becomeFollower(this.term, NONE);
        }
        return;
      }
      case 'read-index':
        this.send(this.readIndexResponse(m.from, m.context, 0, true));
        return;
      default:
        return;
    }
  }

  private stepFollower(m: Message): void {
    switch (m.type) {
      case 'append':
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleAppend(m);
        return;
      case 'heartbeat':
        this.electionElapsed = 0;
        this.lead = m.from;
        if (m.commit > this.log.lastIndex()) {
          // The leader believes we hold entries we do not have: our log was lost.
          this.log.commitTo(Math.max(this.log.committed, this.log.lastIndex()));
          this.send({
            type: 'log-lost',
            from: this.id,
            to: m.from,
            term: this.term,
            lastIndex: this.log.lastIndex(),
          });
        } else {
          this.log.commitTo(m.commit);
        }
        this.send({
          type: 'heartbeat-response',
          from: this.id,
          to: m.from,
          term: this.term,
          context: m.context,
        });
        return;
      case 'snapshot-chunk':
        this.electionElapsed = 0;
        this.lead = m.from;
        this.incomingChunks.push(m);
        return;
      case 'timeout-now':
        // §3.10: campaign at once, skipping pre-vote; voters let transfer votes through.
        this.hup(true);
        return;
      case 'read-index':
        this.send(this.readIndexResponse(m.from, m.context, 0, true));
        return;
      case 'read-index-response':
        if (m.rejected) this.readFailures.push(m.context);
        else this.readStates.push({ context: m.context, index: m.index });
        return;
      default:
        return;
    }
  }

  /** §3.5 AppendEntries receiver rules 1-5. */
  private handleAppend(m: AppendRequest): void {
    if (m.prevLogIndex < this.log.committed) {
      this.send(this.appendResponse(m.from, true, this.log.committed, 0, 0));
      return;
    }
    if (this.log.matchTerm(m.prevLogIndex, m.prevLogTerm)) {
      const lastNew = m.prevLogIndex + m.entries.length;
      const conflict = this.log.findConflict(m.entries);
      if (conflict !== 0) {
        invariant(
          conflict > this.log.committed,
          () => `entry ${conflict} conflicts with committed ${this.log.committed}`,
        );
        this.appendEntriesToLog(m.entries.slice(conflict - (m.prevLogIndex + 1)));
      }
      this.log.commitTo(Math.min(m.commit, lastNew));
      this.send(this.appendResponse(m.from, true, lastNew, 0, 0));
      return;
    }
    const hint = this.log.findConflictByTerm(
      Math.min(m.prevLogIndex, this.log.lastIndex()),
      m.prevLogTerm,
    );
    this.send(this.appendResponse(m.from, false, m.prevLogIndex, hint.index, hint.term));
  }

  // ---------------------------------------------------------------------------------------
  // Log and configuration

  /** Appends entries to the log and applies conf changes at append time (§4.1). */
  private appendEntriesToLog(entries: readonly Entry[]): void {
    const first = entries[0];
    if (first === undefined) return;
    if (first.index <= this.log.lastIndex()) this.truncateConfHistory(first.index);
    this.log.append(entries);
    for (const entry of entries) if (entry.kind === 'conf-change') this.onConfEntryAppended(entry);
  }

  private truncateConfHistory(from: number): void {
    const before = this.confHistory.length;
    while (
      this.confHistory.length > 1 &&
      (this.confHistory[this.confHistory.length - 1]?.index ?? 0) >= from
    ) {
      this.confHistory.pop();
    }
    if (this.confHistory.length !== before) this.switchConf();
  }

  private onConfEntryAppended(entry: Entry): void {
    // The entry carries the whole resulting configuration (validated by the leader).
    this.confHistory.push({ index: entry.index, conf: decodeConfChange(entry.data).conf });
    this.switchConf();
  }

  private currentConf(): ConfState {
    const latest = this.confHistory[this.confHistory.length - 1];
    invariant(latest !== undefined, 'empty configuration history');
    return latest.conf;
  }

  /** Index of the latest configuration entry (or the snapshot base). */
  confIndex(): number {
    return this.confHistory[this.confHistory.length - 1]?.index ?? 0;
  }

  private switchConf(): void {
    const conf = this.currentConf();
    this.trk.setConf(conf, this.log.lastIndex() + 1, this.role === 'leader');
    if (this.role === 'leader') {
      const self = this.trk.get(this.id);
      if (self !== undefined && self.match === 0) {
        self.match = this.log.stableLastIndex();
        self.becomeReplicate();
        self.recentActive = true;
      }
      if (this.leadTransferee !== NONE && !this.trk.isVoter(this.leadTransferee))
        this.leadTransferee = NONE;
    }
  }

  /**
   * The leader appends entries of its term (§3.5: a leader never overwrites its log).
   * @throws ProposalDroppedError (`'uncommitted-limit'`) when they would exceed the limit;
   * nothing is appended then.
   */
  private appendEntries(items: readonly { kind: Entry['kind']; data: Uint8Array }[]): number {
    if (!this.increaseUncommittedSize(items)) {
      throw new ProposalDroppedError(
        'uncommitted-limit',
        `proposal dropped: the leader has ${this.uncommittedSize} bytes of entries not yet applied (limit ${this.options.maxUncommittedEntriesSize}); followers are behind or commits stall`,
      );
    }
    let index = this.log.lastIndex();
    const entries: Entry[] = items.map((item) => ({
      index: ++index,
      term: this.term,
      kind: item.kind,
      data: item.data,
    }));
    this.appendEntriesToLog(entries);
    return index;
  }

  /**
   * Counts `items` against `maxUncommittedEntriesSize`; false (nothing counted) when they
   * would exceed it. Empty payloads always pass (a new leader's no-op entry must never be
   * refused), and so does anything while nothing is uncommitted, so one entry larger than
   * the limit can still make progress (etcd's `increaseUncommittedSize`).
   */
  private increaseUncommittedSize(items: readonly { data: Uint8Array }[]): boolean {
    const size = payloadBytes(items);
    const limit = this.options.maxUncommittedEntriesSize;
    if (limit > 0 && this.uncommittedSize > 0 && size > 0 && this.uncommittedSize + size > limit)
      return false;
    this.uncommittedSize += size;
    return true;
  }

  /**
   * The driver applied `entries` (etcd's `reduceUncommittedSize`, called on advance): they no
   * longer count. Saturates at 0, since entries of earlier terms were never counted.
   */
  reduceUncommittedSize(entries: readonly Entry[]): void {
    const size = payloadBytes(entries);
    this.uncommittedSize = size >= this.uncommittedSize ? 0 : this.uncommittedSize - size;
  }

  /** Called when the driver persisted entries up to `index`: the leader counts itself. */
  onStable(): void {
    if (this.role !== 'leader') return;
    const self = this.trk.get(this.id);
    if (self !== undefined && self.maybeUpdate(this.log.stableLastIndex()) && this.maybeCommit())
      this.needsBroadcast = true;
  }

  /** Advances the commit index to what a majority holds, for an entry of this term (§3.6.2). */
  private maybeCommit(): boolean {
    const committedBefore = this.log.committed;
    if (!this.log.maybeCommit(this.trk.committed(), this.term)) return false;
    if (this.log.termOrZero(committedBefore) !== this.term) this.releasePendingReadIndex();
    this.maybeStepDownAfterRemoval();
    return true;
  }

  private maybeStepDownAfterRemoval(): void {
    // §4.2.2: a leader removed from the configuration steps down once the change commits.
    if (
      this.role !== 'leader' ||
      this.trk.isVoter(this.id) ||
      this.log.committed < this.confIndex()
    )
      return;
    this.bcastAppend(); // let followers learn the commit before we go
    let best: NodeId = NONE;
    let bestMatch = -1;
    for (const id of this.trk.conf.voters) {
      const match = this.trk.get(id)?.match ?? 0;
      if (match > bestMatch) {
        best = id;
        bestMatch = match;
      }
    }
    const term = this.term;
    this.becomeFollower(term, NONE);
    // Hand over at once rather than wait for an election timeout (§3.10).
    if (best !== NONE) this.send({ type: 'timeout-now', from: this.id, to: best, term });
  }

  // ---------------------------------------------------------------------------------------
  // Replication

  /** Sends the appends that proposals or commit advances made necessary (once per Ready). */
  flush(): void {
    if (this.needsBroadcast && this.role === 'leader') this.bcastAppend();
    this.needsBroadcast = false;
  }

  /** Sends appends to every follower; used after new entries or a commit advance. */
  bcastAppend(): void {
    this.needsBroadcast = false;
    for (const id of this.trk.progress.keys()) {
      if (id !== this.id) this.sendAppendsTo(id, true);
    }
  }

  /** Sends as many appends as flow control allows (pipelining in replicate state). */
  private sendAppendsTo(to: NodeId, sendIfEmpty: boolean): void {
    if (!this.sendAppend(to, sendIfEmpty)) return;
    const progress = this.trk.get(to);
    while (progress?.state === 'replicate' && this.sendAppend(to, false)) {
      // keep streaming while entries remain and the window is open
    }
  }

  /**
   * Sends one AppendEntries to `to` (or asks for a snapshot when the entries it needs are
   * compacted). Returns whether a message was sent.
   */
  private sendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const progress = this.trk.get(to);
    if (progress === undefined || progress.isPaused()) return false;
    const prevLogIndex = progress.next - 1;
    const last = this.log.lastIndex();
    let prevLogTerm: number;
    let entries: Entry[];
    try {
      prevLogTerm = this.log.term(prevLogIndex);
      entries =
        progress.next <= last
          ? this.log.slice(progress.next, last + 1, this.options.maxSizePerMsg)
          : [];
    } catch (error) {
      if (error instanceof CompactedError) return this.sendSnapshot(to);
      throw error;
    }
    if (entries.length === 0 && !sendIfEmpty) return false;
    let bytes = 0;
    for (const entry of entries) bytes += entrySize(entry);
    this.send({
      type: 'append',
      from: this.id,
      to,
      term: this.term,
      prevLogIndex,
      prevLogTerm,
      entries,
      commit: this.log.committed,
    });
    progress.sentEntries(entries.length, prevLogIndex + entries.length, bytes);
    return true;
  }

  private sendSnapshot(to: NodeId): boolean {
    const progress = this.trk.mustGet(to);
    if (!progress.recentActive) return false;
    const meta = this.log.storage.snapshotMeta();
    invariant(meta.index > 0, 'entries are compacted but there is no snapshot');
    progress.becomeSnapshot(meta.index);
    this.snapshotRequests.push({ to, term: this.term, meta });
    return true;
  }

  /** The driver's report on a snapshot stream it ran for the leader (etcd ReportSnapshot). */
  reportSnapshot(to: NodeId, success: boolean): void {
    const progress = this.trk.get(to);
    if (this.role !== 'leader' || progress?.state !== 'snapshot') return;
    if (!success) progress.pendingSnapshot = 0;
    progress.becomeProbe();
    // Wait for the follower's append response (or the next heartbeat) before probing.
    progress.probeSent = true;
  }

  /** The transport could not reach `to`: stop pipelining into the void. */
  reportUnreachable(to: NodeId): void {
    const progress = this.trk.get(to);
    if (this.role === 'leader' && progress?.state === 'replicate') progress.becomeProbe();
  }

  private bcastHeartbeat(): void {
    const context = this.readOnly.currentContext();
    for (const [id, progress] of this.trk.progress) {
      if (id === this.id) continue;
      this.send({
        type: 'heartbeat',
        from: this.id,
        to: id,
        term: this.term,
        commit: Math.min(progress.match, this.log.committed),
        context,
      });
    }
  }

  // ---------------------------------------------------------------------------------------
  // Client requests

  /** Appends commands (normal entries) to the leader's log. Returns the last index. */
  propose(data: readonly Uint8Array[]): number {
    this.checkCanPropose();
    const index = this.appendEntries(data.map((d) => ({ kind: 'normal' as const, data: d })));
    this.needsBroadcast = true;
    return index;
  }

  /** Appends a single-server membership change (§4.1: one at a time). Returns its index. */
  proposeConfChange(change: ConfChange): number {
    this.checkCanPropose();
    if (this.pendingConfIndex > this.log.committed)
      throw new ProposalDroppedError('conf-change-pending');
    const next = applyConfChange(this.currentConf(), change);
    if (typeof next === 'string')
      throw new ProposalDroppedError('invalid-conf-change', `invalid conf change: ${next}`);
    if (change.type === 'promote') {
      // §4.2.1: a new voter must first catch up, or it would stall commitment.
      const learner = this.trk.get(change.nodeId);
      if (
        learner === undefined ||
        this.log.lastIndex() - learner.match > this.options.maxLearnerLag
      ) {
        throw new ProposalDroppedError('learner-not-caught-up');
      }
    }
    const index = this.appendEntries([
      { kind: 'conf-change', data: encodeConfChange({ change, conf: next }) },
    ]);
    this.pendingConfIndex = index;
    this.needsBroadcast = true;
    return index;
  }

  private checkCanPropose(): void {
    if (this.role !== 'leader') throw new NotLeaderError(this.lead);
    // §3.10: stop accepting proposals while handing leadership over.
    if (this.leadTransferee !== NONE) throw new ProposalDroppedError('transfer-in-progress');
  }

  /** Starts a linearizable read (§6.4); the outcome arrives as a ReadState or a read failure. */
  readIndex(context: number): void {
    if (this.role === 'leader') {
      this.handleReadIndex(this.id, context);
    } else if (this.lead !== NONE) {
      // Followers forward to the leader (§6.4 "followers ... request the read index from the leader").
      this.send({ type: 'read-index', from: this.id, to: this.lead, term: this.term, context });
    } else {
      this.readFailures.push(context);
    }
  }

  private handleReadIndex(requester: NodeId, context: number): void {
    if (this.log.termOrZero(this.log.committed) !== this.term) {
      // §6.4 step 1: until an entry of its term commits, the leader does not know the commit index.
      this.pendingReadIndex.push({ requester, context });
      return;
    }
    this.serveReadIndex(requester, context);
  }

  private serveReadIndex(requester: NodeId, context: number): void {
    const index = this.log.committed;
    const onlyVoter = this.trk.conf.voters.length === 1 && this.trk.isVoter(this.id);
    if (onlyVoter || this.options.readOnly === 'lease-based') {
      this.respondRead(requester, context, index, false);
      return;
    }
    this.readOnly.add(requester, context, index);
    this.bcastHeartbeat();
  }

  private releasePendingReadIndex(): void {
    const pending = this.pendingReadIndex;
    this.pendingReadIndex = [];
    for (const read of pending) this.serveReadIndex(read.requester, read.context);
  }

  private respondRead(requester: NodeId, context: number, index: number, rejected: boolean): void {
    if (requester === this.id) {
      if (rejected) this.readFailures.push(context);
      else this.readStates.push({ context, index });
    } else {
      this.send(this.readIndexResponse(requester, context, index, rejected));
    }
  }

  private readIndexResponse(
    to: NodeId,
    context: number,
    index: number,
    rejected: boolean,
  ): Message {
    return {
      type: 'read-index-response',
      from: this.id,
      to,
      term: this.term,
      context,
      index,
      rejected,
    };
  }

  /** Leadership transfer (§3.10). */
  transferLeadership(target: NodeId): void {
    if (this.role !== 'leader') throw new NotLeaderError(this.lead);
    if (target === this.id) return;
    if (!this.trk.isVoter(target)) {
      throw new ProposalDroppedError(
        'invalid-conf-change',
        `cannot transfer leadership to non-voter ${target}`,
      );
    }
    if (this.leadTransferee === target) return;
    this.leadTransferee = target;
    this.electionElapsed = 0; // the transfer aborts after one election timeout
    const progress = this.trk.mustGet(target);
    if (progress.match === this.log.lastIndex()) {
      this.send({ type: 'timeout-now', from: this.id, to: target, term: this.term });
    } else {
      this.sendAppend(target, true);
    }
  }

  /**
   * The driver assembled a snapshot from the leader's chunks and stored it. Adopts it unless
   * the log already covers it (§5.1 InstallSnapshot receiver rules 6-8). Returns whether the
   * state machine must be restored from it.
   */
  installSnapshot(meta: SnapshotMeta): boolean {
    const answerTo = this.lead;
    let restore = false;
    if (meta.index <= this.log.committed) {
      // Stale: we already have it.
    } else if (this.log.matchTerm(meta.index, meta.term)) {
      // Rule 6: our log has the snapshot's last entry: keep what follows it.
      this.log.commitTo(meta.index);
    } else {
      this.log.restore(meta);
      this.confHistory = [{ index: meta.index, conf: meta.conf }];
      this.switchConf();
      restore = true;
    }
    if (answerTo !== NONE && this.role === 'follower') {
      // Like etcd: report the commit index, the highest index known to match the leader.
      this.send(this.appendResponse(answerTo, true, this.log.committed, 0, 0));
    }
    return restore;
  }
}

/** Payload bytes of entries (what the uncommitted limit counts: no per-entry overhead). */
function payloadBytes(items: readonly { data: Uint8Array }[]): number {
  let bytes = 0;
  for (const item of items) bytes += item.data.byteLength;
  return bytes;
}
