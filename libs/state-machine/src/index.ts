/**
 * @packageDocumentation
 * The replicated metadata state of the DMQ controller quorum (what KRaft's controller keeps
 * for Kafka): brokers, topics, partitions and the idempotency table, driven by the commands
 * of the Raft log. Pure and deterministic: no I/O, no clock, no randomness.
 *
 * The app uses: {@link MetadataStateMachine} (apply, queries, snapshot/restore, backup rows),
 * {@link encodeCommand}/{@link decodeCommand} (commands as the opaque bytes of Raft entries),
 * the command types, {@link ApplyResult} (a value, or a rejection carrying an `ErrorCode` of
 * the HTTP contract), and {@link restoreCommandFromBackupRows} for disaster recovery.
 */
export { MetadataStateMachine } from './metadata-state-machine';
export type {
  IdempotencyCheck,
  MetadataStateMachineOptions,
  StateCounts,
} from './metadata-state-machine';
export {
  COMMAND_FORMAT_VERSION,
  commandSchema,
  decodeCommand,
  encodeCommand,
  validateCommand,
} from './commands';
export type {
  AlterPartitionCommand,
  BrokerHeartbeatCommand,
  Command,
  CommandIdempotency,
  CommandType,
  CommandValidation,
  ControlledShutdownCommand,
  CreateTopicCommand,
  DeleteTopicCommand,
  ElectLeadersCommand,
  FenceBrokerCommand,
  ReassignPartitionsCommand,
  RegisterBrokerCommand,
  RestoreFromBackupCommand,
  AbortRestoreFromBackupCommand,
  TopicPartition,
  UnfenceBrokerCommand,
  UnregisterBrokerCommand,
  UpdateTopicConfigCommand,
} from './commands';
export type {
  ApplyRejection,
  ApplyResult,
  ApplyResultOf,
  ApplySuccess,
  CommandValue,
  CommandValues,
  DeletedTopic,
  ElectionOutcome,
  ElectLeadersValue,
  ReassignPartitionsValue,
  RejectionReason,
  RestoreFromBackupValue,
  AbortRestoreFromBackupValue,
  UnregisteredBroker,
} from './apply-result';
export {
  RESTORE_PARTITIONS_PER_PART,
  restoreCommandFromBackupRows,
  splitRestoreCommand,
} from './backup-rows';
export type {
  BackupChanges,
  BackupRows,
  BackupRowsInput,
  BrokerRow,
  PartitionRow,
  RestorePlan,
  TopicRow,
} from './backup-rows';
export type { IdempotencyOptions } from './idempotency-table';
export { DEFAULT_IDEMPOTENCY_OPTIONS } from './idempotency-table';
export type { ChangeLogOptions } from './change-log';
export { DEFAULT_CHANGE_LOG_OPTIONS } from './change-log';
export { SNAPSHOT_FORMAT, SNAPSHOT_FORMAT_VERSION } from './snapshot';
export {
  ApplyOrderError,
  CommandDecodeError,
  InvariantViolation,
  SnapshotFormatError,
  StateMachineError,
} from './errors';
