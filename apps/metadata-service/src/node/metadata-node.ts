import {
  ErrorCode,
  type AddMemberRequest,
  type AlterPartitionRequest,
  type BackupDeadLettersResponse,
  type BackupResyncResponse,
  type BackupStatus,
  type BrokerInfo,
  type ClusterMember,
  type ClusterStatus,
  type CreateTopicCommandInput,
  type HeartbeatRequest,
  type HeartbeatResponse,
  type LeadershipTransferResponse,
  type MembersResponse,
  type MetadataDelta,
  type MetadataResponse,
  type PartitionInfo,
  type RaftRole,
  type RegisterBrokerRequest,
  type RegisterBrokerResponse,
  type SnapshotResponse,
  type TopicConfig,
  type TopicMetadata,
} from '@dmq/api-contracts';
import { NONE, type RaftNode } from '@dmq/raft-core';
import {
  encodeCommand,
  type ApplyResult,
  type Command,
  type CommandType,
  type CommandValue,
} from '@dmq/state-machine';
import { ApiError } from '../http/api-error';
import type { MetadataApi, ReadOptions, WriteOptions } from '../http/ports';
import type { BrokerLiveness } from '../brokers/broker-liveness';
import type { MetadataState } from './metadata-state';
import { proposalError, withCommitTimeout } from './proposal-errors';

/** Distributes a command type over the union, so `Omit` keeps each member's own fields. */
type CommandBody<T extends CommandType> = T extends CommandType
  ? Omit<Extract<Command, { type: T }>, 'timestampMs' | 'idempotency'>
  : never;

/** What the node tells about its backup (persistence lives in the composition root). */
export interface BackupPort {
  status(): BackupStatus;
  /** Enqueues a full backup of the current state; resolves with what was enqueued. */
  resync(): Promise<BackupResyncResponse>;
  /** The newest `limit` dead letters of the backup queue and their count. */
  deadLetters(limit: number): Promise<BackupDeadLettersResponse>;
}

/** What the node knows of its peers' network side. */
export interface PeerDirectory {
  addressOf(nodeId: number): string | undefined;
  /** Learns the address of a member added at run time (for this node only). */
  remember(nodeId: number, address: string): void;
  /** Milliseconds since this node last delivered a message to the peer. */
  lastContactMs(nodeId: number): number | null;
}

/** Operations only the Raft driver can do that the node exposes. */
export interface SnapshotPort {
  snapshotNow(): Promise<SnapshotResponse>;
}

export interface MetadataNodeOptions {
  readonly nodeId: number;
  readonly clusterId: string;
  readonly raft: RaftNode<ApplyResult>;
  readonly state: MetadataState;
  readonly liveness: BrokerLiveness;
  readonly backup: BackupPort;
  readonly peers: PeerDirectory;
  readonly snapshots: SnapshotPort;
  readonly commitTimeoutMs: number;
  /** Wall-clock milliseconds, written into each command (the state machine's only clock). */
  readonly wallClock: () => number;
  /** Told how long each proposal took until commit and apply, and how it ended. */
  readonly observeProposal?: (
    seconds: number,
    outcome: 'committed' | 'rejected' | 'failed',
  ) => void;
}

/**
 * The node's implementation of the HTTP layer's {@link MetadataApi}: writes become commands
 * proposed to Raft and answered after commit and apply; reads are served from the local
 * state after the barrier the request asked for.
 */
export class MetadataNode implements MetadataApi {
  readonly nodeId: number;
  /** Commit index this node last heard of when it was last ready (for /readyz). */
  constructor(private readonly options: MetadataNodeOptions) {
    this.nodeId = options.nodeId;
  }

  private get raft(): RaftNode<ApplyResult> {
    return this.options.raft;
  }

  private get machine() {
    return this.options.state.current;
  }

  leaderId(): number | undefined {
    const leader = this.raft.leaderId();
    return leader === NONE ? undefined : leader;
  }

  isLeader(): boolean {
    return this.raft.isLeader();
  }

  metadataVersion(): number {
    return this.options.state.version;
  }

  async readBarrier(options: ReadOptions): Promise<void> {
    if (options.consistency === 'linearizable') {
      try {
        await withCommitTimeout(this.raft.readIndex(), this.options.commitTimeoutMs);
      } catch (err) {
        const mapped = proposalError(err);
        // A read changes nothing, so an unknown outcome is simply "no leader confirmed it".
        throw mapped.code === ErrorCode.COMMIT_TIMEOUT
          ? new ApiError(ErrorCode.NO_LEADER, 'no leader confirmed the read in time')
          : mapped;
      }
    }
    if (options.minVersion !== undefined && this.options.state.version < options.minVersion) {
      await this.options.state.waitForVersion(
        options.minVersion,
        this.options.commitTimeoutMs,
        options.signal,
      );
      if (this.options.state.version < options.minVersion) {
        throw new ApiError(
          ErrorCode.NOT_READY,
          `this node has applied version ${this.options.state.version}, not yet ${options.minVersion}`,
        );
      }
    }
  }

  waitForVersionAbove(version: number, waitMs: number, signal: AbortSignal): Promise<void> {
    return this.options.state.waitForVersion(version + 1, waitMs, signal);
  }

  listTopics(): TopicMetadata[] {
    return this.machine.topics();
  }

  getTopic(name: string): TopicMetadata | undefined {
    return this.machine.topic(name);
  }

  listBrokers(): BrokerInfo[] {
    return this.machine.brokers();
  }

  metadata(): MetadataResponse {
    return this.machine.metadata();
  }

  metadataDelta(sinceVersion: number): MetadataDelta {
    return this.machine.delta(sinceVersion);
  }

  // ---------------------------------------------------------------------------------------
  // Writes

  /**
   * Proposes a command and answers its outcome. A repeat of an idempotency key the state
   * already knows is answered from the table without a new Raft write.
   */
  async propose<T extends CommandType>(
    body: CommandBody<T>,
    write?: Pick<WriteOptions, 'idempotencyKey' | 'requestHash'>,
  ): Promise<CommandValue<T>> {
    if (!this.raft.isLeader()) {
      throw new ApiError(ErrorCode.NO_LEADER, 'this node is not the leader; nothing was committed');
    }
    if (write?.idempotencyKey !== undefined) {
      const seen = this.machine.checkIdempotencyKey(write.idempotencyKey, write.requestHash);
      if (seen.kind !== 'new') return unwrap<T>(seen.result);
    }
    const command = {
      ...body,
      timestampMs: this.options.wallClock(),
      ...(write?.idempotencyKey === undefined
        ? {}
        : { idempotency: { key: write.idempotencyKey, requestHash: write.requestHash } }),
    } as Command;
    let committed;
    const started = performance.now();
    const observe = (outcome: 'committed' | 'rejected' | 'failed') =>
      this.options.observeProposal?.((performance.now() - started) / 1000, outcome);
    try {
      committed = await withCommitTimeout(
        this.raft.propose(encodeCommand(command)),
        this.options.commitTimeoutMs,
      );
    } catch (err) {
      observe('failed');
      throw proposalError(err);
    }
    observe(committed.result.ok ? 'committed' : 'rejected');
    return unwrap<T>(committed.result);
  }

  createTopic(request: CreateTopicCommandInput, options: WriteOptions): Promise<TopicMetadata> {
    return this.propose<'CreateTopic'>({ type: 'CreateTopic', ...request }, options);
  }

  async deleteTopic(name: string, options: WriteOptions): Promise<void> {
    await this.propose<'DeleteTopic'>({ type: 'DeleteTopic', name }, options);
  }

  updateTopicConfig(
    name: string,
    config: TopicConfig,
    options: WriteOptions,
  ): Promise<TopicMetadata> {
    return this.propose<'UpdateTopicConfig'>({ type: 'UpdateTopicConfig', name, config }, options);
  }

  async registerBroker(
    request: RegisterBrokerRequest,
    options: WriteOptions,
  ): Promise<RegisterBrokerResponse> {
    const result = await this.propose<'RegisterBroker'>(
      { type: 'RegisterBroker', ...request },
      options,
    );
    this.options.liveness.heard(result.brokerId, result.brokerEpoch, false);
    return result;
  }

  /**
   * Heartbeats stay off the Raft log: the leader records the session locally. Only offsets,
   * and a fenced broker's return (UnfenceBroker), are proposed.
   */
  async heartbeat(
    brokerId: number,
    request: HeartbeatRequest,
    options: WriteOptions,
  ): Promise<HeartbeatResponse> {
    if (!this.raft.isLeader()) {
      throw new ApiError(ErrorCode.NO_LEADER, 'this node is not the leader');
    }
    let broker = this.requireBroker(brokerId);
    if (request.brokerEpoch !== broker.brokerEpoch) {
      throw new ApiError(
        ErrorCode.STALE_BROKER_EPOCH,
        `broker ${brokerId} has epoch ${broker.brokerEpoch}, not ${request.brokerEpoch}: register again`,
      );
    }
    this.options.liveness.heard(brokerId, broker.brokerEpoch, broker.status === 'FENCED');
    if (broker.status === 'FENCED') {
      broker = await this.propose<'UnfenceBroker'>(
        { type: 'UnfenceBroker', brokerId, brokerEpoch: broker.brokerEpoch },
        undefined,
      );
      this.options.liveness.heard(brokerId, broker.brokerEpoch, broker.status === 'FENCED');
    }
    if (request.offsets !== undefined && request.offsets.length > 0) {
      return this.propose<'BrokerHeartbeat'>(
        {
          type: 'BrokerHeartbeat',
          brokerId,
          brokerEpoch: request.brokerEpoch,
          offsets: request.offsets,
        },
        options,
      );
    }
    return { status: broker.status, metadataVersion: this.options.state.version };
  }

  alterPartition(
    topic: string,
    partition: number,
    request: AlterPartitionRequest,
    options: WriteOptions,
  ): Promise<PartitionInfo> {
    return this.propose<'AlterPartition'>(
      { type: 'AlterPartition', topic, partition, ...request },
      options,
    );
  }

  async unregisterBroker(brokerId: number, options: WriteOptions): Promise<void> {
    await this.propose<'UnregisterBroker'>({ type: 'UnregisterBroker', brokerId }, options);
    this.options.liveness.removed(brokerId);
  }

  /** Proposes FenceBroker for an expired session (the liveness tracker's action). */
  async fenceBroker(brokerId: number, brokerEpoch: number): Promise<void> {
    await this.propose<'FenceBroker'>({ type: 'FenceBroker', brokerId, brokerEpoch });
  }

  private requireBroker(brokerId: number): BrokerInfo {
    const broker = this.machine.broker(brokerId);
    if (broker === undefined)
      throw new ApiError(ErrorCode.BROKER_NOT_FOUND, `broker ${brokerId} is not registered`);
    return broker;
  }

  // ---------------------------------------------------------------------------------------
  // Cluster operations

  clusterStatus(): ClusterStatus {
    const status = this.raft.status();
    const { voters, learners } = status.appliedConf;
    const members: ClusterMember[] = [
      ...voters.map((id) => [id, true] as const),
      ...learners.map((id) => [id, false] as const),
    ]
      .sort(([a], [b]) => a - b)
      .map(([id, voter]) => {
        const progress = status.progress.get(id);
        return {
          id,
          address: this.options.peers.addressOf(id) ?? 'unknown:0',
          voter,
          matchIndex: id === this.nodeId ? status.lastIndex : (progress?.match ?? null),
          lastContactMs: id === this.nodeId ? 0 : this.options.peers.lastContactMs(id),
        };
      });
    return {
      clusterId: this.options.clusterId,
      nodeId: this.nodeId,
      role: status.role as RaftRole,
      term: status.term,
      leaderId: status.lead === NONE ? null : status.lead,
      commitIndex: status.commit,
      appliedIndex: status.applied,
      snapshotIndex: status.snapshotIndex,
      members,
      backup: this.options.backup.status(),
    };
  }

  async transferLeadership(targetId: number | undefined): Promise<LeadershipTransferResponse> {
    const status = this.raft.status();
    const target = targetId ?? this.bestTransferTarget();
    if (target === undefined) {
      throw new ApiError(ErrorCode.PRECONDITION_FAILED, 'no other voter to hand leadership to');
    }
    if (!status.appliedConf.voters.includes(target)) {
      throw new ApiError(ErrorCode.PRECONDITION_FAILED, `node ${target} is not a voter`);
    }
    if (target === this.nodeId && this.raft.isLeader()) {
      return { leaderId: target, term: status.term };
    }
    let done: boolean;
    try {
      done = await this.raft.transferLeadership(target);
    } catch (err) {
      throw proposalError(err);
    }
    if (!done) {
      throw new ApiError(ErrorCode.COMMIT_TIMEOUT, `node ${target} did not take over in time`);
    }
    return { leaderId: target, term: this.raft.status().term };
  }

  private bestTransferTarget(): number | undefined {
    const status = this.raft.status();
    let best: number | undefined;
    let bestMatch = -1;
    for (const id of status.appliedConf.voters) {
      if (id === this.nodeId) continue;
      const match = status.progress.get(id)?.match ?? -1;
      if (match > bestMatch) {
        best = id;
        bestMatch = match;
      }
    }
    return best;
  }

  snapshot(): Promise<SnapshotResponse> {
    return this.options.snapshots.snapshotNow();
  }

  async addMember(request: AddMemberRequest): Promise<MembersResponse> {
    const status = this.raft.status();
    if ([...status.appliedConf.voters, ...status.appliedConf.learners].includes(request.id)) {
      throw new ApiError(ErrorCode.PRECONDITION_FAILED, `node ${request.id} is already a member`);
    }
    if (this.options.peers.addressOf(request.id) === undefined) {
      this.options.peers.remember(request.id, request.address);
    }
    try {
      await this.raft.addVoter(request.id);
    } catch (err) {
      throw proposalError(err);
    }
    return { members: this.clusterStatus().members };
  }

  async removeMember(id: number): Promise<MembersResponse> {
    const status = this.raft.status();
    if (!status.appliedConf.voters.includes(id) && !status.appliedConf.learners.includes(id)) {
      throw new ApiError(ErrorCode.PRECONDITION_FAILED, `node ${id} is not a member`);
    }
    try {
      await withCommitTimeout(
        this.raft.proposeConfChange({ type: 'remove', nodeId: id }),
        this.options.commitTimeoutMs,
      );
    } catch (err) {
      throw proposalError(err);
    }
    return { members: this.clusterStatus().members };
  }

  backupResync(): Promise<BackupResyncResponse> {
    return this.options.backup.resync();
  }

  backupDeadLetters(limit: number): Promise<BackupDeadLettersResponse> {
    return this.options.backup.deadLetters(limit);
  }

  readiness(): { ready: boolean; reason?: string } {
    const status = this.raft.status();
    if (status.lead === NONE) return { ready: false, reason: 'no leader is known' };
    if (status.applied < status.commit) {
      return {
        ready: false,
        reason: `applied ${status.applied} of ${status.commit} committed entries`,
      };
    }
    return { ready: true };
  }
}

/** A command's outcome as the HTTP layer wants it: the value, or the rejection as an ApiError. */
function unwrap<T extends CommandType>(result: ApplyResult): CommandValue<T> {
  if (result.ok) return result.value as CommandValue<T>;
  throw new ApiError(result.error.code, result.error.message);
}
