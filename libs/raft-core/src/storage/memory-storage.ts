import { CompactedError, InvariantViolation, UnavailableError, invariant } from '../core/errors';
import { entrySize } from '../core/messages';
import { EMPTY_CONF_STATE, EMPTY_HARD_STATE, EMPTY_SNAPSHOT_META } from '../core/types';
import type { ConfState, Entry, HardState, SnapshotMeta } from '../core/types';
import type { LogStorage } from './log-storage';

/** Initial contents of a {@link MemoryStorage}. */
export interface MemoryStorageOptions {
  /** Membership to bootstrap with when there is no snapshot (e.g. the initial voters). */
  readonly conf?: ConfState;
  readonly hardState?: HardState;
  readonly snapshot?: SnapshotMeta;
  readonly entries?: readonly Entry[];
}

/**
 * The reference {@link LogStorage}: everything in memory, `sync()` is immediate (etcd's
 * MemoryStorage). Used by tests, the simulation (wrapped by a crash-simulating disk) and the
 * benchmark. `entries[0]` is a dummy standing for the snapshot's last entry, so
 * `term(snapshot.index)` needs no special case.
 */
export class MemoryStorage implements LogStorage {
  private hard: HardState;
  private snapshot: SnapshotMeta;
  private baseConf: ConfState;
  /** entries[i].index === snapshot.index + i; entries[0] is the dummy. */
  private log: Entry[];
  private closed = false;

  constructor(options: MemoryStorageOptions = {}) {
    this.hard = options.hardState ?? EMPTY_HARD_STATE;
    this.snapshot = options.snapshot ?? EMPTY_SNAPSHOT_META;
    this.baseConf = options.snapshot?.conf ?? options.conf ?? EMPTY_CONF_STATE;
    this.log = [dummy(this.snapshot)];
    if (options.entries !== undefined) this.append(options.entries);
  }

  initialState(): { readonly hardState: HardState; readonly conf: ConfState } {
    return { hardState: this.hard, conf: this.baseConf };
  }

  firstIndex(): number {
    return this.snapshot.index + 1;
  }

  lastIndex(): number {
    return this.snapshot.index + this.log.length - 1;
  }

  term(index: number): number {
    const offset = this.snapshot.index;
    if (index < offset) throw new CompactedError(index);
    const entry = this.log[index - offset];
    if (entry === undefined) throw new UnavailableError(index);
    return entry.term;
  }

  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    const offset = this.snapshot.index;
    if (lo <= offset) throw new CompactedError(lo);
    if (hi > this.lastIndex() + 1) throw new UnavailableError(hi - 1);
    const result: Entry[] = [];
    let bytes = 0;
    for (let index = lo; index < hi; index++) {
      const entry = this.log[index - offset];
      if (entry === undefined) throw new InvariantViolation(`memory storage lost entry ${index}`);
      bytes += entrySize(entry);
      if (bytes > maxBytes && result.length > 0) break;
      result.push(entry);
    }
    return result;
  }

  snapshotMeta(): SnapshotMeta {
    return this.snapshot;
  }

  append(entries: readonly Entry[]): void {
    this.checkOpen();
    const first = entries[0];
    if (first === undefined) return;
    const offset = this.snapshot.index;
    // Entries already covered by the snapshot are dropped (a follower may receive them again).
    const skip = Math.max(0, offset + 1 - first.index);
    if (skip >= entries.length) return;
    const start = first.index + skip;
    invariant(
      start <= this.lastIndex() + 1,
      () => `append at ${start} leaves a gap after ${this.lastIndex()}`,
    );
    if (start <= this.lastIndex()) this.log.length = start - offset;
    for (let i = skip; i < entries.length; i++) {
      const entry = entries[i];
      if (entry !== undefined) this.log.push(entry);
    }
  }

  setHardState(hardState: HardState): void {
    this.checkOpen();
    this.hard = hardState;
  }

  sync(): Promise<void> {
    return Promise.resolve();
  }

  applySnapshot(meta: SnapshotMeta): Promise<void> {
    this.applySnapshotSync(meta);
    return Promise.resolve();
  }

  /** Synchronous {@link applySnapshot}, for synchronous harnesses (the simulation). */
  applySnapshotSync(meta: SnapshotMeta): void {
    this.checkOpen();
    if (meta.index <= this.snapshot.index) return;
    const offset = this.snapshot.index;
    const kept = this.log[meta.index - offset];
    if (kept !== undefined && kept.term === meta.term) {
      this.log = [dummy(meta), ...this.log.slice(meta.index - offset + 1)];
    } else {
      this.log = [dummy(meta)];
    }
    this.snapshot = meta;
    this.baseConf = meta.conf;
  }

  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }

  private checkOpen(): void {
    invariant(!this.closed, 'memory storage is closed');
  }
}

function dummy(meta: SnapshotMeta): Entry {
  return { index: meta.index, term: meta.term, kind: 'normal', data: new Uint8Array(0) };
}
