import {
  brokerRowSchema,
  partitionRowSchema,
  topicRowSchema,
  type BrokerRow,
  type PartitionRow,
  type RestoreFromBackupCommand,
  type TopicRow,
} from './commands';
import type { ChangedSince } from './change-log';
import type { BrokerRecord, PartitionRecord, TopicRecord } from './records';
import type { MetadataState } from './state';

/**
 * Converters between the state and the rows of the backup tables (`brokers`, `topics`,
 * `partitions` in PostgreSQL). Plain row objects, no Prisma types: persistence-prisma maps
 * them to its models (e.g. `replicaIds` to the seed's JSON text column, `…AtMs` to
 * timestamps). The database is a backup: rows go out continuously, and come back only for a
 * disaster recovery, as `RestoreFromBackup` commands applied to an empty state (one, or parts of
 * whole topics, see {@link splitRestoreCommand}).
 *
 * The row types are the command's row schemas: `BrokerRow`, `TopicRow`, `PartitionRow`
 * (`PartitionRow` is the seed's PartitionEntity — topic name, partition id, leader id, replica
 * ids, ISR ids, start/end offset, leader epoch, last update — plus the partition epoch).
 * A reassignment in progress is not backed up: its row shows the union of old and new replicas.
 */
export type { BrokerRow, PartitionRow, TopicRow };

/** A full image of the state as rows, at metadata version `version`. */
export interface BackupRows {
  readonly version: number;
  /** The state's backup generation (see `MetadataState.backupGeneration`). */
  readonly generation: number;
  readonly brokers: BrokerRow[];
  readonly topics: TopicRow[];
  readonly partitions: PartitionRow[];
}

/**
 * The rows that changed after `sinceVersion`, up to `version`: the row of every topic that
 * changed in any way, and the rows of the partitions that changed — all partitions of a topic
 * created (or re-created) since then, only the changed ones otherwise, none for a change of
 * the topic's own row such as its config. Partitions are never removed from a live topic, so
 * a stored partition row is stale only when its topic is gone or has a new `topicId`.
 * Deleted topics' and brokers' rows are to be deleted (a topic deleted and re-created is in
 * `topics`, with its new `topicId`, and also in `deletedTopics` with its old one). With
 * `full: true` the rows are the whole state: every stored row not among them is stale.
 */
export interface BackupChanges extends BackupRows {
  readonly sinceVersion: number;
  readonly full: boolean;
  /** Every topic incarnation deleted since `sinceVersion` (a re-created name has a new id). */
  readonly deletedTopics: { readonly name: string; readonly topicId: string }[];
  readonly deletedBrokers: number[];
}

export function brokerRow(b: BrokerRecord): BrokerRow {
  return {
    brokerId: b.id,
    host: b.host,
    port: b.port,
    rack: b.rack,
    brokerEpoch: b.epoch,
    status: b.fenced ? 'FENCED' : 'ONLINE',
    pushEndpoint: b.pushEndpoint,
    lastHeartbeatAtMs: b.lastHeartbeatAtMs,
    registeredAtMs: b.registeredAtMs,
  };
}

export function topicRow(t: TopicRecord): TopicRow {
  return {
    name: t.name,
    topicId: t.id,
    replicationFactor: t.replicationFactor,
    partitionCount: t.partitions.length,
    config: { ...t.config },
    createdAtMs: t.createdAtMs,
  };
}

export function partitionRow(p: PartitionRecord): PartitionRow {
  return {
    topicName: p.topic.name,
    topicId: p.topic.id,
    partitionId: p.index,
    leaderId: p.leader,
    replicaIds: p.replicas.slice(),
    isrIds: p.isr.slice(),
    startOffset: p.startOffset,
    endOffset: p.endOffset,
    leaderEpoch: p.leaderEpoch,
    partitionEpoch: p.partitionEpoch,
    lastUpdatedAtMs: p.lastUpdatedMs,
  };
}

function sortedBrokers(state: MetadataState, ids: Iterable<number>): BrokerRecord[] {
  return [...ids]
    .sort((a, b) => a - b)
    .flatMap((id) => {
      const broker = state.brokers.get(id);
      return broker === undefined ? [] : [broker];
    });
}

function sortedTopics(state: MetadataState, names: Iterable<string>): TopicRecord[] {
  return [...names].sort().flatMap((name) => {
    const topic = state.topics.get(name);
    return topic === undefined ? [] : [topic];
  });
}

function rowsOf(state: MetadataState, brokers: BrokerRecord[], topics: TopicRecord[]): BackupRows {
  return {
    version: state.version,
    generation: state.backupGeneration,
    brokers: brokers.map(brokerRow),
    topics: topics.map(topicRow),
    partitions: topics.flatMap((t) => t.partitions.map(partitionRow)),
  };
}

/** The whole state as rows (brokers by id, topics by name, partitions by topic and index). */
export function backupRowsOf(state: MetadataState): BackupRows {
  return rowsOf(
    state,
    sortedBrokers(state, state.brokers.keys()),
    sortedTopics(state, state.topics.keys()),
  );
}

/** See {@link BackupChanges}. `changed` is the change log's answer (undefined: too old). */
export function backupChangesSince(
  state: MetadataState,
  changed: ChangedSince | undefined,
  sinceVersion: number,
): BackupChanges {
  if (changed === undefined) {
    return {
      ...backupRowsOf(state),
      sinceVersion,
      full: true,
      deletedTopics: [],
      deletedBrokers: [],
    };
  }
  const topics = sortedTopics(state, changed.topics);
  const partitions: PartitionRow[] = [];
  for (const topic of topics) {
    const indexes = changed.partitions.get(topic.name);
    if (indexes === undefined) continue;
    if (indexes === 'all') {
      for (const p of topic.partitions) partitions.push(partitionRow(p));
      continue;
    }
    for (const index of [...indexes].sort((a, b) => a - b)) {
      const p = topic.partitions[index];
      if (p !== undefined) partitions.push(partitionRow(p));
    }
  }
  return {
    version: state.version,
    generation: state.backupGeneration,
    brokers: sortedBrokers(state, changed.brokers).map(brokerRow),
    topics: topics.map(topicRow),
    partitions,
    sinceVersion,
    full: false,
    deletedTopics: [...changed.deletedTopics],
    deletedBrokers: [...changed.brokers]
      .filter((id) => !state.brokers.has(id))
      .sort((a, b) => a - b),
  };
}

/** Rows as read back from the database (possibly inconsistent: backups are per-row upserts). */
export interface BackupRowsInput {
  readonly brokers: readonly unknown[];
  readonly topics: readonly unknown[];
  readonly partitions: readonly unknown[];
}

/** The disaster-recovery command and what had to be repaired to build it. */
export interface RestorePlan {
  readonly command: RestoreFromBackupCommand;
  /** One human-readable line per dropped or repaired row (empty when the rows were consistent). */
  readonly repairs: string[];
}

/**
 * Builds the `RestoreFromBackup` command from database rows, repairing what a backup of
 * per-row upserts may leave inconsistent, and reporting each repair:
 * - invalid rows (failing the row schemas) are dropped;
 * - duplicate brokers keep the largest epoch; duplicate topics (or topic ids) keep the first
 *   by name order; duplicate partitions keep the largest partition epoch;
 * - partition rows of unknown topics or beyond the topic's count are dropped;
 * - replicas not backed by a broker row and duplicates are dropped; ISR members that are not
 *   replicas are dropped; a leader not in the ISR becomes -1; start > end offset becomes end;
 * - a missing partition is restored with no replicas (leaderless: reassign it, then elect
 *   uncleanly).
 */
export function restoreCommandFromBackupRows(
  rows: BackupRowsInput,
  options: {
    readonly timestampMs: number;
    readonly sourceVersion: number;
    /** The generation of the backup read (`backup_state.generation`); default 0. */
    readonly sourceGeneration?: number;
  },
): RestorePlan {
  const repairs: string[] = [];
  const brokers = new Map<number, BrokerRow>();
  for (const raw of rows.brokers) {
    const parsed = brokerRowSchema.safeParse(raw);
    if (!parsed.success) {
      repairs.push(`dropped an invalid broker row: ${parsed.error.issues[0]?.message ?? ''}`);
      continue;
    }
    const row = parsed.data;
    const existing = brokers.get(row.brokerId);
    if (existing !== undefined) {
      repairs.push(`broker ${row.brokerId}: dropped a duplicate row`);
      if (existing.brokerEpoch >= row.brokerEpoch) continue;
    }
    brokers.set(row.brokerId, row);
  }
  const topics = new Map<string, TopicRow>();
  const topicIds = new Set<string>();
  const topicCandidates = rows.topics.flatMap((raw) => {
    const parsed = topicRowSchema.safeParse(raw);
    if (parsed.success) return [parsed.data];
    repairs.push(`dropped an invalid topic row: ${parsed.error.issues[0]?.message ?? ''}`);
    return [];
  });
  topicCandidates.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const row of topicCandidates) {
    if (topics.has(row.name) || topicIds.has(row.topicId)) {
      repairs.push(`topic "${row.name}": dropped a duplicate row`);
      continue;
    }
    topics.set(row.name, row);
    topicIds.add(row.topicId);
  }
  const partitions = new Map<string, PartitionRow>();
  for (const raw of rows.partitions) {
    const parsed = partitionRowSchema.safeParse(raw);
    if (!parsed.success) {
      repairs.push(`dropped an invalid partition row: ${parsed.error.issues[0]?.message ?? ''}`);
      continue;
    }
    const row = parsed.data;
    const where = `${row.topicName}-${row.partitionId}`;
    const topic = topics.get(row.topicName);
    if (
      topic === undefined ||
      row.partitionId >= topic.partitionCount ||
      (row.topicId !== undefined && row.topicId !== topic.topicId)
    ) {
      repairs.push(`partition ${where}: dropped (no such topic, incarnation or partition)`);
      continue;
    }
    const key = `${row.topicName}\u0000${row.partitionId}`;
    const existing = partitions.get(key);
    if (existing !== undefined) {
      repairs.push(`partition ${where}: dropped a duplicate row`);
      if (existing.partitionEpoch >= row.partitionEpoch) continue;
    }
    partitions.set(key, row);
  }
  const partitionRows: PartitionRow[] = [];
  for (const topic of topics.values()) {
    for (let i = 0; i < topic.partitionCount; i++) {
      const where = `${topic.name}-${i}`;
      const row = partitions.get(`${topic.name}\u0000${i}`);
      if (row === undefined) {
        repairs.push(`partition ${where}: missing, restored without replicas`);
        partitionRows.push({
          topicName: topic.name,
          topicId: topic.topicId,
          partitionId: i,
          leaderId: -1,
          replicaIds: [],
          isrIds: [],
          startOffset: 0,
          endOffset: 0,
          leaderEpoch: 0,
          partitionEpoch: 0,
          lastUpdatedAtMs: options.timestampMs,
        });
        continue;
      }
      const replicaIds = [...new Set(row.replicaIds)].filter((id) => brokers.has(id));
      if (replicaIds.length !== row.replicaIds.length) {
        repairs.push(`partition ${where}: dropped duplicate or unknown replicas`);
      }
      const isrIds = [...new Set(row.isrIds)].filter((id) => replicaIds.includes(id));
      if (isrIds.length !== row.isrIds.length) {
        repairs.push(`partition ${where}: dropped ISR members that are not replicas`);
      }
      let leaderId = row.leaderId;
      if (leaderId !== -1 && !isrIds.includes(leaderId)) {
        repairs.push(`partition ${where}: leader ${leaderId} not in the ISR, set to -1`);
        leaderId = -1;
      }
      let startOffset = row.startOffset;
      if (startOffset > row.endOffset) {
        repairs.push(`partition ${where}: start offset beyond end offset, set to it`);
        startOffset = row.endOffset;
      }
      partitionRows.push({
        ...row,
        topicId: topic.topicId,
        replicaIds,
        isrIds,
        leaderId,
        startOffset,
      });
    }
  }
  return {
    command: {
      type: 'RestoreFromBackup',
      timestampMs: options.timestampMs,
      sourceVersion: options.sourceVersion,
      backupGeneration: (options.sourceGeneration ?? 0) + 1,
      brokers: [...brokers.values()].sort((a, b) => a.brokerId - b.brokerId),
      topics: [...topics.values()],
      partitions: partitionRows,
    },
    repairs,
  };
}

/** Default most partitions in one part of {@link splitRestoreCommand}. */
export const RESTORE_PARTITIONS_PER_PART = 10_000;

/**
 * Splits a restore into parts of whole topics with at most `partitionsPerPart` partitions
 * each (a topic with more is a part of its own), every broker in the first part: each part
 * is a Raft entry that a node applies in a few tens of milliseconds, where one entry for the
 * whole state would hold the event loop of every node for seconds — past the election
 * timeout. A restore that fits in one part is returned as is.
 */
export function splitRestoreCommand(
  command: RestoreFromBackupCommand,
  partitionsPerPart = RESTORE_PARTITIONS_PER_PART,
): RestoreFromBackupCommand[] {
  if (command.partitions.length <= partitionsPerPart) return [command];
  const byTopic = new Map<string, PartitionRow[]>();
  for (const row of command.partitions) {
    const rows = byTopic.get(row.topicName) ?? [];
    rows.push(row);
    byTopic.set(row.topicName, rows);
  }
  const groups: { topics: TopicRow[]; partitions: PartitionRow[] }[] = [];
  let current: { topics: TopicRow[]; partitions: PartitionRow[] } = { topics: [], partitions: [] };
  for (const topic of command.topics) {
    const rows = byTopic.get(topic.name) ?? [];
    if (current.topics.length > 0 && current.partitions.length + rows.length > partitionsPerPart) {
      groups.push(current);
      current = { topics: [], partitions: [] };
    }
    current.topics.push(topic);
    current.partitions.push(...rows);
  }
  if (current.topics.length > 0 || groups.length === 0) groups.push(current);
  return groups.map((group, index) => ({
    ...command,
    part: { index, count: groups.length },
    brokers: index === 0 ? command.brokers : [],
    topics: group.topics,
    partitions: group.partitions,
  }));
}
