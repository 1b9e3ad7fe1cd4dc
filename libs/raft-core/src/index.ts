/**
 * @dmq/raft-core: a pure Raft consensus core (etcd-io/raft shape), its storage contract and
 * in-memory storage, and the async driver that runs it. Internals (the `Raft` state machine,
 * progress tracking, the log view) stay private: use {@link RawNode} or {@link RaftNode}.
 */
export { NONE, EMPTY_CONF_STATE, EMPTY_HARD_STATE, EMPTY_SNAPSHOT_META } from './core/types';
export type { ConfState, Entry, EntryKind, HardState, NodeId, SnapshotMeta } from './core/types';
export type * from './core/messages';
export { entrySize } from './core/messages';
export {
  CompactedError,
  InvariantViolation,
  LeadershipLostError,
  NodeStoppedError,
  NotLeaderError,
  ProposalDroppedError,
  RaftError,
  UnavailableError,
} from './core/errors';
export type { DropReason, RaftErrorCode } from './core/errors';
export { applyConfChange, decodeConfChange, encodeConfChange } from './core/conf-change';
export type { ConfChange, ConfChangeRecord, ConfChangeType } from './core/conf-change';
export { RawNode } from './core/raw-node';
export type { ProposalPosition, Ready, SoftState, Status } from './core/raw-node';
export type { RaftOptions, RaftRole, ReadState, SnapshotRequest } from './core/raft';
export type { ProgressState } from './core/progress';
export type { LogStorage } from './storage/log-storage';
export { MemoryStorage } from './storage/memory-storage';
export type { MemoryStorageOptions } from './storage/memory-storage';
export type { SnapshotStore, SnapshotWriter } from './storage/snapshot-store';
export { MemorySnapshotStore } from './storage/memory-snapshot-store';
export { RaftNode } from './driver/raft-node';
export type { Committed, RaftNodeOptions, TakenSnapshot } from './driver/raft-node';
export { silentLogger, systemClock } from './driver/ports';
export type { Clock, Logger, StateMachine, TimerHandle, Transport } from './driver/ports';
export { FileLogStorage, DEFAULT_FILE_LOG_STORAGE_OPTIONS } from './storage/file-log-storage';
export type { FileLogStorageOptions, FileLogRecoveryReport } from './storage/file-log-storage';
export {
  FileSnapshotStore,
  DEFAULT_FILE_SNAPSHOT_STORE_OPTIONS,
} from './storage/file-snapshot-store';
export type { FileSnapshotStoreOptions } from './storage/file-snapshot-store';
export {
  StorageError,
  CorruptLogError,
  CorruptStateError,
  CorruptSnapshotError,
  UnsupportedVersionError,
  StorageIoError,
  StorageClosedError,
} from './storage/storage-errors';
export type { StorageErrorCode } from './storage/storage-errors';
export { CODEC_VERSION, encodeMessage, decodeMessage } from './codec/message-codec';
export { CodecError } from './codec/codec-error';
export type { CodecErrorCode } from './codec/codec-error';
