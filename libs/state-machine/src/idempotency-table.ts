import { IDEMPOTENCY_KEY_TTL_MS } from '@dmq/api-contracts';

/**
 * The replicated table of idempotency keys (contract: "a retry with the same key returns the
 * original outcome … even across leader changes").
 *
 * - An entry maps a key to the request hash, the stored outcome (JSON text of the `ok`/`error`
 *   answer, so it is immutable and compact) and the timestamp of the command that stored it.
 * - Expiry is deterministic: before each command, entries are dropped from the oldest
 *   (insertion order = log order) while `entry.timestampMs + ttlMs <= command.timestampMs`.
 *   Timestamps are the proposing leaders' clocks; if a later leader's clock is behind, entries
 *   behind a younger one simply live longer: never shorter than `ttlMs` by the log's time.
 * - Bounded: beyond `maxEntries` the oldest entry is evicted (so under more than
 *   `maxEntries` keyed writes per `ttlMs` a key may be honoured for less than `ttlMs`).
 * - Insertion order is part of the state: snapshots keep it.
 */
export interface IdempotencyOptions {
  /** How long a key is honoured, by command time. Default `IDEMPOTENCY_KEY_TTL_MS` (15 min); at least 10 min. */
  readonly ttlMs: number;
  /** Most keys kept. Default 10,000. */
  readonly maxEntries: number;
}

export const DEFAULT_IDEMPOTENCY_OPTIONS: IdempotencyOptions = Object.freeze({
  ttlMs: IDEMPOTENCY_KEY_TTL_MS,
  maxEntries: 10_000,
});

export interface IdempotencyEntry {
  readonly requestHash: string;
  readonly outcomeJson: string;
  readonly timestampMs: number;
}

export type IdempotencyLookup =
  | { readonly kind: 'miss' }
  | { readonly kind: 'hit'; readonly outcomeJson: string }
  | { readonly kind: 'reused' };

export class IdempotencyTable {
  private readonly entries = new Map<string, IdempotencyEntry>();

  constructor(readonly options: IdempotencyOptions) {}

  get size(): number {
    return this.entries.size;
  }

  /** Drops the entries that expired by `nowMs` (see the class comment). */
  expire(nowMs: number): void {
    for (const [key, entry] of this.entries) {
      if (entry.timestampMs + this.options.ttlMs > nowMs) return;
      this.entries.delete(key);
    }
  }

  lookup(key: string, requestHash: string): IdempotencyLookup {
    const entry = this.entries.get(key);
    if (entry === undefined) return { kind: 'miss' };
    return entry.requestHash === requestHash
      ? { kind: 'hit', outcomeJson: entry.outcomeJson }
      : { kind: 'reused' };
  }

  store(key: string, entry: IdempotencyEntry): void {
    this.entries.delete(key);
    this.entries.set(key, entry);
    while (this.entries.size > this.options.maxEntries) {
      const oldest = this.entries.keys().next();
      if (oldest.done === true) break;
      this.entries.delete(oldest.value);
    }
  }

  /** Entries in insertion order (oldest first). */
  list(): IterableIterator<[string, IdempotencyEntry]> {
    return this.entries.entries();
  }
}
