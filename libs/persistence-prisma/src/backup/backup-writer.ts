import { PersistenceError } from '../errors';
import type { BackupPrismaClient } from '../client/create-prisma-client';
import type { Logger } from '../logger';
import { silentLogger } from '../logger';
import type { BackupBatch, BrokerRow, DeletedTopic, PartitionRow, TopicRow } from './rows';

/**
 * Key of the transaction-level advisory lock that serialises backup writes ('dmqB'). Without
 * it, a delete and a late upsert of the same key committing concurrently could each miss the
 * other's uncommitted row and resurrect the deleted row.
 */
export const BACKUP_WRITE_LOCK_KEY = 0x646d7142;

/** Default {@link BackupWriterOptions.partitionsPerStatement}. */
const PARTITIONS_PER_STATEMENT = 20_000;

/** Options of {@link BackupWriter}. */
export interface BackupWriterOptions {
  /**
   * The cluster whose state is backed up. The first write records it in `backup_state`; a
   * writer of another cluster is then refused (`persistence/backup-cluster-mismatch`), so two
   * clusters configured with the same database cannot interleave their states.
   */
  clusterId: string;
  /** Longest a write transaction may run. Default 30 000 ms. */
  transactionTimeoutMs?: number;
  /** Most partition rows upserted by one SQL statement (a write uses as many as needed). Default 20 000. */
  partitionsPerStatement?: number;
  logger?: Logger;
}

/** Rows a write changed (rows skipped because the database already held newer state are not counted). */
export interface BackupWriteResult {
  /** `backup_state.backed_up_index` after the write. */
  backedUpIndex: number;
  /** `backup_state.generation` after the write. */
  generation: number;
  upserted: { brokers: number; topics: number; partitions: number };
  deleted: { brokers: number; topics: number; partitions: number };
  /**
   * Batches dropped, not written: of an older generation than the backup's (the lost cluster's
   * jobs after a restore), or of a newer one whose full batch has not rebased the backup yet.
   */
  dropped: { olderGeneration: number; newerGeneration: number };
}

/** The backup's progress as recorded in `backup_state`. */
export interface BackupStateRow {
  clusterId: string;
  backedUpIndex: number;
  /** The lineage of the rows' Raft indices (see {@link BackupBatch.generation}). */
  generation: number;
  /** Raft index of the newest full batch written in this generation (0: none). */
  fullBackupIndex: number;
  updatedAt: Date;
}

/** Which of a write's batches are written, and how. */
interface GenerationChoice {
  /** The generation written (and stored in `backup_state`). */
  generation: number;
  /** Replace the whole backup (a full batch of a newer generation, or `rebase()`). */
  rebase: boolean;
  kept: BackupBatch[];
  dropped: { olderGeneration: number; newerGeneration: number };
}

const generationOf = (batch: BackupBatch): number => batch.generation ?? 0;

/**
 * Picks the generation a write applies: the stored one, unless a full batch of a newer one
 * is there to rebase the backup on (the newest such). Batches of other generations are dropped.
 */
function chooseGeneration(
  batches: readonly BackupBatch[],
  stored: number | undefined,
  forceRebase: boolean,
): GenerationChoice {
  let generation: number;
  let rebase = forceRebase;
  if (forceRebase) {
    generation = generationOf(batches[0] as BackupBatch);
  } else if (stored === undefined) {
    generation = Math.max(...batches.map(generationOf));
  } else {
    const newerFull = batches.filter((b) => b.full === true && generationOf(b) > stored);
    rebase = newerFull.length > 0;
    generation = rebase ? Math.max(...newerFull.map(generationOf)) : stored;
  }
  const kept = batches.filter((b) => generationOf(b) === generation);
  return {
    generation,
    rebase,
    kept,
    dropped: {
      olderGeneration: batches.filter((b) => generationOf(b) < generation).length,
      newerGeneration: batches.filter((b) => generationOf(b) > generation).length,
    },
  };
}

interface Versioned<T> {
  raftIndex: number;
  value: T;
}

/** The batches of one write, reduced to the newest version of each key. */
interface CoalescedBatch {
  maxIndex: number;
  brokers: Map<number, Versioned<BrokerRow>>;
  deletedBrokers: Map<number, number>;
  topics: Map<string, Versioned<TopicRow>>;
  deletedTopics: Map<string, Versioned<DeletedTopic>>;
  partitions: Map<string, Versioned<PartitionRow>>;
  /** The newest full-resync batch, if any. */
  full: BackupBatch | undefined;
}

/**
 * Writes backup batches to PostgreSQL so that the tables only ever move forward in Raft order:
 * every row carries the Raft index of the state it reflects, an upsert applies only over an
 * older row (`WHERE raft_index < excluded.raft_index`), and a deletion leaves a tombstone that
 * blocks every older upsert of its key. A topic row at the tombstone's own index is blocked
 * only if it is the deleted incarnation: one batch (the state at one index) may both delete a
 * topic and hold its re-creation under a new id. So duplicate, late and out-of-order batches — retries,
 * concurrent workers, a new leader re-sending — leave the newest state, and a deleted topic or
 * broker is never resurrected; a topic re-created under the same name (new id, larger index) is
 * accepted and sheds the old incarnation's partitions.
 *
 * Generations: Raft indices are only comparable within one cluster's log. A cluster restored
 * from this backup (`RestoreFromBackup`) starts again from index 1 under the next generation;
 * its first full batch rebases the backup (all rows replaced, `backed_up_index` set to the
 * batch's index, `generation` raised), and from then on batches of older generations — the
 * lost cluster's jobs still queued in Redis — are dropped, as are a newer generation's
 * incremental batches that arrive before its full batch (the full batch carries them).
 *
 * One write is one transaction, serialised with other writers by an advisory lock; batch
 * upserts go through `INSERT … SELECT FROM jsonb_to_recordset(…) ON CONFLICT … DO UPDATE … WHERE`.
 */
export class BackupWriter {
  private readonly clusterId: string;
  private readonly transactionTimeoutMs: number;
  private readonly partitionsPerStatement: number;
  private readonly logger: Logger;

  constructor(
    private readonly prisma: BackupPrismaClient,
    options: BackupWriterOptions,
  ) {
    if (!options.clusterId) {
      throw new PersistenceError('persistence/invalid-options', 'clusterId is required');
    }
    this.clusterId = options.clusterId;
    this.transactionTimeoutMs = options.transactionTimeoutMs ?? 30_000;
    if (!Number.isInteger(this.transactionTimeoutMs) || this.transactionTimeoutMs <= 0) {
      throw new PersistenceError(
        'persistence/invalid-options',
        `transactionTimeoutMs must be a positive integer, got ${options.transactionTimeoutMs}`,
      );
    }
    this.partitionsPerStatement = options.partitionsPerStatement ?? PARTITIONS_PER_STATEMENT;
    if (!Number.isInteger(this.partitionsPerStatement) || this.partitionsPerStatement <= 0) {
      throw new PersistenceError(
        'persistence/invalid-options',
        `partitionsPerStatement must be a positive integer, got ${options.partitionsPerStatement}`,
      );
    }
    this.logger = options.logger ?? silentLogger;
  }

  /**
   * Applies batches (e.g. several coalesced jobs) in one transaction; their order does not
   * matter. Advances `backup_state.backed_up_index` to their largest Raft index, never back
   * within a generation; a full batch of a newer generation rebases the backup on it (see the
   * class comment), batches of other generations are dropped (counted in the result).
   *
   * @throws {PersistenceError} `persistence/invalid-backup-row` for a malformed batch (retrying
   *   cannot help); `persistence/backup-cluster-mismatch` when the database holds another
   *   cluster's backup. Database errors are thrown as they come (retrying may help).
   */
  write(batches: readonly BackupBatch[]): Promise<BackupWriteResult> {
    return this.writeBatches(batches, false);
  }

  /**
   * Replaces the whole backup with `full` (a full-resync batch), whatever Raft indices the
   * stored rows and tombstones carry, and sets `backed_up_index` to `full.raftIndex` exactly.
   * For a cluster restored from this backup: its Raft indices start again from 1, so without
   * a rebase the forward-only guards would keep the lost cluster's rows (larger indices) and
   * ignore the restored cluster's changes. One transaction: the database holds either the old
   * backup or the new one.
   *
   * @throws {PersistenceError} `persistence/invalid-backup-row` unless `full.full` is true;
   *   `persistence/stale-generation` when the backup already holds a newer generation.
   */
  async rebase(full: BackupBatch): Promise<BackupWriteResult> {
    if (full.full !== true) {
      throw new PersistenceError('persistence/invalid-backup-row', 'rebase() needs a full batch');
    }
    return this.writeBatches([full], true);
  }

  private async writeBatches(
    batches: readonly BackupBatch[],
    rebase: boolean,
  ): Promise<BackupWriteResult> {
    if (batches.length === 0) {
      throw new PersistenceError('persistence/invalid-backup-row', 'write() needs a batch');
    }
    for (const batch of batches) validateBackupBatch(batch);
    const result = await this.prisma.$transaction(
      async (tx) => {
        await tx.$executeRaw`SELECT pg_advisory_xact_lock(${BACKUP_WRITE_LOCK_KEY}::bigint)`;
        const stored = await this.checkCluster(tx);

        const deleted = { brokers: 0, topics: 0, partitions: 0 };
        const upserted = { brokers: 0, topics: 0, partitions: 0 };
        const choice = chooseGeneration(batches, stored?.generation, rebase);
        if (rebase && stored !== undefined && choice.generation < stored.generation) {
          throw new PersistenceError(
            'persistence/stale-generation',
            `The backup holds generation ${stored.generation}; a rebase on generation ` +
              `${choice.generation} would replace a newer cluster's backup with an older one's.`,
          );
        }
        const { dropped } = choice;
        if (choice.kept.length === 0) {
          return {
            backedUpIndex: stored?.backedUpIndex ?? 0,
            generation: stored?.generation ?? choice.generation,
            upserted,
            deleted,
            dropped,
          };
        }
        const coalesced = coalesce(choice.kept);

        if (choice.rebase) {
          deleted.partitions += await tx.$executeRaw`DELETE FROM partitions`;
          deleted.topics += await tx.$executeRaw`DELETE FROM topics`;
          deleted.brokers += await tx.$executeRaw`DELETE FROM brokers`;
          await tx.$executeRaw`DELETE FROM topic_tombstones`;
          await tx.$executeRaw`DELETE FROM broker_tombstones`;
          await tx.$executeRaw`
            UPDATE backup_state SET backed_up_index = 0, full_backup_index = 0 WHERE id = 1`;
        }

        // Tombstones first; the guards make the order irrelevant, this just skips dead work.
        if (coalesced.deletedBrokers.size > 0) {
          const json = JSON.stringify(
            [...coalesced.deletedBrokers].map(([brokerId, raftIndex]) => ({
              broker_id: brokerId,
              raft_index: raftIndex,
            })),
          );
          await tx.$executeRaw`
            INSERT INTO broker_tombstones AS d (broker_id, deleted_at_index, backed_up_at)
            SELECT v.broker_id, v.raft_index, now()
            FROM jsonb_to_recordset(${json}::jsonb) AS v(broker_id int, raft_index bigint)
            ON CONFLICT (broker_id) DO UPDATE
              SET deleted_at_index = EXCLUDED.deleted_at_index, backed_up_at = EXCLUDED.backed_up_at
              WHERE d.deleted_at_index < EXCLUDED.deleted_at_index`;
          deleted.brokers += await tx.$executeRaw`
            DELETE FROM brokers b
            USING jsonb_to_recordset(${json}::jsonb) AS v(broker_id int, raft_index bigint)
            WHERE b.broker_id = v.broker_id AND b.raft_index < v.raft_index`;
        }

        if (coalesced.deletedTopics.size > 0) {
          const json = JSON.stringify(
            [...coalesced.deletedTopics.values()].map(({ raftIndex, value }) => ({
              name: value.name,
              topic_id: value.topicId,
              raft_index: raftIndex,
            })),
          );
          await tx.$executeRaw`
            INSERT INTO topic_tombstones AS d (topic_name, topic_id, deleted_at_index, backed_up_at)
            SELECT v.name, v.topic_id, v.raft_index, now()
            FROM jsonb_to_recordset(${json}::jsonb) AS v(name text, topic_id uuid, raft_index bigint)
            ON CONFLICT (topic_name) DO UPDATE
              SET topic_id = EXCLUDED.topic_id, deleted_at_index = EXCLUDED.deleted_at_index,
                  backed_up_at = EXCLUDED.backed_up_at
              WHERE d.deleted_at_index < EXCLUDED.deleted_at_index`;
          deleted.topics += await tx.$executeRaw`
            DELETE FROM topics t
            USING jsonb_to_recordset(${json}::jsonb) AS v(name text, raft_index bigint)
            WHERE t.name = v.name AND t.raft_index < v.raft_index`;
          deleted.partitions += await tx.$executeRaw`
            DELETE FROM partitions p
            USING jsonb_to_recordset(${json}::jsonb) AS v(name text, raft_index bigint)
            WHERE p.topic_name = v.name AND p.raft_index < v.raft_index`;
        }

        if (coalesced.brokers.size > 0) {
          const json = JSON.stringify(
            [...coalesced.brokers.values()].map(({ raftIndex, value: row }) => ({
              broker_id: row.brokerId,
              host: row.host,
              port: row.port,
              rack: row.rack,
              broker_epoch: row.brokerEpoch,
              status: row.status,
              push_endpoint: row.pushEndpoint,
              last_heartbeat_at: isoOrNull(row.lastHeartbeatAtMs),
              registered_at: iso(row.registeredAtMs),
              raft_index: raftIndex,
            })),
          );
          upserted.brokers += await tx.$executeRaw`
            INSERT INTO brokers AS b (broker_id, host, port, rack, broker_epoch, status,
              push_endpoint, last_heartbeat_at, registered_at, raft_index, backed_up_at)
            SELECT v.broker_id, v.host, v.port, v.rack, v.broker_epoch, v.status,
              v.push_endpoint, v.last_heartbeat_at, v.registered_at, v.raft_index, now()
            FROM jsonb_to_recordset(${json}::jsonb) AS v(broker_id int, host text, port int,
              rack text, broker_epoch bigint, status text, push_endpoint text,
              last_heartbeat_at timestamptz, registered_at timestamptz, raft_index bigint)
            WHERE NOT EXISTS (SELECT 1 FROM broker_tombstones d
                              WHERE d.broker_id = v.broker_id AND d.deleted_at_index >= v.raft_index)
            ON CONFLICT (broker_id) DO UPDATE SET
              host = EXCLUDED.host, port = EXCLUDED.port, rack = EXCLUDED.rack,
              broker_epoch = EXCLUDED.broker_epoch, status = EXCLUDED.status,
              push_endpoint = EXCLUDED.push_endpoint, last_heartbeat_at = EXCLUDED.last_heartbeat_at,
              registered_at = EXCLUDED.registered_at, raft_index = EXCLUDED.raft_index,
              backed_up_at = EXCLUDED.backed_up_at
            WHERE b.raft_index < EXCLUDED.raft_index`;
        }

        if (coalesced.topics.size > 0) {
          const json = JSON.stringify(
            [...coalesced.topics.values()].map(({ raftIndex, value: row }) => ({
              name: row.name,
              topic_id: row.topicId,
              partition_count: row.partitionCount,
              replication_factor: row.replicationFactor,
              config: row.config,
              created_at: iso(row.createdAtMs),
              raft_index: raftIndex,
            })),
          );
          upserted.topics += await tx.$executeRaw`
            INSERT INTO topics AS t (name, topic_id, partition_count, replication_factor, config,
              created_at, raft_index, backed_up_at)
            SELECT v.name, v.topic_id, v.partition_count, v.replication_factor, v.config,
              v.created_at, v.raft_index, now()
            FROM jsonb_to_recordset(${json}::jsonb) AS v(name text, topic_id uuid,
              partition_count int, replication_factor int, config jsonb, created_at timestamptz,
              raft_index bigint)
            WHERE NOT EXISTS (SELECT 1 FROM topic_tombstones d
                              WHERE d.topic_name = v.name AND (d.deleted_at_index > v.raft_index
                                OR (d.deleted_at_index = v.raft_index AND d.topic_id = v.topic_id)))
            ON CONFLICT (name) DO UPDATE SET
              topic_id = EXCLUDED.topic_id, partition_count = EXCLUDED.partition_count,
              replication_factor = EXCLUDED.replication_factor, config = EXCLUDED.config,
              created_at = EXCLUDED.created_at, raft_index = EXCLUDED.raft_index,
              backed_up_at = EXCLUDED.backed_up_at
            WHERE t.raft_index < EXCLUDED.raft_index`;
          // A topic now stored under a new id was deleted and re-created: partitions of the old
          // incarnation that the (possibly lost or not yet processed) delete did not remove go.
          const names = [...coalesced.topics.keys()];
          deleted.partitions += await tx.$executeRaw`
            DELETE FROM partitions p USING topics t
            WHERE t.name = ANY(${names}::text[]) AND p.topic_name = t.name
              AND p.topic_id <> t.topic_id AND p.raft_index < t.raft_index`;
        }

        // In statements of at most `partitionsPerStatement` rows: one jsonb parameter is
        // limited to 256 MiB (a full backup of a million partitions is ~250 MB of JSON), and
        // smaller ones keep the memory of both sides bounded.
        const partitionRows = [...coalesced.partitions.values()];
        const chunk = this.partitionsPerStatement;
        for (let at = 0; at < partitionRows.length; at += chunk) {
          const json = JSON.stringify(
            partitionRows.slice(at, at + chunk).map(({ raftIndex, value: row }) => ({
              topic_name: row.topicName,
              topic_id: row.topicId,
              partition_id: row.partitionId,
              leader_id: row.leaderId,
              replica_ids: row.replicaIds,
              isr_ids: row.isrIds,
              start_offset: row.startOffset,
              end_offset: row.endOffset,
              leader_epoch: row.leaderEpoch,
              partition_epoch: row.partitionEpoch,
              last_updated_at: iso(row.lastUpdatedAtMs),
              raft_index: raftIndex,
            })),
          );
          // Skipped when the topic was deleted at or after this index, or when a newer
          // incarnation of the topic (another id) is already stored.
          upserted.partitions += await tx.$executeRaw`
            INSERT INTO partitions AS p (topic_name, topic_id, partition_id, leader_id,
              replica_ids, isr_ids, start_offset, end_offset, leader_epoch, partition_epoch,
              last_updated_at, raft_index, backed_up_at)
            SELECT v.topic_name, v.topic_id, v.partition_id, v.leader_id, v.replica_ids,
              v.isr_ids, v.start_offset, v.end_offset, v.leader_epoch, v.partition_epoch,
              v.last_updated_at, v.raft_index, now()
            FROM jsonb_to_recordset(${json}::jsonb) AS v(topic_name text, topic_id uuid,
              partition_id int, leader_id int, replica_ids int[], isr_ids int[],
              start_offset bigint, end_offset bigint, leader_epoch int, partition_epoch int,
              last_updated_at timestamptz, raft_index bigint)
            WHERE NOT EXISTS (SELECT 1 FROM topic_tombstones d
                              WHERE d.topic_name = v.topic_name AND (d.deleted_at_index > v.raft_index
                                OR (d.deleted_at_index = v.raft_index AND d.topic_id = v.topic_id)))
              AND NOT EXISTS (SELECT 1 FROM topics t
                              WHERE t.name = v.topic_name AND t.topic_id <> v.topic_id
                                AND t.raft_index > v.raft_index)
            ON CONFLICT (topic_name, partition_id) DO UPDATE SET
              topic_id = EXCLUDED.topic_id, leader_id = EXCLUDED.leader_id,
              replica_ids = EXCLUDED.replica_ids, isr_ids = EXCLUDED.isr_ids,
              start_offset = EXCLUDED.start_offset, end_offset = EXCLUDED.end_offset,
              leader_epoch = EXCLUDED.leader_epoch, partition_epoch = EXCLUDED.partition_epoch,
              last_updated_at = EXCLUDED.last_updated_at, raft_index = EXCLUDED.raft_index,
              backed_up_at = EXCLUDED.backed_up_at
            WHERE p.raft_index < EXCLUDED.raft_index`;
        }

        if (coalesced.full) {
          const removed = await this.removeAbsent(tx, coalesced.full);
          deleted.brokers += removed.brokers;
          deleted.topics += removed.topics;
          deleted.partitions += removed.partitions;
        }

        // (A rebase has set both indices to 0 above, so GREATEST takes the new ones.)
        const fullIndex = coalesced.full?.raftIndex ?? 0;
        const states = await tx.$queryRaw<{ backed_up_index: bigint }[]>`
          INSERT INTO backup_state AS s (id, cluster_id, backed_up_index, generation,
            full_backup_index, updated_at)
          VALUES (1, ${this.clusterId}, ${coalesced.maxIndex}::bigint, ${choice.generation},
            ${fullIndex}::bigint, now())
          ON CONFLICT (id) DO UPDATE SET
            backed_up_index = GREATEST(s.backed_up_index, EXCLUDED.backed_up_index),
            generation = EXCLUDED.generation,
            full_backup_index = GREATEST(s.full_backup_index, EXCLUDED.full_backup_index),
            updated_at = EXCLUDED.updated_at
          RETURNING backed_up_index`;
        const backedUpIndex = Number(states[0]?.backed_up_index ?? coalesced.maxIndex);
        return { backedUpIndex, generation: choice.generation, upserted, deleted, dropped };
      },
      { timeout: this.transactionTimeoutMs, maxWait: this.transactionTimeoutMs },
    );
    const { olderGeneration, newerGeneration } = result.dropped;
    if (olderGeneration > 0) {
      this.logger.warn(
        { dropped: olderGeneration, generation: result.generation },
        'Dropped backup jobs of an older generation (a cluster lost before a restore)',
      );
    }
    if (newerGeneration > 0) {
      this.logger.info(
        { dropped: newerGeneration, generation: result.generation },
        'Dropped backup jobs of a newer generation: the backup is not rebased on it yet ' +
          '(its full resync carries their changes)',
      );
    }
    this.logger.debug({ batches: batches.length, ...result }, 'Backup batch written');
    return result;
  }

  /** Reads `backup_state`, or null before the first write. */
  async readState(): Promise<BackupStateRow | null> {
    const row = await this.prisma.backupState.findUnique({ where: { id: 1 } });
    if (!row) return null;
    return {
      clusterId: row.clusterId,
      backedUpIndex: Number(row.backedUpIndex),
      generation: row.generation,
      fullBackupIndex: Number(row.fullBackupIndex),
      updatedAt: row.updatedAt,
    };
  }

  /** Reads `backup_state` (locked by the caller) and refuses another cluster's backup. */
  private async checkCluster(
    tx: TransactionClient,
  ): Promise<{ backedUpIndex: number; generation: number } | undefined> {
    const rows = await tx.$queryRaw<
      { cluster_id: string; backed_up_index: bigint; generation: number }[]
    >`SELECT cluster_id, backed_up_index, generation FROM backup_state WHERE id = 1`;
    const row = rows[0];
    if (row === undefined) return undefined;
    if (row.cluster_id !== this.clusterId) {
      throw new PersistenceError(
        'persistence/backup-cluster-mismatch',
        `The backup database holds cluster ${row.cluster_id}'s backup; this is cluster ` +
          `${this.clusterId}. Give each cluster its own database.`,
      );
    }
    return { backedUpIndex: Number(row.backed_up_index), generation: row.generation };
  }

  /** Full resync: removes (and tombstones) what the state at `full.raftIndex` no longer has. */
  private async removeAbsent(
    tx: TransactionClient,
    full: BackupBatch,
  ): Promise<{ brokers: number; topics: number; partitions: number }> {
    const index = full.raftIndex;
    const brokerIds = (full.brokers ?? []).map((row) => row.brokerId);
    const topicNames = (full.topics ?? []).map((row) => row.name);
    const partitionKeys = JSON.stringify(
      (full.partitions ?? []).map((row) => ({
        topic_name: row.topicName,
        partition_id: row.partitionId,
      })),
    );
    const brokers = await tx.$executeRaw`
      WITH gone AS (
        DELETE FROM brokers WHERE raft_index < ${index}::bigint
          AND NOT (broker_id = ANY(${brokerIds}::int[]))
        RETURNING broker_id)
      INSERT INTO broker_tombstones AS d (broker_id, deleted_at_index, backed_up_at)
      SELECT broker_id, ${index}::bigint, now() FROM gone
      ON CONFLICT (broker_id) DO UPDATE
        SET deleted_at_index = EXCLUDED.deleted_at_index, backed_up_at = EXCLUDED.backed_up_at
        WHERE d.deleted_at_index < EXCLUDED.deleted_at_index`;
    const topics = await tx.$executeRaw`
      WITH gone AS (
        DELETE FROM topics WHERE raft_index < ${index}::bigint
          AND NOT (name = ANY(${topicNames}::text[]))
        RETURNING name, topic_id)
      INSERT INTO topic_tombstones AS d (topic_name, topic_id, deleted_at_index, backed_up_at)
      SELECT name, topic_id, ${index}::bigint, now() FROM gone
      ON CONFLICT (topic_name) DO UPDATE
        SET topic_id = EXCLUDED.topic_id, deleted_at_index = EXCLUDED.deleted_at_index,
            backed_up_at = EXCLUDED.backed_up_at
        WHERE d.deleted_at_index < EXCLUDED.deleted_at_index`;
    const partitions = await tx.$executeRaw`
      DELETE FROM partitions p WHERE p.raft_index < ${index}::bigint
        AND NOT EXISTS (
          SELECT 1 FROM jsonb_to_recordset(${partitionKeys}::jsonb) AS v(topic_name text, partition_id int)
          WHERE v.topic_name = p.topic_name AND v.partition_id = p.partition_id)`;
    return { brokers, topics, partitions };
  }
}

/** The client handed to an interactive transaction. */
type TransactionClient = Parameters<Parameters<BackupPrismaClient['$transaction']>[0]>[0];

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function isoOrNull(ms: number | null): string | null {
  return ms === null ? null : iso(ms);
}

function invalid(message: string): never {
  throw new PersistenceError('persistence/invalid-backup-row', message);
}

function checkInteger(value: unknown, what: string, min: number): void {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    invalid(`${what} must be a safe integer >= ${min}, got ${JSON.stringify(value)}`);
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function checkUuid(value: unknown, what: string): void {
  if (typeof value !== 'string' || !UUID.test(value)) {
    invalid(`${what} must be a UUID, got ${JSON.stringify(value)}`);
  }
}

function checkString(value: unknown, what: string): void {
  if (typeof value !== 'string' || value.length === 0) {
    invalid(`${what} must be a non-empty string, got ${JSON.stringify(value)}`);
  }
}

function checkIds(value: unknown, what: string): void {
  if (!Array.isArray(value)) invalid(`${what} must be an array of broker ids`);
  value.forEach((id, i) => checkInteger(id, `${what}[${i}]`, 0));
}

/**
 * Checks a batch's shape and ranges (safe integers, UUIDs, non-empty names).
 *
 * @throws {PersistenceError} `persistence/invalid-backup-row` naming the offending field.
 */
export function validateBackupBatch(batch: BackupBatch): void {
  checkInteger(batch.raftIndex, 'raftIndex', 1);
  if (batch.generation !== undefined) checkInteger(batch.generation, 'generation', 0);
  if (batch.sinceIndex !== undefined) checkInteger(batch.sinceIndex, 'sinceIndex', 0);
  for (const row of batch.brokers ?? []) {
    const at = `broker ${JSON.stringify(row.brokerId)}`;
    checkInteger(row.brokerId, `${at}: brokerId`, 0);
    checkString(row.host, `${at}: host`);
    checkInteger(row.port, `${at}: port`, 0);
    checkInteger(row.brokerEpoch, `${at}: brokerEpoch`, 0);
    checkString(row.status, `${at}: status`);
    if (row.lastHeartbeatAtMs !== null) {
      checkInteger(row.lastHeartbeatAtMs, `${at}: lastHeartbeatAtMs`, 0);
    }
    checkInteger(row.registeredAtMs, `${at}: registeredAtMs`, 0);
  }
  for (const id of batch.deletedBrokerIds ?? []) checkInteger(id, 'deletedBrokerIds[]', 0);
  for (const row of batch.topics ?? []) {
    const at = `topic ${JSON.stringify(row.name)}`;
    checkString(row.name, `${at}: name`);
    checkUuid(row.topicId, `${at}: topicId`);
    checkInteger(row.partitionCount, `${at}: partitionCount`, 0);
    checkInteger(row.replicationFactor, `${at}: replicationFactor`, 0);
    checkInteger(row.createdAtMs, `${at}: createdAtMs`, 0);
    if (typeof row.config !== 'object' || row.config === null || Array.isArray(row.config)) {
      invalid(`${at}: config must be an object of strings`);
    }
  }
  for (const topic of batch.deletedTopics ?? []) {
    checkString(topic.name, 'deletedTopics[].name');
    checkUuid(topic.topicId, `deleted topic ${JSON.stringify(topic.name)}: topicId`);
  }
  for (const row of batch.partitions ?? []) {
    const at = `partition ${JSON.stringify(row.topicName)}/${JSON.stringify(row.partitionId)}`;
    checkString(row.topicName, `${at}: topicName`);
    checkUuid(row.topicId, `${at}: topicId`);
    checkInteger(row.partitionId, `${at}: partitionId`, 0);
    checkInteger(row.leaderId, `${at}: leaderId`, -1);
    checkIds(row.replicaIds, `${at}: replicaIds`);
    checkIds(row.isrIds, `${at}: isrIds`);
    checkInteger(row.startOffset, `${at}: startOffset`, 0);
    checkInteger(row.endOffset, `${at}: endOffset`, 0);
    checkInteger(row.leaderEpoch, `${at}: leaderEpoch`, 0);
    checkInteger(row.partitionEpoch, `${at}: partitionEpoch`, 0);
    checkInteger(row.lastUpdatedAtMs, `${at}: lastUpdatedAtMs`, 0);
  }
}

/** Keeps, per key, the version with the largest Raft index (the later batch on a tie). */
function keepNewest<K, T>(map: Map<K, Versioned<T>>, key: K, raftIndex: number, value: T): void {
  const current = map.get(key);
  if (current === undefined || current.raftIndex <= raftIndex) map.set(key, { raftIndex, value });
}

/**
 * Reduces (validated) batches to one version per key, which also keeps `INSERT … ON CONFLICT` from
 * touching a row twice in one statement (an error in PostgreSQL).
 */
function coalesce(batches: readonly BackupBatch[]): CoalescedBatch {
  const result: CoalescedBatch = {
    maxIndex: 0,
    brokers: new Map(),
    deletedBrokers: new Map(),
    topics: new Map(),
    deletedTopics: new Map(),
    partitions: new Map(),
    full: undefined,
  };
  for (const batch of batches) {
    const index = batch.raftIndex;
    result.maxIndex = Math.max(result.maxIndex, index);
    for (const row of batch.brokers ?? []) keepNewest(result.brokers, row.brokerId, index, row);
    for (const id of batch.deletedBrokerIds ?? []) {
      result.deletedBrokers.set(id, Math.max(result.deletedBrokers.get(id) ?? 0, index));
    }
    for (const row of batch.topics ?? []) keepNewest(result.topics, row.name, index, row);
    for (const topic of batch.deletedTopics ?? []) {
      keepNewest(result.deletedTopics, topic.name, index, topic);
    }
    for (const row of batch.partitions ?? []) {
      keepNewest(result.partitions, `${row.topicName}\u0000${row.partitionId}`, index, row);
    }
    if (batch.full && (result.full === undefined || result.full.raftIndex <= index)) {
      result.full = batch;
    }
  }
  return result;
}
