import type {
  AddMemberRequest,
  AlterPartitionRequest,
  BackupDeadLettersResponse,
  BackupResyncResponse,
  BrokerInfo,
  ClusterStatus,
  CreateTopicCommandInput,
  HeartbeatRequest,
  HeartbeatResponse,
  LeadershipTransferResponse,
  MembersResponse,
  MetadataDelta,
  MetadataResponse,
  PartitionInfo,
  RegisterBrokerRequest,
  RegisterBrokerResponse,
  SnapshotResponse,
  TopicConfig,
  TopicMetadata,
} from '@dmq/api-contracts';

/** How a write is identified for idempotency (contract §Idempotency). */
export interface WriteOptions {
  /** The client's `Idempotency-Key`, when it sent one. */
  readonly idempotencyKey?: string;
  /** Hash of the request (method, route, canonical body): a reused key with another hash is a 422. */
  readonly requestHash: string;
  /** Aborted when the client goes away or the commit timeout passes. */
  readonly signal: AbortSignal;
}

export interface ReadOptions {
  readonly consistency: 'linearizable' | 'stale';
  /** Wait until the local state has applied at least this version. */
  readonly minVersion?: number;
  readonly signal: AbortSignal;
}

/**
 * What the HTTP layer needs from the node: the composition root implements it over Raft and
 * the state machine; the HTTP tests implement it in memory. Writes resolve after commit and
 * apply; every method that refuses throws an {@link ApiError}.
 */
export interface MetadataApi {
  readonly nodeId: number;
  /** Id of the leader this node knows, if any. */
  leaderId(): number | undefined;
  isLeader(): boolean;
  /** Raft index of the state local reads reflect (the applied index). */
  metadataVersion(): number;
  /** Resolves once a read with these options may be answered from the local state. */
  readBarrier(options: ReadOptions): Promise<void>;
  /** Resolves once the metadata version exceeds `version`, or after `waitMs` (long-poll). */
  waitForVersionAbove(version: number, waitMs: number, signal: AbortSignal): Promise<void>;

  listTopics(): TopicMetadata[];
  getTopic(name: string): TopicMetadata | undefined;
  listBrokers(): BrokerInfo[];
  metadata(): MetadataResponse;
  metadataDelta(sinceVersion: number): MetadataDelta;

  createTopic(request: CreateTopicCommandInput, options: WriteOptions): Promise<TopicMetadata>;
  deleteTopic(name: string, options: WriteOptions): Promise<void>;
  updateTopicConfig(
    name: string,
    config: TopicConfig,
    options: WriteOptions,
  ): Promise<TopicMetadata>;
  registerBroker(
    request: RegisterBrokerRequest,
    options: WriteOptions,
  ): Promise<RegisterBrokerResponse>;
  heartbeat(
    brokerId: number,
    request: HeartbeatRequest,
    options: WriteOptions,
  ): Promise<HeartbeatResponse>;
  alterPartition(
    topic: string,
    partition: number,
    request: AlterPartitionRequest,
    options: WriteOptions,
  ): Promise<PartitionInfo>;
  unregisterBroker(brokerId: number, options: WriteOptions): Promise<void>;

  clusterStatus(): ClusterStatus;
  transferLeadership(
    targetId: number | undefined,
    signal: AbortSignal,
  ): Promise<LeadershipTransferResponse>;
  snapshot(signal: AbortSignal): Promise<SnapshotResponse>;
  addMember(request: AddMemberRequest, options: WriteOptions): Promise<MembersResponse>;
  removeMember(id: number, options: WriteOptions): Promise<MembersResponse>;
  backupResync(signal: AbortSignal): Promise<BackupResyncResponse>;
  /** The newest `limit` dead-lettered backup jobs and how many there are (any node answers). */
  backupDeadLetters(limit: number): Promise<BackupDeadLettersResponse>;
  /** `/readyz`: a leader is known and this node applied up to the commit index it last heard of. */
  readiness(): { readonly ready: boolean; readonly reason?: string };
}
