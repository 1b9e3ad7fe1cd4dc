import type { ConfState, Entry, HardState, SnapshotMeta } from '../core/types';

/**
 * The durable Raft log, as the core and the driver see it (etcd-io/raft's `Storage`, plus
 * the write side the driver uses).
 *
 * Read methods are synchronous: the core calls them while stepping. Implementations keep
 * what they need in memory (or read a local file synchronously); they never block on the
 * network.
 *
 * Write methods follow the order of a `Ready`: append entries and set the hard state, then
 * `sync()`, and only after `sync()` resolves may the driver send messages that depend on
 * them (votes, append acknowledgements). Implementations coalesce concurrent `sync()` calls
 * into one fsync (group commit).
 *
 * Invariants: `firstIndex() === snapshotMeta().index + 1`; `lastIndex() >= snapshotMeta().index`;
 * `term(snapshotMeta().index)` is answered from the snapshot metadata.
 */
export interface LogStorage {
  /**
   * Hard state and membership as recovered at open.
   *
   * `conf` is the membership as of `snapshotMeta().index`: the snapshot's `conf`, or the
   * bootstrap membership when there is no snapshot. The core replays the `conf-change`
   * entries of the log on top of it (thesis §4.1: the latest configuration in the log, committed
   * or not, is in force); each such entry carries the whole resulting configuration (see
   * `core/conf-change.ts`). (Clarified by the core's author; no behaviour change.)
   */
  initialState(): { readonly hardState: HardState; readonly conf: ConfState };
  /** Index of the first entry still in the log (snapshot index + 1). */
  firstIndex(): number;
  /** Index of the last entry in the log (the snapshot index when the log is empty). */
  lastIndex(): number;
  /**
   * Term of the entry at `index`, for `snapshotMeta().index <= index <= lastIndex()`.
   * @throws {CompactedError} below that range; {@link UnavailableError} above it.
   */
  term(index: number): number;
  /**
   * Entries in `[lo, hi)`, stopping early once `maxBytes` of entry data is exceeded, but
   * always returning at least one entry when `lo < hi`.
   * @throws {CompactedError} when `lo < firstIndex()`.
   */
  entries(lo: number, hi: number, maxBytes: number): Entry[];
  /** Metadata of the latest snapshot (EMPTY_SNAPSHOT_META when there is none). */
  snapshotMeta(): SnapshotMeta;

  /**
   * Appends entries. When `entries[0].index <= lastIndex()` the log is first truncated to
   * `entries[0].index - 1` (a follower overwriting a conflicting suffix; never below the
   * commit index). Not durable until `sync()` resolves.
   */
  append(entries: readonly Entry[]): void;
  /** Records the hard state. Not durable until `sync()` resolves. */
  setHardState(hardState: HardState): void;
  /** Makes every earlier append and hard state durable (fsync). Concurrent calls share one fsync. */
  sync(): Promise<void>;
  /**
   * Records that a snapshot at `meta` is durable in the SnapshotStore, and discards log
   * entries up to `meta.index` (log compaction). If the log holds an entry at `meta.index`
   * with the same term, later entries are kept; otherwise the whole log is discarded.
   */
  applySnapshot(meta: SnapshotMeta): Promise<void>;
  /** Releases files and handles. */
  close(): Promise<void>;
}
