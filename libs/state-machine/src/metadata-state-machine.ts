import {
  ErrorCode,
  type BrokerInfo,
  type MetadataDelta,
  type MetadataResponse,
  type PartitionInfo,
  type TopicMetadata,
} from '@dmq/api-contracts';
import type { ApplyRejection, ApplyResult, ApplyResultOf } from './apply-result';
import { ChangeLog, DEFAULT_CHANGE_LOG_OPTIONS, type ChangeLogOptions } from './change-log';
import { decodeCommand, validateCommand, type Command } from './commands';
import { ApplyOrderError, CommandDecodeError } from './errors';
import { applyCommand } from './handlers';
import { DEFAULT_IDEMPOTENCY_OPTIONS, type IdempotencyOptions } from './idempotency-table';
import { assertInvariants } from './invariants';
import type { BrokerRecord, TopicRecord } from './records';
import { SnapshotReader, writeSnapshot } from './snapshot';
import { ApplyContext, emptyState, type MetadataState } from './state';
import { brokerInfo, comparePartitions, partitionInfo, topicMetadata } from './views';
import {
  backupRowsOf,
  backupChangesSince,
  type BackupChanges,
  type BackupRows,
} from './backup-rows';

/** Options of a state machine. Every node of a cluster must use the same `idempotency` options. */
export interface MetadataStateMachineOptions {
  /** The idempotency table's bounds (replicated behaviour: equal on every node). */
  readonly idempotency?: Partial<IdempotencyOptions>;
  /** The change log's bounds (local: only affects when `delta` answers `full`). */
  readonly changeLog?: Partial<ChangeLogOptions>;
}

/** The idempotency table's answer for a key before proposing (see `checkIdempotencyKey`). */
export type IdempotencyCheck =
  | { readonly kind: 'new' }
  | { readonly kind: 'replay'; readonly result: ApplyResult }
  | { readonly kind: 'reused'; readonly result: ApplyRejection };

/** How big the state is (for logs such as "Replayed n entries: …"). */
export interface StateCounts {
  readonly version: number;
  readonly brokers: number;
  readonly topics: number;
  readonly partitions: number;
  readonly idempotencyKeys: number;
}

const MIN_IDEMPOTENCY_TTL_MS = 10 * 60 * 1000;

/**
 * The replicated metadata of a DMQ cluster: what KRaft's controller keeps for Kafka.
 * Brokers, topics, partitions (leader, replicas, ISR, epochs, offsets) and the idempotency
 * table, changed only by {@link apply}, one committed Raft entry at a time.
 *
 * Deterministic: the state after a sequence of commands depends on nothing but the commands
 * and their Raft indexes — no clock (time is the command's `timestampMs`), no randomness, no
 * dependence on Map iteration order — so every node holds the same state, and `snapshot()`
 * gives the same bytes on every node.
 *
 * Version: {@link version} is the Raft index of the last applied entry. Every entry advances
 * it, also a rejected command (which changes nothing else) and entries without a command
 * (call {@link advance}).
 *
 * Queries answer in the contract's types; each costs O(answer size) (except the ones that
 * list everything), never O(cluster size).
 */
export class MetadataStateMachine {
  /** Set by `fromState` for the constructor it calls (synchronously), so restore can reuse it. */
  private static restoredState: MetadataState | undefined;
  private readonly state: MetadataState;
  private readonly changeLog: ChangeLog;

  /** An empty state machine (version 0). */
  constructor(options: MetadataStateMachineOptions = {}) {
    const restored = MetadataStateMachine.restoredState;
    MetadataStateMachine.restoredState = undefined;
    this.state = restored ?? emptyState(resolveIdempotencyOptions(options.idempotency));
    this.changeLog = new ChangeLog(resolveChangeLogOptions(options.changeLog), this.state.version);
  }

  private static fromState(
    state: MetadataState,
    changeLog: Partial<ChangeLogOptions> | undefined,
  ): MetadataStateMachine {
    assertInvariants(state);
    MetadataStateMachine.restoredState = state;
    return changeLog === undefined
      ? new MetadataStateMachine()
      : new MetadataStateMachine({ changeLog });
  }

  /** The metadata version: the Raft index of the last applied entry (0 when empty). */
  get version(): number {
    return this.state.version;
  }

  /**
   * Applies the committed Raft entry at `index`: a command's bytes (as made by
   * `encodeCommand`) or the command itself.
   *
   * - Bytes that do not decode, and invalid commands, are rejected (`INVALID_REQUEST`): an
   *   entry in the log must never stop a node.
   * - With `command.idempotency`: a key seen before with the same request hash answers the
   *   stored outcome (`replayed: true`) and changes nothing; with another hash,
   *   `IDEMPOTENCY_KEY_REUSED`. A new key stores the outcome, accepted or rejected.
   * - A rejected command changes nothing but the version (and the idempotency table: expiry,
   *   and its stored rejection).
   * @throws ApplyOrderError when `index` is not larger than {@link version}.
   */
  apply<C extends Command>(index: number, command: C): ApplyResultOf<C>;
  apply(index: number, entry: Uint8Array | Command): ApplyResult;
  apply(index: number, entry: Uint8Array | Command): ApplyResult {
    this.advance(index);
    let command: Command;
    if (entry instanceof Uint8Array) {
      try {
        command = decodeCommand(entry);
      } catch (error) {
        if (!(error instanceof CommandDecodeError)) throw error;
        return rejection(ErrorCode.INVALID_REQUEST, error.message);
      }
    } else {
      const validation = validateCommand(entry);
      if (!validation.ok) return rejection(ErrorCode.INVALID_REQUEST, validation.message);
      command = validation.command;
    }

    const { idempotency } = this.state;
    idempotency.expire(command.timestampMs);
    const key = command.idempotency;
    if (key !== undefined) {
      const check = this.checkIdempotencyKey(key.key, key.requestHash);
      if (check.kind !== 'new') return check.result;
    }

    const ctx = new ApplyContext(this.state, index, command.timestampMs);
    const result = applyCommand(ctx, command);
    this.changeLog.record(
      index,
      ctx.touchedTopics,
      ctx.touchedBrokers,
      ctx.deletedTopics,
      ctx.touchedPartitions,
    );
    if (key !== undefined) {
      const stored = result.ok
        ? { ok: true, value: result.value }
        : { ok: false, error: result.error };
      idempotency.store(key.key, {
        requestHash: key.requestHash,
        outcomeJson: JSON.stringify(stored),
        timestampMs: command.timestampMs,
      });
    }
    return result;
  }

  /**
   * Records that the Raft entry at `index` carried no command (a leader's no-op, a membership
   * change): only the version advances.
   * @throws ApplyOrderError when `index` is not larger than {@link version}.
   */
  advance(index: number): void {
    if (!Number.isSafeInteger(index) || index <= this.state.version) {
      throw new ApplyOrderError(
        `entry ${index} applied after entry ${this.state.version}: indexes must increase`,
      );
    }
    this.state.version = index;
  }

  /**
   * What the idempotency table would answer for `key` now, without changing it: the leader
   * may answer a retry at once instead of proposing it. (The answer in `apply` is what
   * counts: a key may expire or be stored between this check and the commit.)
   */
  checkIdempotencyKey(key: string, requestHash: string): IdempotencyCheck {
    const found = this.state.idempotency.lookup(key, requestHash);
    switch (found.kind) {
      case 'miss':
        return { kind: 'new' };
      case 'reused':
        return {
          kind: 'reused',
          result: rejection(
            ErrorCode.IDEMPOTENCY_KEY_REUSED,
            `idempotency key "${key}" was used with a different request`,
          ),
        };
      case 'hit': {
        const stored = JSON.parse(found.outcomeJson) as Omit<ApplyResult, 'replayed'>;
        return { kind: 'replay', result: { ...stored, replayed: true } as ApplyResult };
      }
    }
  }

  // ---- queries ----

  /** A topic by name. O(its partitions). */
  topic(name: string): TopicMetadata | undefined {
    const topic = this.state.topics.get(name);
    return topic === undefined ? undefined : topicMetadata(topic);
  }

  /** A topic by id. O(its partitions). */
  topicById(topicId: string): TopicMetadata | undefined {
    const topic = this.state.topicsById.get(topicId);
    return topic === undefined ? undefined : topicMetadata(topic);
  }

  /** Whether a topic exists. O(1). */
  hasTopic(name: string): boolean {
    return this.state.topics.has(name);
  }

  /** Every topic, by name. O(cluster). */
  topics(): TopicMetadata[] {
    return this.sortedTopics().map(topicMetadata);
  }

  /** A topic's partitions, or `undefined` when there is no such topic. O(its partitions). */
  partitions(topic: string): PartitionInfo[] | undefined {
    return this.state.topics.get(topic)?.partitions.map(partitionInfo);
  }

  /** One partition. O(1). */
  partition(topic: string, partition: number): PartitionInfo | undefined {
    const p = this.state.topics.get(topic)?.partitions[partition];
    return p === undefined ? undefined : partitionInfo(p);
  }

  /** The partitions a broker leads, by topic and partition. O(answer · log answer). */
  partitionsLedBy(brokerId: number): PartitionInfo[] {
    const broker = this.state.brokers.get(brokerId);
    if (broker === undefined) return [];
    return [...broker.leads].sort(comparePartitions).map(partitionInfo);
  }

  /** The partitions a broker hosts a replica of, by topic and partition. O(answer · log answer). */
  partitionsOnBroker(brokerId: number): PartitionInfo[] {
    const broker = this.state.brokers.get(brokerId);
    if (broker === undefined) return [];
    return [...broker.replicaOf].sort(comparePartitions).map(partitionInfo);
  }

  /** A broker. O(1). */
  broker(brokerId: number): BrokerInfo | undefined {
    const broker = this.state.brokers.get(brokerId);
    return broker === undefined ? undefined : brokerInfo(broker);
  }

  /** Every broker, by id. O(brokers). */
  brokers(): BrokerInfo[] {
    return [...this.state.brokers.keys()]
      .sort((a, b) => a - b)
      .map((id) => brokerInfo(this.state.brokers.get(id) as BrokerRecord));
  }

  /** The full metadata image (`GET /metadata`). O(cluster). */
  metadata(): MetadataResponse {
    return { version: this.state.version, brokers: this.brokers(), topics: this.topics() };
  }

  /**
   * What changed after `sinceVersion` (`GET /metadata?delta=true`): changed or new brokers and
   * topics in full, removed ones by id/name, O(changes since then). When the change log no
   * longer reaches back to `sinceVersion` (it is bounded, and starts at the snapshot a node
   * restored), the full image with `full: true`. A `sinceVersion` at or beyond the current
   * version answers no changes.
   */
  delta(sinceVersion: number): MetadataDelta {
    const { state } = this;
    const version = state.version;
    const changed = this.changeLog.changedSince(sinceVersion);
    if (changed === undefined) {
      return {
        version,
        sinceVersion,
        full: true,
        brokers: this.brokers(),
        topics: this.topics(),
        deletedTopics: [],
        deletedBrokers: [],
      };
    }
    const brokers: BrokerInfo[] = [];
    const deletedBrokers: number[] = [];
    for (const id of [...changed.brokers].sort((a, b) => a - b)) {
      const broker = state.brokers.get(id);
      if (broker === undefined) deletedBrokers.push(id);
      else brokers.push(brokerInfo(broker));
    }
    const topics: TopicMetadata[] = [];
    const deletedTopics: string[] = [];
    for (const name of [...changed.topics].sort()) {
      const topic = state.topics.get(name);
      if (topic === undefined) deletedTopics.push(name);
      else topics.push(topicMetadata(topic));
    }
    return { version, sinceVersion, full: false, brokers, topics, deletedTopics, deletedBrokers };
  }

  /** Sizes of the state. O(1). */
  counts(): StateCounts {
    const { state } = this;
    return {
      version: state.version,
      brokers: state.brokers.size,
      topics: state.topics.size,
      partitions: state.partitionCount,
      idempotencyKeys: state.idempotency.size,
    };
  }

  /**
   * Checks every invariant (leader in ISR or -1, ISR ⊆ replicas, replicas distinct and on
   * registered brokers, indexes consistent, fenced brokers lead nothing). O(cluster).
   * @throws InvariantViolation
   */
  assertInvariants(): void {
    assertInvariants(this.state);
  }

  // ---- snapshots ----

  /**
   * The state as snapshot chunks (NDJSON, format version 1; see `snapshot.ts`), about
   * `chunkBytes` each. Canonical: equal states give equal bytes. The iterable reads the live
   * state lazily: consume it before applying more entries.
   */
  snapshot(chunkBytes?: number): Iterable<Uint8Array> {
    return writeSnapshot(this.state, chunkBytes);
  }

  /**
   * Rebuilds a state machine from snapshot chunks (split anywhere).
   * @throws SnapshotFormatError when the snapshot is truncated, damaged or of an unknown version.
   * @throws InvariantViolation when it decodes to a state that breaks an invariant.
   */
  static restore(
    chunks: Iterable<Uint8Array>,
    options: Pick<MetadataStateMachineOptions, 'changeLog'> = {},
  ): MetadataStateMachine {
    const reader = new SnapshotReader();
    for (const chunk of chunks) reader.push(chunk);
    return MetadataStateMachine.fromState(reader.finish(), options.changeLog);
  }

  /** {@link restore} from an asynchronous stream (e.g. a file read stream). */
  static async restoreAsync(
    chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
    options: Pick<MetadataStateMachineOptions, 'changeLog'> = {},
  ): Promise<MetadataStateMachine> {
    const reader = new SnapshotReader();
    for await (const chunk of chunks) reader.push(chunk);
    return MetadataStateMachine.fromState(reader.finish(), options.changeLog);
  }

  // ---- backup ----

  /**
   * The backup generation: 0 for a cluster never restored, one more than the backup's for a
   * cluster restored from it (`RestoreFromBackup`). Backup rows of different generations
   * number their Raft indices independently. O(1).
   */
  backupGeneration(): number {
    return this.state.backupGeneration;
  }

  /**
   * A restore from backup in parts that has not applied its last part yet (the next part
   * expected and how many there are), or undefined. O(1).
   */
  restoreInProgress(): { readonly nextPart: number; readonly parts: number } | undefined {
    return this.state.restoring ?? undefined;
  }

  /** The whole state as backup-table rows (for a full resync). O(cluster). */
  toBackupRows(): BackupRows {
    return backupRowsOf(this.state);
  }

  /**
   * The rows to upsert and the keys to delete since `sinceVersion`, O(changes), or the full
   * rows (`full: true`) when the change log does not reach back that far.
   */
  backupChangesSince(sinceVersion: number): BackupChanges {
    return backupChangesSince(this.state, this.changeLog.changedSince(sinceVersion), sinceVersion);
  }

  private sortedTopics(): TopicRecord[] {
    return [...this.state.topics.keys()]
      .sort()
      .map((name) => this.state.topics.get(name) as TopicRecord);
  }
}

function rejection(code: ErrorCode, message: string): ApplyRejection {
  return { ok: false, error: { code, message }, replayed: false };
}

function resolveIdempotencyOptions(options: Partial<IdempotencyOptions> = {}): IdempotencyOptions {
  const resolved = { ...DEFAULT_IDEMPOTENCY_OPTIONS, ...options };
  if (!Number.isSafeInteger(resolved.ttlMs) || resolved.ttlMs < MIN_IDEMPOTENCY_TTL_MS) {
    throw new RangeError(`idempotency.ttlMs must be an integer >= ${MIN_IDEMPOTENCY_TTL_MS}`);
  }
  if (!Number.isSafeInteger(resolved.maxEntries) || resolved.maxEntries < 1) {
    throw new RangeError('idempotency.maxEntries must be a positive integer');
  }
  return resolved;
}

function resolveChangeLogOptions(options: Partial<ChangeLogOptions> = {}): ChangeLogOptions {
  const resolved = { ...DEFAULT_CHANGE_LOG_OPTIONS, ...options };
  if (!Number.isSafeInteger(resolved.maxEntries) || resolved.maxEntries < 1) {
    throw new RangeError('changeLog.maxEntries must be a positive integer');
  }
  if (!Number.isSafeInteger(resolved.maxItems) || resolved.maxItems < 1) {
    throw new RangeError('changeLog.maxItems must be a positive integer');
  }
  return resolved;
}
