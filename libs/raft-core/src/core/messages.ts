import type { Entry, NodeId } from './types';

/**
 * The messages Raft nodes exchange: a discriminated union on `type`.
 *
 * Wire contract (the binary codec encodes exactly these fields): every field is a number,
 * a {@link NodeId}, a boolean, a `Uint8Array`, an `Entry[]` or a `NodeId[]`. New message
 * types or fields are added, never renamed; removing one is a codec version bump.
 *
 * Every message carries `from`, `to` and the sender's `term` (Figure 2: "if RPC request or
 * response contains term T > currentTerm: set currentTerm = T, convert to follower").
 * Pre-vote messages are the exception the thesis describes in §9.6: a pre-vote request carries
 * the term the candidate *would* use, and neither it nor its response changes anyone's term.
 */
export type Message =
  | VoteRequest
  | VoteResponse
  | AppendRequest
  | AppendResponse
  | HeartbeatRequest
  | HeartbeatResponse
  | SnapshotChunk
  | SnapshotChunkAck
  | TimeoutNow
  | ReadIndexRequest
  | ReadIndexResponse
  | LogLost;

export type MessageType = Message['type'];

interface MessageHeader {
  readonly from: NodeId;
  readonly to: NodeId;
  readonly term: number;
}

/** RequestVote (§3.4), or a pre-vote (§9.6) when `preVote`. */
export interface VoteRequest extends MessageHeader {
  readonly type: 'vote-request';
  readonly preVote: boolean;
  readonly lastLogIndex: number;
  readonly lastLogTerm: number;
  /**
   * Sent by a leadership-transfer target (§3.10): voters grant it even if they heard from a
   * leader recently (the disruption guard of §4.2.3 would otherwise refuse it).
   */
  readonly transfer: boolean;
}

export interface VoteResponse extends MessageHeader {
  readonly type: 'vote-response';
  readonly preVote: boolean;
  readonly granted: boolean;
}

/** AppendEntries (§3.5). An empty `entries` is a probe or a commit-index carrier. */
export interface AppendRequest extends MessageHeader {
  readonly type: 'append';
  readonly prevLogIndex: number;
  readonly prevLogTerm: number;
  readonly entries: Entry[];
  /** Leader's commit index. */
  readonly commit: number;
}

/**
 * Answer to {@link AppendRequest}.
 *
 * On success, `index` is the last index the follower now matches (prevLogIndex + entries).
 * On rejection, `index` is the rejected `prevLogIndex` and the hint lets the leader skip a
 * whole term per round trip (§5.3 "fast backup", as in etcd): `conflictIndex`/`conflictTerm`
 * name the follower's last entry at or below `index` whose term is <= the leader's
 * `prevLogTerm` (term 0 = the follower's log ends below `index`; `conflictIndex` is then its
 * last index).
 */
export interface AppendResponse extends MessageHeader {
  readonly type: 'append-response';
  readonly success: boolean;
  readonly index: number;
  readonly conflictIndex: number;
  readonly conflictTerm: number;
}

/**
 * Leader heartbeat (§3.4). `commit` is min(follower's match, leader's commit) so a follower
 * never commits past what it verifiably holds. `context` is non-zero when the heartbeat also
 * confirms leadership for ReadIndex round `context` (§6.4).
 */
export interface HeartbeatRequest extends MessageHeader {
  readonly type: 'heartbeat';
  readonly commit: number;
  readonly context: number;
}

export interface HeartbeatResponse extends MessageHeader {
  readonly type: 'heartbeat-response';
  readonly context: number;
}

/**
 * One chunk of an InstallSnapshot stream (§5.1). Chunks of one snapshot are sent in order;
 * `offset` is the byte offset of `data` in the snapshot image and `done` marks the last chunk.
 * The snapshot's metadata travels in every chunk so any chunk is self-describing.
 */
export interface SnapshotChunk extends MessageHeader {
  readonly type: 'snapshot-chunk';
  readonly snapshotIndex: number;
  readonly snapshotTerm: number;
  readonly voters: NodeId[];
  readonly learners: NodeId[];
  readonly offset: number;
  readonly data: Uint8Array;
  readonly done: boolean;
}

/**
 * Flow-control acknowledgement of snapshot chunks: the follower has durably written
 * `nextOffset` bytes of snapshot `snapshotIndex`. `rejected` asks the sender to abandon the
 * stream (out-of-order chunk, unknown stream, write failure). The final outcome of an
 * installed snapshot is reported by an {@link AppendResponse}, as in etcd.
 */
export interface SnapshotChunkAck extends MessageHeader {
  readonly type: 'snapshot-ack';
  readonly snapshotIndex: number;
  readonly nextOffset: number;
  readonly rejected: boolean;
}

/** Leadership transfer (§3.10): the target starts an election at once. */
export interface TimeoutNow extends MessageHeader {
  readonly type: 'timeout-now';
}

/** A follower forwarding a linearizable read to the leader (§6.4). */
export interface ReadIndexRequest extends MessageHeader {
  readonly type: 'read-index';
  /** Chosen by the requesting node; echoed back. */
  readonly context: number;
}

/**
 * The leader's answer: the read may be served once the requester applied `index`.
 * `rejected` when the receiver is not (or not yet) an able leader; the requester retries.
 */
export interface ReadIndexResponse extends MessageHeader {
  readonly type: 'read-index-response';
  readonly context: number;
  readonly index: number;
  readonly rejected: boolean;
}

/** Approximate encoded size of an entry, used for flow control and batching limits. */
export function entrySize(entry: Entry): number {
  return entry.data.byteLength + 24;
}

/**
 * A follower's report that its log ends at `lastIndex`, below the commit index the leader
 * just sent it in a heartbeat. The leader only sends a commit the follower acknowledged
 * holding, so this happens only when the follower lost its log (a wiped or replaced data
 * directory). The leader then forgets what it believed the follower holds and catches it up
 * again, by InstallSnapshot when those entries are compacted. Losing a disk breaks Raft's
 * persistence assumption (an entry that was committed with the lost copy now has one copy
 * fewer); this message makes the loss repairable instead of fatal for the follower.
 */
export interface LogLost extends MessageHeader {
  readonly type: 'log-lost';
  readonly lastIndex: number;
}
