import { Queue } from 'bullmq';
import { PersistenceError } from '../errors';
import type { Logger } from '../logger';
import { silentLogger } from '../logger';
import type { BackupBatch } from '../backup/rows';

/** Default BullMQ queue name of the backup jobs. */
export const DEFAULT_BACKUP_QUEUE_NAME = 'dmq-backup';

/** Options of {@link BackupQueue}. */
export interface BackupQueueOptions {
  /** Redis URL, e.g. `redis://127.0.0.1:6379`. */
  redisUrl: string;
  /** Default {@link DEFAULT_BACKUP_QUEUE_NAME}. */
  queueName?: string;
  /** Redis key prefix. Default `bull`. */
  prefix?: string;
  /**
   * Most jobs held in memory while Redis is slow or unreachable. Beyond it the OLDEST are
   * dropped and {@link BackupQueueHealth.needsResync} is set: the backup then misses changes
   * until a full resync batch is enqueued. Default 10 000.
   */
  bufferCapacity?: number;
  /** Attempts per job before it is dead-lettered. Default 10. */
  attempts?: number;
  /** Delay of a job's first retry; it doubles on each further attempt. Default 1 000 ms. */
  backoffDelayMs?: number;
  /** First delay before buffered jobs are offered to Redis again after a failure; doubles up to 30 s. Default 500 ms. */
  retryDelayMs?: number;
  /** Longest wait for Redis to accept a group of jobs before it counts as failed. Default 5 000 ms. */
  addTimeoutMs?: number;
  /** Completed jobs kept in Redis for inspection. Default 1 000. */
  keepCompleted?: number;
  logger?: Logger;
  /** Called on every change of {@link BackupQueueHealth.status}, `needsResync`, or of Redis turning (un)reachable. */
  onHealthChange?: (health: BackupQueueHealth) => void;
}

/** The producer's view of the backup pipeline, for `/cluster` and `/metrics`. */
export interface BackupQueueHealth {
  /** `degraded` while jobs cannot be handed to Redis, or changes were dropped. */
  status: 'ok' | 'degraded';
  /** Jobs waiting in memory for Redis. */
  buffered: number;
  /** Jobs dropped (buffer full) since the last full resync was enqueued. */
  dropped: number;
  /** True once a job was dropped: enqueue a full resync batch to repair the backup. */
  needsResync: boolean;
  /** The last error from Redis, or null after a success. */
  lastError: string | null;
}

/** A dead-lettered backup job: failed on every attempt, kept with its reason. */
export interface DeadLetter {
  jobId: string;
  raftIndex: number;
  /** The backup generation of the cluster that made the job. */
  generation: number;
  full: boolean;
  failedReason: string;
  attemptsMade: number;
  failedAt: Date | null;
}

const ADD_CHUNK = 500;

/**
 * `full-<n>` for a resync, `idx-<since>-<n>` for a catch-up batch, `idx-<n>` for one entry;
 * prefixed with `g<generation>-` from generation 1 on, so that a restored cluster's jobs (its
 * Raft indices start again from 1) are not taken for the lost cluster's jobs still in Redis.
 */
export function jobIdOf(batch: BackupBatch): string {
  const prefix = batch.generation ? `g${batch.generation}-` : '';
  if (batch.full) return `${prefix}full-${batch.raftIndex}`;
  if (batch.sinceIndex !== undefined) {
    return `${prefix}idx-${batch.sinceIndex}-${batch.raftIndex}`;
  }
  return `${prefix}idx-${batch.raftIndex}`;
}

/**
 * The producer side of the backup: the Raft leader hands each applied change to
 * {@link enqueue}, which never throws and never waits. Jobs go through a bounded in-memory
 * buffer to BullMQ in the background; while Redis is down they wait in the buffer (oldest
 * dropped beyond its capacity, with `needsResync` raised), and Raft never notices.
 *
 * Each job is one {@link BackupBatch}; its id is derived from its Raft index (`idx-<n>`, or
 * `full-<n>` for a resync), so a change handed over twice (a retry after a timeout, a new
 * leader re-sending) is queued once. Jobs retry with exponential backoff and end, after their
 * last attempt, in the queue's failed set: the dead letters ({@link deadLetters}).
 *
 * Shutdown: {@link close} stops accepting, lets the current hand-over finish, and closes the
 * Redis connection; jobs still buffered then are lost (the next leader's resync repairs that).
 */
export class BackupQueue {
  readonly queue: Queue<BackupBatch>;
  private readonly logger: Logger;
  private readonly bufferCapacity: number;
  private readonly retryDelayMs: number;
  private readonly addTimeoutMs: number;
  private readonly onHealthChange: ((health: BackupQueueHealth) => void) | undefined;
  private buffer: BackupBatch[] = [];
  private inFlight: BackupBatch[] = [];
  private draining: Promise<void> | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private currentRetryDelayMs: number;
  private closed = false;
  private dropped = 0;
  private needsResync = false;
  private lastError: string | null = null;
  private lastReported = { status: 'ok', needsResync: false, reachable: true };

  constructor(options: BackupQueueOptions) {
    this.bufferCapacity = options.bufferCapacity ?? 10_000;
    this.retryDelayMs = options.retryDelayMs ?? 500;
    this.addTimeoutMs = options.addTimeoutMs ?? 5_000;
    const attempts = options.attempts ?? 10;
    const backoffDelayMs = options.backoffDelayMs ?? 1_000;
    const keepCompleted = options.keepCompleted ?? 1_000;
    for (const [name, value] of Object.entries({
      bufferCapacity: this.bufferCapacity,
      retryDelayMs: this.retryDelayMs,
      addTimeoutMs: this.addTimeoutMs,
      attempts,
      backoffDelayMs,
    })) {
      if (!Number.isInteger(value) || value <= 0) {
        throw new PersistenceError(
          'persistence/invalid-options',
          `${name} must be a positive integer, got ${value}`,
        );
      }
    }
    if (!Number.isInteger(keepCompleted) || keepCompleted < 0) {
      throw new PersistenceError(
        'persistence/invalid-options',
        `keepCompleted must be a non-negative integer, got ${keepCompleted}`,
      );
    }
    this.currentRetryDelayMs = this.retryDelayMs;
    this.logger = options.logger ?? silentLogger;
    this.onHealthChange = options.onHealthChange;
    this.queue = new Queue<BackupBatch>(options.queueName ?? DEFAULT_BACKUP_QUEUE_NAME, {
      // Fail fast instead of queueing commands inside ioredis while Redis is down: the
      // buffer here is the one place jobs wait, and it is bounded.
      connection: { url: options.redisUrl, enableOfflineQueue: false },
      ...(options.prefix === undefined ? {} : { prefix: options.prefix }),
      defaultJobOptions: {
        attempts,
        backoff: { type: 'exponential', delay: backoffDelayMs },
        removeOnComplete: keepCompleted === 0 ? true : { count: keepCompleted },
        // Failed jobs are the dead letters: kept until an operator retries or removes them.
        removeOnFail: false,
      },
    });
    this.queue.on('error', (error) => {
      this.noteFailure(error);
    });
  }

  /**
   * Hands a change to the backup. Never throws, never waits: returns false when the queue is
   * closed. A full resync batch (`full: true`) replaces the older buffered changes and clears
   * `needsResync`.
   */
  enqueue(batch: BackupBatch): boolean {
    if (this.closed) {
      this.logger.warn({ raftIndex: batch.raftIndex }, 'Backup queue closed; change not queued');
      return false;
    }
    if (batch.full) {
      // It holds the whole state at its index: every older change still buffered, and every
      // change dropped so far, is superseded by it (and so is every change of an older
      // generation, which the writer would drop anyway).
      const generation = batch.generation ?? 0;
      this.buffer = this.buffer.filter((queued) => {
        const queuedGeneration = queued.generation ?? 0;
        return (
          queuedGeneration > generation ||
          (queuedGeneration === generation && queued.raftIndex > batch.raftIndex)
        );
      });
      this.dropped = 0;
      this.needsResync = false;
    }
    this.buffer.push(batch);
    this.trimBuffer();
    this.reportHealth();
    this.scheduleDrain();
    return true;
  }

  /** The producer's health (cheap; no Redis round trip). */
  health(): BackupQueueHealth {
    const buffered = this.buffer.length + this.inFlight.length;
    return {
      status: this.lastError !== null || this.needsResync ? 'degraded' : 'ok',
      buffered,
      dropped: this.dropped,
      needsResync: this.needsResync,
      lastError: this.lastError,
    };
  }

  /** Resolves once every buffered job has been handed to Redis (or the queue is closed). */
  async flushed(): Promise<void> {
    while (this.draining !== null) await this.draining;
  }

  /** The dead letters, newest first. */
  async deadLetters(start = 0, end = 99): Promise<DeadLetter[]> {
    const jobs = await this.queue.getFailed(start, end);
    return jobs.map((job) => ({
      jobId: String(job.id),
      raftIndex: job.data.raftIndex,
      generation: job.data.generation ?? 0,
      full: job.data.full === true,
      failedReason: job.failedReason,
      attemptsMade: job.attemptsMade,
      failedAt: job.finishedOn === undefined ? null : new Date(job.finishedOn),
    }));
  }

  /** How many dead letters the queue holds (one Redis round trip). */
  async deadLetterCount(): Promise<number> {
    const counts = await this.queue.getJobCounts('failed');
    return counts['failed'] ?? 0;
  }

  /** Stops accepting changes, waits for the hand-over in progress, closes the connection. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    if (this.draining !== null) await this.draining;
    const lost = this.buffer.length;
    if (lost > 0) {
      this.logger.warn({ lost }, 'Backup queue closed with changes not handed to Redis');
    }
    this.buffer = [];
    await this.queue.close();
  }

  private trimBuffer(): void {
    const excess = this.buffer.length + this.inFlight.length - this.bufferCapacity;
    if (excess <= 0) return;
    const removed = this.buffer.splice(0, Math.min(excess, this.buffer.length));
    if (removed.length === 0) return;
    this.dropped += removed.length;
    this.needsResync = true;
    this.logger.error(
      { dropped: removed.length, oldestRaftIndex: removed[0]?.raftIndex },
      'Backup buffer full: dropped the oldest changes; a full resync is needed',
    );
  }

  private scheduleDrain(): void {
    if (this.draining !== null || this.retryTimer !== null || this.closed) return;
    this.draining = this.drain().finally(() => {
      this.draining = null;
    });
  }

  private async drain(): Promise<void> {
    while (this.buffer.length > 0) {
      this.inFlight = this.buffer.splice(0, ADD_CHUNK);
      try {
        await this.addWithTimeout(this.inFlight);
        this.inFlight = [];
        this.currentRetryDelayMs = this.retryDelayMs;
        this.lastError = null;
        this.reportHealth();
      } catch (error) {
        // Back to the front, in order; retried after a growing delay.
        this.buffer = this.inFlight.concat(this.buffer);
        this.inFlight = [];
        this.trimBuffer();
        this.noteFailure(error);
        if (!this.closed) {
          const delay = this.currentRetryDelayMs;
          this.currentRetryDelayMs = Math.min(delay * 2, 30_000);
          this.retryTimer = setTimeout(() => {
            this.retryTimer = null;
            this.scheduleDrain();
          }, delay);
          this.retryTimer.unref();
        }
        return;
      }
    }
  }

  private async addWithTimeout(batches: readonly BackupBatch[]): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`Redis did not accept the jobs within ${this.addTimeoutMs} ms`)),
        this.addTimeoutMs,
      );
    });
    try {
      await Promise.race([
        this.queue.addBulk(
          batches.map((batch) => ({
            name: batch.full ? 'full-resync' : 'change',
            data: batch,
            opts: { jobId: jobIdOf(batch) },
          })),
        ),
        timeout,
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  private noteFailure(error: unknown): void {
    const message = error instanceof Error ? error.message : String(error);
    if (this.lastError === null) {
      this.logger.warn(
        { error: message, buffered: this.health().buffered },
        'Backup queue cannot reach Redis; buffering',
      );
    }
    this.lastError = message;
    this.reportHealth();
    this.scheduleProbe();
  }

  /**
   * With nothing to hand over, no drain would notice Redis coming back: ask it with the same
   * growing delay until it answers, so `status` turns `ok` (and the app can catch up) at once.
   */
  private scheduleProbe(): void {
    if (
      this.closed ||
      this.retryTimer !== null ||
      this.draining !== null ||
      this.buffer.length > 0 ||
      this.lastError === null
    ) {
      return;
    }
    const delay = this.currentRetryDelayMs;
    this.currentRetryDelayMs = Math.min(delay * 2, 30_000);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      void this.probe();
    }, delay);
    this.retryTimer.unref();
  }

  private async probe(): Promise<void> {
    if (this.closed || this.lastError === null) return;
    if (this.buffer.length > 0) {
      this.scheduleDrain();
      return;
    }
    let timer: NodeJS.Timeout | undefined;
    try {
      // Any cheap round trip will do (BullMQ 6 hides its raw client behind a backend).
      await Promise.race([
        this.queue.count(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`Redis did not answer within ${this.addTimeoutMs} ms`)),
            this.addTimeoutMs,
          );
        }),
      ]);
      this.lastError = null;
      this.currentRetryDelayMs = this.retryDelayMs;
      this.reportHealth();
    } catch (error) {
      this.noteFailure(error);
    } finally {
      clearTimeout(timer);
    }
  }

  private reportHealth(): void {
    const health = this.health();
    const reported = {
      status: health.status,
      needsResync: health.needsResync,
      reachable: health.lastError === null,
    };
    if (
      reported.status === this.lastReported.status &&
      reported.needsResync === this.lastReported.needsResync &&
      reported.reachable === this.lastReported.reachable
    ) {
      return;
    }
    this.lastReported = reported;
    if (health.status === 'ok') this.logger.info({}, 'Backup queue healthy again');
    this.onHealthChange?.(health);
  }
}
