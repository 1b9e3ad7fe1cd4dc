// The plain rows a backup job carries. Their shapes match the backup-row converters of
// @dmq/state-machine (`brokerRowSchema`, `topicRowSchema`, `partitionRowSchema`), plus
// `PartitionRow.topicId`, which the writer needs to tell a re-created topic's partitions from
// the deleted one's. Everything is JSON-safe (numbers, strings, ms timestamps): rows travel
// through Redis in BullMQ jobs.

/** A row of the `brokers` table, as of the batch's Raft index. */
export interface BrokerRow {
  brokerId: number;
  host: string;
  port: number;
  rack: string | null;
  /** New and larger on every registration of this broker id. */
  brokerEpoch: number;
  /** `ONLINE` or `FENCED`. */
  status: string;
  pushEndpoint: string | null;
  /** Epoch ms of the last replicated heartbeat, or null. */
  lastHeartbeatAtMs: number | null;
  registeredAtMs: number;
}

/** A row of the `topics` table, as of the batch's Raft index. */
export interface TopicRow {
  name: string;
  /** UUID text; distinct for a topic re-created under the same name. */
  topicId: string;
  replicationFactor: number;
  partitionCount: number;
  config: Readonly<Record<string, string>>;
  createdAtMs: number;
}

/** A row of the `partitions` table, as of the batch's Raft index. */
export interface PartitionRow {
  topicName: string;
  /** The incarnation of the topic this partition belongs to. */
  topicId: string;
  partitionId: number;
  /** Broker id of the leader, or -1 when there is none. */
  leaderId: number;
  replicaIds: readonly number[];
  isrIds: readonly number[];
  startOffset: number;
  endOffset: number;
  leaderEpoch: number;
  partitionEpoch: number;
  /** Epoch ms of the Raft command that last changed the partition. */
  lastUpdatedAtMs: number;
}

/** A deleted topic: its name and the id of the incarnation that was deleted. */
export interface DeletedTopic {
  name: string;
  topicId: string;
}

/**
 * What one Raft entry (or a full resync) changed in the backed-up tables: the complete new
 * rows of everything it created or changed, and the keys of everything it removed. Rows are
 * whole rows, not deltas, so applying the newest one per key is enough, in any order.
 */
export interface BackupBatch {
  /** Raft index of the state the rows reflect (the entry's index; for a resync, the applied index). */
  raftIndex: number;
  /**
   * The backup generation of the cluster that made the batch (absent: 0). A cluster restored
   * from the backup has the next generation; the writer drops batches of older generations
   * and rebases the backup on a newer generation's full batch (see `BackupWriter`).
   */
  generation?: number;
  brokers?: readonly BrokerRow[];
  deletedBrokerIds?: readonly number[];
  topics?: readonly TopicRow[];
  deletedTopics?: readonly DeletedTopic[];
  /**
   * Set on a catch-up batch: it holds everything that changed after this index (several
   * entries at once). Its job id names the range, so it is never taken for the one-entry job
   * of the same `raftIndex` (BullMQ ignores a job whose id it already holds).
   */
  sinceIndex?: number;
  /** Partitions created or changed (a new topic's partitions come with it). */
  partitions?: readonly PartitionRow[];
  /**
   * A full resync: the batch holds EVERY broker, topic and partition of the state at
   * `raftIndex`. Rows older than `raftIndex` that it does not mention are deleted (and
   * tombstoned), which repairs a backup that lost a deletion (e.g. a dead-lettered job).
   */
  full?: boolean;
}
