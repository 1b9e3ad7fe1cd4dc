import type { BackupPrismaClient } from '../client/create-prisma-client';
import type { BackupStateRow } from './backup-writer';
import type { BrokerRow, PartitionRow, TopicRow } from './rows';

/** Everything the backup holds, read in one consistent snapshot of the database. */
export interface BackupContents {
  /** `backup_state`, or null when nothing was ever backed up. */
  state: BackupStateRow | null;
  /** Brokers by id. */
  brokers: BrokerRow[];
  /** Topics by name. */
  topics: TopicRow[];
  /** Partitions by topic name and partition id. */
  partitions: PartitionRow[];
}

/**
 * Reads the backup back, for disaster recovery only (the database is never the source of
 * truth of a running cluster). The rows come out in the shapes the jobs carried them in
 * (`rows.ts`), ready for `restoreCommandFromBackupRows` of `@dmq/state-machine`, which checks
 * and repairs them: a backup of per-row upserts is not guaranteed to be consistent.
 */
export class BackupReader {
  constructor(private readonly prisma: BackupPrismaClient) {}

  /**
   * Reads every row and `backup_state` in one REPEATABLE READ transaction, so concurrent
   * backup writes cannot tear the picture.
   */
  async readAll(): Promise<BackupContents> {
    const [state, brokers, topics, partitions] = await this.prisma.$transaction(
      [
        this.prisma.backupState.findUnique({ where: { id: 1 } }),
        this.prisma.broker.findMany({ orderBy: { brokerId: 'asc' } }),
        this.prisma.topic.findMany({ orderBy: { name: 'asc' } }),
        this.prisma.partition.findMany({
          orderBy: [{ topicName: 'asc' }, { partitionId: 'asc' }],
        }),
      ],
      { isolationLevel: 'RepeatableRead' },
    );
    return {
      state:
        state === null
          ? null
          : {
              clusterId: state.clusterId,
              backedUpIndex: Number(state.backedUpIndex),
              generation: state.generation,
              fullBackupIndex: Number(state.fullBackupIndex),
              updatedAt: state.updatedAt,
            },
      brokers: brokers.map((b) => ({
        brokerId: b.brokerId,
        host: b.host,
        port: b.port,
        rack: b.rack,
        brokerEpoch: Number(b.brokerEpoch),
        status: b.status,
        pushEndpoint: b.pushEndpoint,
        lastHeartbeatAtMs: b.lastHeartbeatAt === null ? null : b.lastHeartbeatAt.getTime(),
        registeredAtMs: b.registeredAt.getTime(),
      })),
      topics: topics.map((t) => ({
        name: t.name,
        topicId: t.topicId,
        replicationFactor: t.replicationFactor,
        partitionCount: t.partitionCount,
        config: toConfig(t.config),
        createdAtMs: t.createdAt.getTime(),
      })),
      partitions: partitions.map((p) => ({
        topicName: p.topicName,
        topicId: p.topicId,
        partitionId: p.partitionId,
        leaderId: p.leaderId,
        replicaIds: p.replicaIds,
        isrIds: p.isrIds,
        startOffset: Number(p.startOffset),
        endOffset: Number(p.endOffset),
        leaderEpoch: p.leaderEpoch,
        partitionEpoch: p.partitionEpoch,
        lastUpdatedAtMs: p.lastUpdatedAt.getTime(),
      })),
    };
  }
}

/** The `config` JSON column back as a string map (anything else is left for the restore's checks). */
function toConfig(value: unknown): Record<string, string> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return {};
  return value as Record<string, string>;
}
