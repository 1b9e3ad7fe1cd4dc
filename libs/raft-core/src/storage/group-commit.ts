import { StorageIoError } from './storage-errors';

interface Waiter {
  readonly target: number;
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
}

/**
 * Group commit: many callers wait for durability, one flush at a time serves them all.
 *
 * Writers number their changes with an increasing sequence; `whenDurable(seq)` resolves once a
 * flush that started after change `seq` completed. While a flush is in flight, new requests
 * queue and the *next* flush covers all of them with one write and one fsync, so throughput
 * grows with the number of concurrent callers instead of being capped at 1 / fsync latency.
 *
 * A failed flush is sticky: every pending and later request rejects with the same error,
 * because after a failed fsync nothing can be assumed about what reached the disk.
 */
export class GroupCommit {
  private durable = 0;
  private running = false;
  private waiters: Waiter[] = [];
  private failure: StorageIoError | undefined;

  /**
   * @param flush writes everything changed so far and returns the sequence number it covered
   *   (the caller's change counter read *before* it started writing).
   */
  constructor(private readonly flush: () => Promise<number>) {}

  /** The highest sequence number known durable. */
  get durableSeq(): number {
    return this.durable;
  }

  /** The sticky failure, once a flush failed. */
  get failed(): StorageIoError | undefined {
    return this.failure;
  }

  /** Resolves once change `target` (and every earlier one) is durable. */
  whenDurable(target: number): Promise<void> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    if (target <= this.durable) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.waiters.push({ target, resolve, reject });
      if (!this.running) {
        this.running = true;
        void this.loop();
      }
    });
  }

  private async loop(): Promise<void> {
    try {
      while (this.waiters.some((waiter) => waiter.target > this.durable)) {
        const covered = await this.flush();
        this.durable = Math.max(this.durable, covered);
        const still: Waiter[] = [];
        for (const waiter of this.waiters) {
          if (waiter.target <= this.durable) waiter.resolve();
          else still.push(waiter);
        }
        this.waiters = still;
      }
    } catch (error) {
      this.failure =
        error instanceof StorageIoError ? error : new StorageIoError('flush failed', error);
      const waiters = this.waiters;
      this.waiters = [];
      for (const waiter of waiters) waiter.reject(this.failure);
    } finally {
      this.running = false;
    }
  }
}
