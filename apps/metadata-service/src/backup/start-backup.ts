import { ErrorCode, type BackupResyncResponse, type BackupStatus } from '@dmq/api-contracts';
import {
  BackupQueue,
  BackupWorker,
  BackupWriter,
  createPrismaClient,
  migrate,
  type BackupBatch,
} from '@dmq/persistence-prisma';
import type { RaftNode } from '@dmq/raft-core';
import type { ApplyResult, BackupChanges, BackupRows } from '@dmq/state-machine';
import type { Logger } from 'pino';
import type { ServiceConfig } from '../config/config';
import { ApiError } from '../http/api-error';
import type { BackupPort } from '../node/metadata-node';
import type { MetadataState } from '../node/metadata-state';

export interface BackupHandle extends BackupPort {
  close(): Promise<void>;
}

export interface StartBackupOptions {
  readonly config: ServiceConfig;
  readonly state: MetadataState;
  readonly raft: RaftNode<ApplyResult>;
  readonly logger: Logger;
}

/** Turns the state machine's changed rows into a backup job. */
export function toBatch(changes: BackupChanges | (BackupRows & { full: true })): BackupBatch {
  return {
    raftIndex: changes.version,
    brokers: changes.brokers,
    topics: changes.topics,
    // Rows made from the live state always carry their topic's incarnation id.
    partitions: changes.partitions.map((row) => {
      if (row.topicId === undefined)
        throw new Error(`partition row ${row.topicName}/${row.partitionId} has no topicId`);
      return { ...row, topicId: row.topicId };
    }),
    ...('deletedTopics' in changes
      ? { deletedTopics: changes.deletedTopics, deletedBrokerIds: changes.deletedBrokers }
      : {}),
    ...(changes.full ? { full: true } : {}),
  };
}

const DISABLED: BackupStatus = {
  enabled: false,
  status: 'off',
  backedUpIndex: null,
  lagEntries: null,
  lagMs: null,
};

/**
 * The leader-only asynchronous backup to PostgreSQL through BullMQ (issue #6), wired so that
 * it can never hold up Raft or the API: applied entries only mark the backup dirty; a
 * turn of the event loop later the leader enqueues one job with everything that changed
 * (the queue buffers in memory while Redis is away). A node that becomes leader, and a queue
 * that lost jobs, enqueue a full resync. Workers run on every node (BullMQ spreads the jobs);
 * each upsert only moves rows forward, so duplicates and late jobs are harmless. PostgreSQL
 * or Redis being down at start only delays the backup: migrations are retried in the
 * background and the worker starts once they succeed.
 */
export async function startBackup(options: StartBackupOptions): Promise<BackupHandle> {
  const { config, state, raft, logger } = options;
  if (!config.backup) {
    logger.info('backup disabled (DMQ_BACKUP=off)');
    return {
      status: () => DISABLED,
      resync: () =>
        Promise.reject(
          new ApiError(ErrorCode.PRECONDITION_FAILED, 'backup is disabled (DMQ_BACKUP=off)'),
        ),
      close: async () => undefined,
    };
  }

  const prisma = createPrismaClient({ databaseUrl: config.databaseUrl, logger });
  const writer = new BackupWriter(prisma, { clusterId: config.clusterId, logger });
  let closed = false;
  let lastEnqueued: number | undefined;
  let flushScheduled = false;
  let backedUpIndex: number | null = null;
  let databaseReachable = false;
  /** Apply times of recent versions, for the lag in milliseconds. */
  const appliedAt: Array<[number, number]> = [];

  const enqueueFull = (): BackupResyncResponse => {
    const rows = state.current.toBackupRows();
    lastEnqueued = rows.version;
    // Version 0 is the empty state before any command: nothing to back up yet.
    if (rows.version > 0) queue.enqueue(toBatch({ ...rows, full: true }));
    logger.info(
      { index: rows.version, topics: rows.topics.length, partitions: rows.partitions.length },
      'enqueued a full backup',
    );
    return {
      index: rows.version,
      brokers: rows.brokers.length,
      topics: rows.topics.length,
      partitions: rows.partitions.length,
    };
  };

  const queue = new BackupQueue({
    redisUrl: config.redisUrl,
    logger,
    onHealthChange: (health) => {
      if (health.needsResync && raft.isLeader() && !closed) enqueueFull();
    },
  });
  const worker = new BackupWorker(writer, {
    redisUrl: config.redisUrl,
    concurrency: config.backupConcurrency,
    logger,
    autorun: false,
  });

  // Migrations need PostgreSQL; retry in the background until it is there.
  void (async () => {
    let delayMs = 500;
    while (!closed) {
      try {
        await migrate({ databaseUrl: config.databaseUrl, logger });
        databaseReachable = true;
        worker.run();
        logger.info('backup database ready; worker started');
        if (raft.isLeader()) enqueueFull();
        return;
      } catch (err) {
        logger.warn(
          { err: (err as Error).message, retryInMs: delayMs },
          'backup database not ready; will retry',
        );
        await new Promise((resolve) => setTimeout(resolve, delayMs).unref());
        delayMs = Math.min(30_000, delayMs * 2);
      }
    }
  })();

  const flush = (): void => {
    flushScheduled = false;
    if (closed || !raft.isLeader()) return;
    if (lastEnqueued === undefined) {
      enqueueFull();
      return;
    }
    const changes = state.current.backupChangesSince(lastEnqueued);
    if (changes.version <= lastEnqueued) return;
    lastEnqueued = changes.version;
    queue.enqueue(toBatch(changes));
  };

  const unsubscribe = state.onApplied((index) => {
    appliedAt.push([index, Date.now()]);
    if (appliedAt.length > 100_000) appliedAt.splice(0, appliedAt.length - 100_000);
    if (!raft.isLeader()) {
      logger.debug({ index }, 'not the leader: skipping backup enqueue');
      return;
    }
    if (!flushScheduled) {
      flushScheduled = true;
      setImmediate(flush);
    }
  });
  const unlisten = raft.onLeaderChange((soft) => {
    if (soft.role === 'leader') {
      lastEnqueued = undefined;
      if (!flushScheduled) {
        flushScheduled = true;
        setImmediate(flush);
      }
    } else {
      lastEnqueued = undefined;
    }
  });

  const poll = setInterval(() => {
    if (closed || !raft.isLeader()) return;
    writer.readState().then(
      (row) => {
        databaseReachable = true;
        backedUpIndex = row === null ? 0 : Number(row.backedUpIndex);
        while (
          appliedAt.length > 0 &&
          (appliedAt[0] as [number, number])[0] <= (backedUpIndex ?? 0)
        )
          appliedAt.shift();
      },
      () => {
        databaseReachable = false;
      },
    );
  }, 1_000);
  poll.unref();

  return {
    status(): BackupStatus {
      if (!raft.isLeader()) {
        return {
          enabled: true,
          status: 'follower',
          backedUpIndex: null,
          lagEntries: null,
          lagMs: null,
        };
      }
      const health = queue.health();
      const lagEntries = backedUpIndex === null ? null : Math.max(0, state.version - backedUpIndex);
      const oldest = appliedAt[0];
      const lagMs =
        backedUpIndex === null
          ? null
          : oldest === undefined
            ? 0
            : Math.max(0, Date.now() - oldest[1]);
      const degraded = health.status !== 'ok' || !databaseReachable;
      return {
        enabled: true,
        status: degraded ? 'degraded' : lagEntries === 0 ? 'idle' : 'active',
        backedUpIndex,
        lagEntries,
        lagMs,
      };
    },
    resync: async () => {
      if (!raft.isLeader()) {
        throw new ApiError(ErrorCode.NO_LEADER, 'only the leader enqueues backups', {
          retryAfterSeconds: 1,
        });
      }
      return enqueueFull();
    },
    close: async () => {
      closed = true;
      clearInterval(poll);
      unsubscribe();
      unlisten();
      await worker.close();
      await queue.close();
      await prisma.$disconnect();
    },
  };
}
