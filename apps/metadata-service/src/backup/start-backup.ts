import { ErrorCode, type BackupResyncResponse, type BackupStatus } from '@dmq/api-contracts';
import {
  BackupQueue,
  BackupReader,
  BackupWorker,
  BackupWriter,
  createPrismaClient,
  migrate,
  type BackupBatch,
  type BackupStateRow,
} from '@dmq/persistence-prisma';
import type { RaftNode } from '@dmq/raft-core';
import type { ApplyResult } from '@dmq/state-machine';
import type { Logger } from 'pino';
import type { ServiceConfig } from '../config/config';
import { ApiError } from '../http/api-error';
import type { BackupPort } from '../node/metadata-node';
import type { MetadataState } from '../node/metadata-state';
import { toBatch } from './backup-batch';
import { restoreFromBackup } from './restore-from-backup';

export { toBatch } from './backup-batch';

/** Counters of this node's backup producer, for `/metrics`. */
export interface BackupCounters {
  /** Jobs this node handed to the queue (only ever non-zero while it leads). */
  readonly jobsEnqueued: number;
  /** Of which full resyncs. */
  readonly fullResyncs: number;
  /** Of which catch-up jobs (leader change, Redis or PostgreSQL back). */
  readonly catchUps: number;
  /** Full resyncs enqueued to repair the gap a dead-lettered job left. */
  readonly deadLetterRepairs: number;
}

export interface BackupHandle extends BackupPort {
  counters(): BackupCounters;
  /** Dead letters in the queue at the last check (every node checks once a second); null: unknown. */
  deadLetterCount(): number | null;
  close(): Promise<void>;
}

export interface StartBackupOptions {
  readonly config: ServiceConfig;
  readonly state: MetadataState;
  readonly raft: RaftNode<ApplyResult>;
  readonly logger: Logger;
}

const DISABLED: BackupStatus = {
  enabled: false,
  status: 'off',
  backedUpIndex: null,
  lagEntries: null,
  lagMs: null,
};

/**
 * How often the leader reads `backup_state`: the lag it reports is late by up to this much
 * (workers of every node write, so the leader learns their progress from the database).
 */
const STATUS_POLL_MS = 200;

/** How often every node counts the queue's dead letters (and the leader repairs their gaps). */
const DEAD_LETTER_POLL_MS = 1_000;

/** Longest wait for `backup_state` when deciding what a catch-up must send. */
const STATE_READ_TIMEOUT_MS = 2_000;

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
      timer.unref();
    }),
  ]).finally(() => clearTimeout(timer));
}

/**
 * The leader-only asynchronous backup to PostgreSQL through BullMQ (issue #6), wired so that
 * it can never hold up Raft or the API.
 *
 * - Applied entries only mark the backup dirty; a turn of the event loop later the leader
 *   enqueues one job with everything that changed since its last job. The term is captured
 *   when the job is scheduled and checked again, with the role, when it is enqueued: a node
 *   that lost (or changed) leadership in between enqueues nothing (logged at debug level).
 * - Catch-up instead of loss: when a node becomes leader, and whenever Redis (queue health
 *   back to `ok`) or PostgreSQL (reachable again) return, the leader compares
 *   `backup_state.backed_up_index` with its applied index and enqueues the changes after it
 *   as one job, or a full resync when the gap is beyond the change log or unknown, or when
 *   the backup is of another generation (a restore whose rebase never happened: the full
 *   batch of the newer generation rebases it). A queue that dropped jobs, and
 *   `POST /backup/resync`, enqueue a full resync.
 * - Workers run on every node (BullMQ spreads the jobs); each upsert only moves rows forward,
 *   so duplicates and late jobs are harmless.
 * - PostgreSQL or Redis down at start only delays the backup: migrations are retried in the
 *   background and the worker starts once they succeed.
 */
export async function startBackup(options: StartBackupOptions): Promise<BackupHandle> {
  const { config, state, raft, logger } = options;
  if (!config.backup) {
    logger.info('backup disabled (DMQ_BACKUP=off)');
    return {
      status: () => DISABLED,
      counters: () => ({ jobsEnqueued: 0, fullResyncs: 0, catchUps: 0, deadLetterRepairs: 0 }),
      deadLetterCount: () => null,
      resync: () =>
        Promise.reject(
          new ApiError(ErrorCode.PRECONDITION_FAILED, 'backup is disabled (DMQ_BACKUP=off)'),
        ),
      deadLetters: () =>
        Promise.reject(
          new ApiError(ErrorCode.PRECONDITION_FAILED, 'backup is disabled (DMQ_BACKUP=off)'),
        ),
      close: async () => undefined,
    };
  }
  // Before any election: a node without log and snapshot was started on a brand-new data dir.
  const startStatus = raft.status();
  const startedWithoutLog = startStatus.lastIndex === 0 && startStatus.snapshotIndex === 0;

  const prisma = createPrismaClient({ databaseUrl: config.databaseUrl, logger });
  const writer = new BackupWriter(prisma, { clusterId: config.clusterId, logger });
  let closed = false;
  const closing = new AbortController();
  /** Index of the newest state the leader enqueued in its current term; undefined: none yet. */
  let lastEnqueued: number | undefined;
  let flushScheduled = false;
  let backedUpIndex: number | null = null;
  let databaseReachable = false;
  let redisDegraded = false;
  const counters = { jobsEnqueued: 0, fullResyncs: 0, catchUps: 0, deadLetterRepairs: 0 };
  /** From the last `backup_state` read of this generation: the newest full backup's index. */
  let fullBackupIndex = 0;
  let deadLetterCount: number | null = null;
  /** The state version up to which this node, as leader, already repaired dead letters. */
  let repairedThrough = 0;
  /**
   * Apply times of recent versions not yet backed up, for the lag in milliseconds: entries
   * before `appliedHead` are dropped, and compacted away in batches, so the apply hook stays
   * O(1) amortized (it runs on every committed entry).
   */
  const appliedAt: Array<[number, number]> = [];
  let appliedHead = 0;
  const APPLIED_WINDOW = 100_000;
  const compactApplied = (): void => {
    if (appliedHead >= APPLIED_WINDOW / 2) {
      appliedAt.splice(0, appliedHead);
      appliedHead = 0;
    }
  };

  /** The current term when this node leads, else undefined. */
  const leaderTerm = (): number | undefined => (raft.isLeader() ? raft.status().term : undefined);
  /** True when this node still leads in `term` (checked at enqueue time). */
  const leadsIn = (term: number): boolean => raft.isLeader() && raft.status().term === term;

  /** Hands `batch` to the queue; false when it was not (closed, or a restore in progress). */
  const enqueue = (batch: BackupBatch): boolean => {
    // A partial restore must never reach the backup it is being read from (a full batch of
    // its generation would rebase the backup on it); the restore's own rebase comes at its end.
    if (state.current.restoreInProgress() !== undefined) {
      logger.debug({ raftIndex: batch.raftIndex }, 'restore in progress: backup job skipped');
      return false;
    }
    if (!queue.enqueue(batch)) return false;
    counters.jobsEnqueued += 1;
    if (batch.full === true) counters.fullResyncs += 1;
    return true;
  };

  /**
   * Takes `backup_state` as this cluster's progress (0 when it is another generation's: its
   * indices say nothing about this cluster) and returns the backed-up index.
   */
  const adoptState = (row: BackupStateRow | null): number => {
    const ours = row !== null && row.generation === state.current.backupGeneration();
    backedUpIndex = ours ? row.backedUpIndex : 0;
    fullBackupIndex = ours ? row.fullBackupIndex : 0;
    databaseReachable = true;
    return backedUpIndex;
  };

  const enqueueFull = (): BackupResyncResponse => {
    const rows = state.current.toBackupRows();
    lastEnqueued = Math.max(lastEnqueued ?? 0, rows.version);
    // Version 0 is the empty state before any command: nothing to back up yet.
    if (rows.version > 0 && enqueue(toBatch({ ...rows, full: true }))) {
      logger.info(
        { index: rows.version, topics: rows.topics.length, partitions: rows.partitions.length },
        'enqueued a full backup',
      );
    }
    return {
      index: rows.version,
      brokers: rows.brokers.length,
      topics: rows.topics.length,
      partitions: rows.partitions.length,
    };
  };

  /**
   * Compares `backup_state` with the applied index and enqueues what is missing: the changes
   * after `backed_up_index` as one job, or a full resync when the gap is beyond the change log
   * or unknown (PostgreSQL not answering).
   */
  const catchUp = async (reason: string): Promise<void> => {
    const term = leaderTerm();
    if (term === undefined || closed) return;
    let stored: number | undefined;
    try {
      const row = await withTimeout(writer.readState(), STATE_READ_TIMEOUT_MS, 'backup_state');
      const generation = state.current.backupGeneration();
      if (row !== null && row.generation !== generation) {
        // Another lineage of Raft indices: the backup of the cluster this one was restored
        // from (the rebase after the restore did not happen), or of a cluster restored from
        // this one's backup (this cluster's jobs are then dropped).
        logger.warn(
          { backupGeneration: row.generation, generation, backedUpIndex: row.backedUpIndex },
          row.generation < generation
            ? 'the backup is of an older generation: rebasing it with a full backup'
            : 'the backup belongs to a newer generation (a cluster restored from it): this ' +
                "cluster's changes are not backed up any more",
        );
      }
      stored = adoptState(row);
    } catch (err) {
      logger.debug({ err: (err as Error).message }, 'backup_state unreadable: catch-up is full');
    }
    if (closed || !leadsIn(term)) {
      logger.debug({ reason, term }, 'no longer the leader of the term: skipping the catch-up');
      return;
    }
    const version = state.version;
    if (stored !== undefined && stored >= version) {
      logger.info({ reason, backedUpIndex: stored, index: version }, 'backup is up to date');
      return;
    }
    counters.catchUps += 1;
    if (stored === undefined || stored === 0) {
      logger.info({ reason, backedUpIndex: stored ?? null, index: version }, 'backup catch-up');
      enqueueFull();
      return;
    }
    const changes = state.current.backupChangesSince(stored);
    if (changes.full) {
      logger.info({ reason, backedUpIndex: stored, index: version }, 'backup catch-up');
      enqueueFull();
      return;
    }
    logger.info(
      {
        reason,
        backedUpIndex: stored,
        index: changes.version,
        topics: changes.topics.length,
        brokers: changes.brokers.length,
      },
      'backup catch-up: enqueued the changes after the backed-up index',
    );
    enqueue({ ...toBatch(changes), sinceIndex: stored });
  };
  const startCatchUp = (reason: string): void => {
    catchUp(reason).catch((err: unknown) =>
      logger.error({ err, reason }, 'backup catch-up failed'),
    );
  };

  const queue = new BackupQueue({
    redisUrl: config.redisUrl,
    queueName: config.backupQueue,
    logger,
    onHealthChange: (health) => {
      if (closed) return;
      if (health.needsResync && raft.isLeader()) enqueueFull();
      if (health.lastError !== null) {
        redisDegraded = true;
      } else if (redisDegraded) {
        // Redis is back: jobs it held may be gone (a restart without persistence).
        redisDegraded = false;
        if (raft.isLeader()) startCatchUp('redis-back');
      }
    },
  });
  const worker = new BackupWorker(writer, {
    redisUrl: config.redisUrl,
    queueName: config.backupQueue,
    concurrency: config.backupConcurrency,
    logger,
    autorun: false,
  });

  // Migrations need PostgreSQL; retry in the background until it is there.
  const migrated = (async () => {
    let delayMs = 500;
    while (!closed) {
      try {
        await migrate({ databaseUrl: config.databaseUrl, logger });
        databaseReachable = true;
        worker.run();
        logger.info('backup database ready; worker started');
        if (raft.isLeader()) startCatchUp('database-ready');
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

  const flush = (term: number): void => {
    flushScheduled = false;
    if (closed) return;
    if (!leadsIn(term)) {
      logger.debug({ term }, 'not the leader of the term any more: skipping backup enqueue');
      return;
    }
    if (lastEnqueued === undefined) {
      enqueueFull();
      return;
    }
    const changes = state.current.backupChangesSince(lastEnqueued);
    if (changes.version <= lastEnqueued) return;
    lastEnqueued = changes.version;
    enqueue(toBatch(changes));
  };
  const scheduleFlush = (): void => {
    if (flushScheduled) return;
    const term = leaderTerm();
    if (term === undefined) return;
    flushScheduled = true;
    setImmediate(() => flush(term));
  };

  const unsubscribe = state.onApplied((index) => {
    appliedAt.push([index, Date.now()]);
    if (appliedAt.length - appliedHead > APPLIED_WINDOW)
      appliedHead = appliedAt.length - APPLIED_WINDOW;
    compactApplied();
    if (!raft.isLeader()) {
      logger.debug({ index }, 'not the leader: skipping backup enqueue');
      return;
    }
    scheduleFlush();
  });
  const unlisten = raft.onLeaderChange((soft) => {
    if (soft.role === 'leader') {
      // Changes from now on go out incrementally; what came before is the catch-up's.
      lastEnqueued = state.version;
      if (databaseReachable) startCatchUp('leader');
      // (Before the database is ready, the migration loop's catch-up does it.)
    } else {
      lastEnqueued = undefined;
    }
  });

  /** Runs `task` every `ms` until closed, never two at once. */
  const every = (ms: number, task: () => Promise<void>): NodeJS.Timeout => {
    let running = false;
    const timer = setInterval(() => {
      if (closed || running) return;
      running = true;
      task()
        .catch((err: unknown) => logger.error({ err }, 'backup poll failed'))
        .finally(() => {
          running = false;
        });
    }, ms);
    timer.unref();
    return timer;
  };

  // The leader's view of the backup's progress (for the lag in /cluster and /metrics, and to
  // notice PostgreSQL coming back): one small read every STATUS_POLL_MS.
  const poll = every(STATUS_POLL_MS, async () => {
    if (!raft.isLeader()) return;
    await writer.readState().then(
      (row) => {
        const wasReachable = databaseReachable;
        adoptState(row);
        while (
          appliedHead < appliedAt.length &&
          (appliedAt[appliedHead] as [number, number])[0] <= (backedUpIndex ?? 0)
        )
          appliedHead += 1;
        compactApplied();
        // PostgreSQL is back: jobs may have been dead-lettered meanwhile.
        if (!wasReachable) startCatchUp('database-back');
      },
      (err: unknown) => {
        if (databaseReachable)
          logger.warn({ err: (err as Error).message }, 'backup database unreachable');
        databaseReachable = false;
      },
    );
  });

  /**
   * Dead letters: counted on every node (for /metrics); the leader repairs the gap a dead
   * letter of this generation left above the newest full backup with a full resync, once per
   * new dead letter (`backed_up_index` alone hides such a gap: later jobs moved it past).
   */
  const checkDeadLetters = async (): Promise<void> => {
    deadLetterCount = await queue.deadLetterCount();
    if (deadLetterCount === 0 || !raft.isLeader() || !databaseReachable) return;
    const generation = state.current.backupGeneration();
    let gapAt = 0;
    for (const letter of await queue.deadLetters(0, 99)) {
      if (letter.generation === generation) gapAt = Math.max(gapAt, letter.raftIndex);
    }
    if (gapAt <= Math.max(fullBackupIndex, repairedThrough) || !raft.isLeader()) return;
    logger.warn(
      { raftIndex: gapAt, fullBackupIndex, deadLetters: deadLetterCount },
      'a backup job was dead-lettered (see GET /api/v1/backup/dead-letters): repairing the ' +
        'backup with a full resync',
    );
    counters.deadLetterRepairs += 1;
    repairedThrough = enqueueFull().index;
  };
  const deadLetterPoll = every(DEAD_LETTER_POLL_MS, () =>
    checkDeadLetters().catch((err: unknown) => {
      deadLetterCount = null;
      logger.debug({ err: (err as Error).message }, 'dead letters unreadable');
    }),
  );

  const restore = config.restoreFromBackup
    ? restoreFromBackup({
        config,
        state,
        raft,
        reader: new BackupReader(prisma),
        writer,
        migrated,
        startedWithoutLog,
        partitionsPerPart: config.restorePartitionsPerPart,
        signal: closing.signal,
        rebased: (index) => {
          lastEnqueued = Math.max(lastEnqueued ?? 0, index);
          backedUpIndex = index;
        },
        logger: logger.child({ component: 'restore' }),
      }).then(
        () => undefined,
        (err: unknown) => logger.error({ err }, 'restore from backup failed'),
      )
    : Promise.resolve();

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
      const oldest = appliedAt[appliedHead];
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
    counters: () => ({ ...counters }),
    deadLetterCount: () => deadLetterCount,
    deadLetters: async (limit) => {
      try {
        const [count, letters] = await Promise.all([
          withTimeout(queue.deadLetterCount(), STATE_READ_TIMEOUT_MS, 'Redis'),
          withTimeout(queue.deadLetters(0, limit - 1), STATE_READ_TIMEOUT_MS, 'Redis'),
        ]);
        return {
          count,
          deadLetters: letters.map((letter) => ({
            ...letter,
            failedAt: letter.failedAt === null ? null : letter.failedAt.toISOString(),
          })),
        };
      } catch (err) {
        throw new ApiError(
          ErrorCode.NOT_READY,
          `the backup queue cannot be read now (Redis): ${(err as Error).message}`,
        );
      }
    },
    resync: async () => {
      if (!raft.isLeader()) {
        throw new ApiError(ErrorCode.NO_LEADER, 'only the leader enqueues backups');
      }
      if (state.current.restoreInProgress() !== undefined) {
        throw new ApiError(
          ErrorCode.PRECONDITION_FAILED,
          'a restore from backup is in progress: the backup is rewritten when it completes',
        );
      }
      return enqueueFull();
    },
    close: async () => {
      closed = true;
      closing.abort();
      clearInterval(poll);
      clearInterval(deadLetterPoll);
      unsubscribe();
      unlisten();
      await restore;
      await worker.close();
      await queue.close();
      await prisma.$disconnect();
    },
  };
}
