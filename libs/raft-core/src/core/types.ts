/**
 * Core value types of the Raft library. Entries carry opaque bytes: the consensus core
 * never interprets a command (etcd-io/raft's raftpb, reduced to what we use).
 */

/** A node's id: a positive integer. {@link NONE} (0) means "no node". */
export type NodeId = number;

/** "No node": used for an absent vote or an unknown leader. */
export const NONE: NodeId = 0;

/**
 * What an entry carries.
 * - `normal`: an application command (an empty `data` is the no-op a new leader appends, §8).
 * - `conf-change`: an encoded {@link ConfChange}, applied to the configuration when it is
 *   *appended* (thesis §4.1: a server uses the latest configuration in its log).
 */
export type EntryKind = 'normal' | 'conf-change';

export interface Entry {
  readonly index: number;
  readonly term: number;
  readonly kind: EntryKind;
  readonly data: Uint8Array;
}

/** The state Raft must persist before answering any vote or append (Figure 2). */
export interface HardState {
  readonly term: number;
  readonly vote: NodeId;
  /** Highest index known committed. May lag on disk; it only speeds up restart. */
  readonly commit: number;
}

/** Cluster membership: voters decide; learners (non-voters) only receive the log. */
export interface ConfState {
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
}

/** Describes the state-machine image a snapshot holds (its bytes live in a SnapshotStore). */
export interface SnapshotMeta {
  /** Index of the last entry the snapshot includes. 0 for "no snapshot". */
  readonly index: number;
  /** Term of that entry. */
  readonly term: number;
  /** Membership as of `index`. */
  readonly conf: ConfState;
}

export const EMPTY_HARD_STATE: HardState = Object.freeze({ term: 0, vote: NONE, commit: 0 });
export const EMPTY_CONF_STATE: ConfState = Object.freeze({ voters: [], learners: [] });
export const EMPTY_SNAPSHOT_META: SnapshotMeta = Object.freeze({
  index: 0,
  term: 0,
  conf: EMPTY_CONF_STATE,
});
