import type { SnapshotMeta } from '../core/types';

/** Writes one snapshot image, chunk by chunk. Nothing is visible until {@link commit}. */
export interface SnapshotWriter {
  /** Appends the next chunk of the image. */
  write(chunk: Uint8Array): Promise<void>;
  /** Makes the image durable and the store's latest snapshot (atomically). */
  commit(): Promise<void>;
  /** Discards what was written. */
  abort(): Promise<void>;
}

/**
 * Where snapshot images live (their metadata is also recorded in the LogStorage by
 * `applySnapshot`). Images are streamed, never held as one giant string: a state machine
 * writes its snapshot as chunks; a follower assembles a leader's InstallSnapshot chunks here.
 */
export interface SnapshotStore {
  /** Starts writing the image of snapshot `meta`. */
  create(meta: SnapshotMeta): Promise<SnapshotWriter>;
  /** Metadata of the latest committed snapshot, or undefined when there is none. */
  latest(): Promise<SnapshotMeta | undefined>;
  /**
   * Streams the image of the committed snapshot at `index` (the latest, or one still retained).
   * @throws when the store has no such snapshot.
   */
  read(index: number): AsyncIterable<Uint8Array>;
}
