import { InvariantViolation } from '../core/errors';
import type { SnapshotMeta } from '../core/types';
import type { SnapshotStore, SnapshotWriter } from './snapshot-store';

/** An in-memory {@link SnapshotStore} that keeps the latest `retain` snapshots (default 2). */
export class MemorySnapshotStore implements SnapshotStore {
  private readonly images = new Map<number, { meta: SnapshotMeta; chunks: Uint8Array[] }>();
  private latestMeta: SnapshotMeta | undefined;

  constructor(
    private readonly retain = 2,
    /** Bytes per chunk when reading back. */
    private readonly chunkBytes = 64 * 1024,
  ) {}

  create(meta: SnapshotMeta): Promise<SnapshotWriter> {
    const chunks: Uint8Array[] = [];
    let open = true;
    const writer: SnapshotWriter = {
      write: (chunk) => {
        if (!open) return Promise.reject(new InvariantViolation('snapshot writer is closed'));
        chunks.push(chunk.slice());
        return Promise.resolve();
      },
      commit: () => {
        if (!open) return Promise.reject(new InvariantViolation('snapshot writer is closed'));
        open = false;
        this.images.set(meta.index, { meta, chunks });
        if (this.latestMeta === undefined || meta.index >= this.latestMeta.index)
          this.latestMeta = meta;
        const indexes = [...this.images.keys()].sort((a, b) => b - a);
        for (const old of indexes.slice(this.retain)) this.images.delete(old);
        return Promise.resolve();
      },
      abort: () => {
        open = false;
        return Promise.resolve();
      },
    };
    return Promise.resolve(writer);
  }

  latest(): Promise<SnapshotMeta | undefined> {
    return Promise.resolve(this.latestMeta);
  }

  async *read(index: number): AsyncIterable<Uint8Array> {
    const image = this.images.get(index);
    if (image === undefined) throw new InvariantViolation(`no snapshot at index ${index}`);
    for (const chunk of image.chunks) {
      for (let at = 0; at < chunk.length; at += this.chunkBytes) {
        yield chunk.subarray(at, at + this.chunkBytes);
      }
      if (chunk.length === 0) yield chunk;
    }
  }
}
