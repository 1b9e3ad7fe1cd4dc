import type { NodeId } from './types';

/**
 * Every error the Raft library throws or rejects with. `code` is stable: callers branch on
 * it (the app maps codes to HTTP statuses in one place); messages are for humans.
 */
export type RaftErrorCode =
  | 'raft/not-leader'
  | 'raft/proposal-dropped'
  | 'raft/leadership-lost'
  | 'raft/node-stopped'
  | 'raft/invariant-violation'
  | 'storage/compacted'
  | 'storage/unavailable';

/** Base class of the library's errors. */
export abstract class RaftError extends Error {
  abstract readonly code: RaftErrorCode;
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/**
 * This node is not the leader. `leaderId` is the leader it knows of ({@link NONE} = 0 when
 * unknown), so a client can redirect.
 */
export class NotLeaderError extends RaftError {
  readonly code = 'raft/not-leader' as const;
  constructor(
    readonly leaderId: NodeId,
    message = `not the leader (known leader: ${leaderId === 0 ? 'none' : leaderId})`,
  ) {
    super(message);
  }
}

/** Why the leader refused a proposal before appending it. */
export type DropReason =
  | 'transfer-in-progress'
  | 'conf-change-pending'
  | 'invalid-conf-change'
  | 'learner-not-caught-up'
  | 'read-not-ready'
  | 'no-leader'
  /** The leader's log holds too many bytes not yet applied (commits stall): back-pressure. */
  | 'uncommitted-limit';

/**
 * The proposal (or read request) was refused before it entered the log: nothing was
 * appended, retrying later is safe.
 */
export class ProposalDroppedError extends RaftError {
  readonly code = 'raft/proposal-dropped' as const;
  constructor(
    readonly reason: DropReason,
    message = `proposal dropped: ${reason}`,
  ) {
    super(message);
  }
}

/**
 * The entry was appended while this node led, but another leader's log replaced it: it will
 * never commit at the index it was given (when `definite`), or its outcome can no longer be
 * observed here (a snapshot covered it; `definite` false). Retry idempotently.
 */
export class LeadershipLostError extends RaftError {
  readonly code = 'raft/leadership-lost' as const;
  constructor(
    readonly index: number,
    readonly term: number,
    readonly definite: boolean,
    message = `entry ${index}@${term} ${definite ? 'was overwritten by a new leader' : 'has an unknown outcome (leadership lost)'}`,
  ) {
    super(message);
  }
}

/** The driver was stopped while the request was pending. */
export class NodeStoppedError extends RaftError {
  readonly code = 'raft/node-stopped' as const;
  constructor(message = 'the Raft node is stopped') {
    super(message);
  }
}

/** A broken invariant: a bug (or corrupted storage), never a condition to handle. */
export class InvariantViolation extends RaftError {
  readonly code = 'raft/invariant-violation' as const;
}

/** The requested index is below the log's first index: it was compacted into a snapshot. */
export class CompactedError extends RaftError {
  readonly code = 'storage/compacted' as const;
  constructor(
    readonly index: number,
    message = `index ${index} is compacted`,
  ) {
    super(message);
  }
}

/** The requested index is above the log's last index. */
export class UnavailableError extends RaftError {
  readonly code = 'storage/unavailable' as const;
  constructor(
    readonly index: number,
    message = `index ${index} is not in the log yet`,
  ) {
    super(message);
  }
}

/** Throws {@link InvariantViolation} when `condition` is false. */
export function invariant(condition: boolean, message: string | (() => string)): asserts condition {
  if (!condition) {
    throw new InvariantViolation(typeof message === 'string' ? message : message());
  }
}
