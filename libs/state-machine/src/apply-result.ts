import type {
  BrokerInfo,
  ErrorCode,
  HeartbeatResponse,
  PartitionInfo,
  RegisterBrokerResponse,
  TopicMetadata,
} from '@dmq/api-contracts';
import type { Command, CommandType } from './commands';

/** What `DeleteTopic` answers. */
export interface DeletedTopic {
  readonly name: string;
  readonly topicId: string;
}

/** What `UnregisterBroker` answers. */
export interface UnregisteredBroker {
  readonly brokerId: number;
}

/** One partition's outcome in an `ElectLeaders` answer. */
export interface ElectionOutcome {
  readonly topic: string;
  readonly partition: number;
  /** The leader after the command (-1: none). */
  readonly leader: number;
  /** Whether this command changed the leader. */
  readonly elected: boolean;
}

/** What `ElectLeaders` answers: one entry per partition in scope, ordered by topic and partition. */
export interface ElectLeadersValue {
  readonly partitions: ElectionOutcome[];
}

/** What `ReassignPartitions` answers: the partitions as they are after the command. */
export interface ReassignPartitionsValue {
  readonly partitions: PartitionInfo[];
}

/** What `RestoreFromBackup` answers: how much the state holds now. */
export interface RestoreFromBackupValue {
  readonly brokers: number;
  readonly topics: number;
  readonly partitions: number;
  /** This part (1-based) and how many there are (1 and 1 for a restore in one command). */
  readonly part: number;
  readonly parts: number;
  /** The last part was applied: the restore is done. */
  readonly complete: boolean;
}

/** What `AbortRestoreFromBackup` answers: what it discarded. */
export interface AbortRestoreFromBackupValue {
  readonly brokers: number;
  readonly topics: number;
  readonly partitions: number;
}

/** The value of a successful command, per command type. */
export interface CommandValues {
  RegisterBroker: RegisterBrokerResponse;
  BrokerHeartbeat: HeartbeatResponse;
  FenceBroker: BrokerInfo;
  UnfenceBroker: BrokerInfo;
  ControlledShutdown: BrokerInfo;
  UnregisterBroker: UnregisteredBroker;
  CreateTopic: TopicMetadata;
  DeleteTopic: DeletedTopic;
  UpdateTopicConfig: TopicMetadata;
  AlterPartition: PartitionInfo;
  ElectLeaders: ElectLeadersValue;
  ReassignPartitions: ReassignPartitionsValue;
  RestoreFromBackup: RestoreFromBackupValue;
  AbortRestoreFromBackup: AbortRestoreFromBackupValue;
}

/** The value of a successful command of type `T`. */
export type CommandValue<T extends CommandType = CommandType> = CommandValues[T];

/** Why a command was refused: an `ErrorCode` of the HTTP contract and a human message. */
export interface RejectionReason {
  readonly code: ErrorCode;
  readonly message: string;
}

/** The command was applied. */
export interface ApplySuccess<V> {
  readonly ok: true;
  readonly value: V;
  /** True when this is the stored outcome of an earlier command with the same idempotency key. */
  readonly replayed: boolean;
}

/** The command was refused and changed nothing. */
export interface ApplyRejection {
  readonly ok: false;
  readonly error: RejectionReason;
  /** True when this is the stored outcome of an earlier command with the same idempotency key. */
  readonly replayed: boolean;
}

/** The outcome of applying one Raft entry. */
export type ApplyResult<V = CommandValue> = ApplySuccess<V> | ApplyRejection;

/** The outcome of applying command `C`. */
export type ApplyResultOf<C extends Command> = ApplyResult<CommandValue<C['type']>>;
