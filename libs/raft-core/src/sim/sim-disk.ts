import type { Prng } from '../core/prng';
import type { ConfState, Entry, HardState, SnapshotMeta } from '../core/types';
import type { LogStorage } from '../storage/log-storage';
import { MemoryStorage } from '../storage/memory-storage';

type DiskOp =
  | { readonly kind: 'append'; readonly entries: readonly Entry[] }
  | { readonly kind: 'hard'; readonly hardState: HardState };

/**
 * A simulated disk: a {@link LogStorage} whose writes are visible at once (as in a page cache)
 * but durable only after `sync()`. {@link crash} models a power loss: every write since the
 * last completed sync is lost, except a random prefix of them — and the last write kept may be
 * torn (only a prefix of its entries reached the platter). Snapshots are installed atomically
 * and durably (the file storage writes them with an atomic rename and fsync).
 */
export class SimDisk implements LogStorage {
  private durable: MemoryStorage;
  private current: MemoryStorage;
  private pending: DiskOp[] = [];

  constructor(
    bootstrap: ConfState,
    /** Told about every change of the visible log (the Log Matching checker listens). */
    private readonly onChange: (
      event: { kind: 'append'; entries: readonly Entry[] } | { kind: 'reset' },
    ) => void,
  ) {
    this.durable = new MemoryStorage({ conf: bootstrap });
    this.current = new MemoryStorage({ conf: bootstrap });
  }

  initialState(): { readonly hardState: HardState; readonly conf: ConfState } {
    return this.current.initialState();
  }
  firstIndex(): number {
    return this.current.firstIndex();
  }
  lastIndex(): number {
    return this.current.lastIndex();
  }
  term(index: number): number {
    return this.current.term(index);
  }
  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    return this.current.entries(lo, hi, maxBytes);
  }
  snapshotMeta(): SnapshotMeta {
    return this.current.snapshotMeta();
  }

  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    this.current.append(entries);
    this.pending.push({ kind: 'append', entries: entries.slice() });
    this.onChange({ kind: 'append', entries });
  }

  setHardState(hardState: HardState): void {
    this.current.setHardState(hardState);
    this.pending.push({ kind: 'hard', hardState });
  }

  sync(): Promise<void> {
    this.syncNow();
    return Promise.resolve();
  }

  /** Completes an fsync: every earlier write becomes durable. */
  syncNow(): void {
    for (const op of this.pending) this.applyOp(this.durable, op);
    this.pending = [];
  }

  applySnapshot(meta: SnapshotMeta): Promise<void> {
    this.applySnapshotSync(meta);
    return Promise.resolve();
  }

  applySnapshotSync(meta: SnapshotMeta): void {
    this.syncNow();
    this.durable.applySnapshotSync(meta);
    this.current.applySnapshotSync(meta);
    this.onChange({ kind: 'reset' });
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  /** Whether writes are waiting for a sync. */
  hasUnsynced(): boolean {
    return this.pending.length > 0;
  }

  /**
   * Power loss: keeps a random prefix of the unsynced writes, possibly tearing the last kept
   * append, and discards the rest. Returns how many writes were lost (fully or partly).
   */
  crash(prng: Prng): number {
    const keep = prng.nextInt(this.pending.length + 1);
    for (let i = 0; i < keep; i++) {
      const op = this.pending[i];
      if (op !== undefined) this.applyOp(this.durable, op);
    }
    const torn = this.pending[keep];
    if (torn?.kind === 'append' && prng.chance(0.5)) {
      const prefix = torn.entries.slice(0, prng.nextInt(torn.entries.length));
      if (prefix.length > 0) this.durable.append(prefix);
    }
    const lost = this.pending.length - keep;
    this.pending = [];
    this.current = cloneStorage(this.durable);
    this.onChange({ kind: 'reset' });
    return lost;
  }

  private applyOp(storage: MemoryStorage, op: DiskOp): void {
    if (op.kind === 'append') storage.append(op.entries);
    else storage.setHardState(op.hardState);
  }
}

function cloneStorage(source: MemoryStorage): MemoryStorage {
  const snapshot = source.snapshotMeta();
  const { hardState, conf } = source.initialState();
  const entries =
    source.lastIndex() >= source.firstIndex()
      ? source.entries(source.firstIndex(), source.lastIndex() + 1, Infinity)
      : [];
  return new MemoryStorage(
    snapshot.index > 0 ? { hardState, snapshot, entries } : { hardState, conf, entries },
  );
}
