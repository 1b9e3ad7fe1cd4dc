import type { Job } from 'bullmq';
import { UnrecoverableError, Worker } from 'bullmq';
import { isPersistenceError, PersistenceError } from '../errors';
import type { Logger } from '../logger';
import { silentLogger } from '../logger';
import type { BackupBatch } from '../backup/rows';
import { validateBackupBatch } from '../backup/backup-writer';
import { DEFAULT_BACKUP_QUEUE_NAME } from './backup-queue';

/** What the worker writes with: {@link BackupWriter} (or a test double). */
export interface BackupBatchWriter {
  write(batches: readonly BackupBatch[]): Promise<unknown>;
}

/** Options of {@link BackupWorker}. */
export interface BackupWorkerOptions {
  /** Redis URL, e.g. `redis://127.0.0.1:6379`. */
  redisUrl: string;
  /** Queue name; must match the producer's. Default {@link DEFAULT_BACKUP_QUEUE_NAME}. */
  queueName?: string;
  /** Redis key prefix; must match the producer's. Default `bull`. */
  prefix?: string;
  /**
   * Jobs held at once. They are coalesced into one database write (one transaction) while the
   * previous write runs, like a group commit. Default 16.
   */
  concurrency?: number;
  /** Most jobs in one write. Default 256. */
  maxBatchSize?: number;
  /**
   * Called whenever the number of jobs held (received, not yet written) changes: a gauge for
   * metrics, and a synchronisation point for tests.
   */
  onHeld?: (held: number) => void;
  /** Start consuming at once. Default true; false leaves it to {@link BackupWorker.run}. */
  autorun?: boolean;
  logger?: Logger;
}

interface Pending {
  job: Job<BackupBatch>;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/**
 * Consumes backup jobs and writes them to PostgreSQL through a {@link BackupBatchWriter}.
 *
 * Jobs that arrive while a write is running are coalesced into the next write, so a burst of
 * Raft entries costs a few transactions, not one each. When a coalesced write fails, its jobs
 * are retried one by one at once, so one poisonous job cannot fail its neighbours. A failed
 * job is retried by BullMQ with the producer's exponential backoff; after its last attempt it
 * stays in the queue's failed set (the dead letters, see `BackupQueue.deadLetters()`) with its
 * failure reason. Malformed rows and a foreign cluster's database fail at once, without retries.
 *
 * Shutdown: {@link close} waits for the jobs in hand to finish (their writes complete).
 */
export class BackupWorker {
  readonly worker: Worker<BackupBatch>;
  private readonly logger: Logger;
  private readonly maxBatchSize: number;
  private readonly onHeld: ((held: number) => void) | undefined;
  private pending: Pending[] = [];
  private writing = false;
  private held = 0;

  constructor(
    private readonly writer: BackupBatchWriter,
    options: BackupWorkerOptions,
  ) {
    const concurrency = options.concurrency ?? 16;
    this.maxBatchSize = options.maxBatchSize ?? 256;
    for (const [name, value] of Object.entries({
      concurrency,
      maxBatchSize: this.maxBatchSize,
    })) {
      if (!Number.isInteger(value) || value <= 0) {
        throw new PersistenceError(
          'persistence/invalid-options',
          `${name} must be a positive integer, got ${value}`,
        );
      }
    }
    this.logger = options.logger ?? silentLogger;
    this.onHeld = options.onHeld;
    const queueName = options.queueName ?? DEFAULT_BACKUP_QUEUE_NAME;
    this.worker = new Worker<BackupBatch>(queueName, (job) => this.process(job), {
      // A worker's blocking connection must retry forever (BullMQ's requirement).
      connection: { url: options.redisUrl, maxRetriesPerRequest: null },
      concurrency,
      autorun: options.autorun ?? true,
      ...(options.prefix === undefined ? {} : { prefix: options.prefix }),
    });
    this.worker.on('error', (error) => {
      this.logger.warn({ queue: queueName, error: error.message }, 'Backup worker Redis error');
    });
    this.worker.on('failed', (job, error) => {
      if (!job) return;
      const attempts = job.opts.attempts ?? 1;
      const fields = {
        queue: queueName,
        jobId: job.id,
        raftIndex: job.data.raftIndex,
        attemptsMade: job.attemptsMade,
        attempts,
        error: error.message,
      };
      if (error instanceof UnrecoverableError || job.attemptsMade >= attempts) {
        this.logger.error(fields, 'Backup job dead-lettered: the backup misses this change');
      } else {
        this.logger.warn(fields, 'Backup job failed; it will be retried');
      }
    });
  }

  /** Starts consuming when built with `autorun: false`. */
  run(): void {
    void this.worker.run().catch((error: unknown) => {
      this.logger.error({ error: String(error) }, 'Backup worker stopped');
    });
  }

  /** Stops taking jobs and waits for the jobs in hand. */
  async close(): Promise<void> {
    await this.worker.close();
  }

  private process(job: Job<BackupBatch>): Promise<void> {
    try {
      validateBackupBatch(job.data);
    } catch (error) {
      return Promise.reject(this.toJobError(error));
    }
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ job, resolve, reject });
      this.changeHeld(+1);
      if (!this.writing) void this.drain();
    });
  }

  /** Writes pending jobs, a group at a time, until none is left (one write in flight). */
  private async drain(): Promise<void> {
    this.writing = true;
    try {
      while (this.pending.length > 0) {
        const group = this.pending.splice(0, this.maxBatchSize);
        try {
          await this.writer.write(group.map((item) => item.job.data));
          for (const item of group) item.resolve();
          this.changeHeld(-group.length);
        } catch (error) {
          if (group.length === 1) {
            group[0]?.reject(this.toJobError(error));
            this.changeHeld(-1);
            continue;
          }
          this.logger.warn(
            { jobs: group.length, error: describe(error) },
            'Coalesced backup write failed; writing its jobs one by one',
          );
          for (const item of group) {
            try {
              await this.writer.write([item.job.data]);
              item.resolve();
            } catch (single) {
              item.reject(this.toJobError(single));
            }
            this.changeHeld(-1);
          }
        }
      }
    } finally {
      this.writing = false;
    }
  }

  private changeHeld(delta: number): void {
    this.held += delta;
    this.onHeld?.(this.held);
  }

  /** Errors that no retry can fix skip BullMQ's remaining attempts. */
  private toJobError(error: unknown): Error {
    if (
      isPersistenceError(error, 'persistence/invalid-backup-row') ||
      isPersistenceError(error, 'persistence/backup-cluster-mismatch')
    ) {
      return new UnrecoverableError(`${error.code}: ${error.message}`);
    }
    return error instanceof Error ? error : new Error(String(error));
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
