import type { LogStorage } from '../storage/log-storage';
import { CompactedError, InvariantViolation, UnavailableError, invariant } from './errors';
import { entrySize } from './messages';
import type { Entry, SnapshotMeta } from './types';

/**
 * Entries (and possibly a snapshot) the core has accepted but the driver has not yet
 * persisted (etcd's `unstable`). Invariant: when `snapshot` is set, `offset === snapshot.index + 1`;
 * `entries[i].index === offset + i`.
 */
class Unstable {
  snapshot: SnapshotMeta | undefined = undefined;
  entries: Entry[] = [];
  constructor(public offset: number) {}

  lastIndex(): number | undefined {
    if (this.entries.length > 0) return this.offset + this.entries.length - 1;
    return this.snapshot?.index;
  }

  term(index: number): number | undefined {
    if (index < this.offset) {
      return this.snapshot !== undefined && this.snapshot.index === index
        ? this.snapshot.term
        : undefined;
    }
    return this.entries[index - this.offset]?.term;
  }

  /** Appends, first truncating any suffix that `entries` replaces. */
  truncateAndAppend(entries: readonly Entry[]): void {
    const first = entries[0];
    if (first === undefined) return;
    const after = first.index;
    if (after === this.offset + this.entries.length) {
      for (const entry of entries) this.entries.push(entry);
    } else if (after <= this.offset) {
      // Replaces everything unstable (and, once persisted, a suffix of storage).
      this.offset = after;
      this.entries = entries.slice();
    } else {
      this.entries = this.entries.slice(0, after - this.offset).concat(entries);
    }
  }

  stableTo(index: number, term: number): void {
    // Only if the entry is still the one that was persisted (it may have been replaced).
    if (this.term(index) !== term || index < this.offset) return;
    this.entries = this.entries.slice(index + 1 - this.offset);
    this.offset = index + 1;
  }

  restore(snapshot: SnapshotMeta): void {
    this.offset = snapshot.index + 1;
    this.entries = [];
    this.snapshot = snapshot;
  }
}

/**
 * The log as the core sees it: durable entries read through {@link LogStorage} plus the
 * unstable tail not yet persisted. Invariants (§3.5, etcd):
 * `applied <= committed <= lastIndex()`; `firstIndex() - 1 <= committed`; committed entries
 * are never truncated (Log Matching + Leader Completeness make that impossible).
 */
export class RaftLog {
  private readonly unstable: Unstable;
  /** Highest index known committed (§3.5). */
  committed: number;
  /** Highest index handed to the application to apply. */
  applied: number;

  constructor(readonly storage: LogStorage) {
    const snapshot = storage.snapshotMeta();
    this.unstable = new Unstable(storage.lastIndex() + 1);
    this.committed = snapshot.index;
    this.applied = snapshot.index;
  }

  firstIndex(): number {
    const snapshot = this.unstable.snapshot;
    return snapshot !== undefined ? snapshot.index + 1 : this.storage.firstIndex();
  }

  lastIndex(): number {
    return this.unstable.lastIndex() ?? this.storage.lastIndex();
  }

  /** Term of the entry at `index`. @throws CompactedError / UnavailableError outside the log. */
  term(index: number): number {
    const unstableTerm = this.unstable.term(index);
    if (unstableTerm !== undefined) return unstableTerm;
    if (index > this.lastIndex()) throw new UnavailableError(index);
    const dummy = this.firstIndex() - 1;
    if (index < dummy) throw new CompactedError(index);
    return this.storage.term(index);
  }

  /** Like {@link term}, but 0 outside the log. */
  termOrZero(index: number): number {
    try {
      return this.term(index);
    } catch (error) {
      if (error instanceof CompactedError || error instanceof UnavailableError) return 0;
      throw error;
    }
  }

  lastTerm(): number {
    return this.term(this.lastIndex());
  }

  matchTerm(index: number, term: number): boolean {
    return this.termOrZero(index) === term && (term !== 0 || index === 0);
  }

  /** §3.6.1: is a log ending at (lastIndex, lastTerm) at least as up-to-date as ours? */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const ourTerm = this.lastTerm();
    return lastTerm > ourTerm || (lastTerm === ourTerm && lastIndex >= this.lastIndex());
  }

  /**
   * Index of the first entry of `entries` that is not in our log with the same term, or 0
   * when all are (§3.5: "if an existing entry conflicts with a new one, delete it and all
   * that follow").
   */
  findConflict(entries: readonly Entry[]): number {
    for (const entry of entries) {
      if (!this.matchTerm(entry.index, entry.term)) return entry.index;
    }
    return 0;
  }

  /**
   * The largest index <= `index` whose term is <= `term`, with that term (0 when it is below
   * the log). Fast back-off: one probe per term instead of one per entry.
   */
  findConflictByTerm(index: number, term: number): { index: number; term: number } {
    let i = Math.min(index, this.lastIndex());
    for (; i > 0; i--) {
      const t = this.termOrZero(i);
      if (t === 0) return { index: i, term: 0 };
      if (t <= term) return { index: i, term: t };
    }
    return { index: 0, term: 0 };
  }

  /** Appends to the unstable tail (truncating a conflicting suffix). Returns the last index. */
  append(entries: readonly Entry[]): number {
    const first = entries[0];
    if (first === undefined) return this.lastIndex();
    invariant(
      first.index - 1 >= this.committed,
      () => `append at ${first.index} would truncate committed index ${this.committed}`,
    );
    invariant(
      first.index <= this.lastIndex() + 1,
      () => `append at ${first.index} leaves a gap after ${this.lastIndex()}`,
    );
    this.unstable.truncateAndAppend(entries);
    return this.lastIndex();
  }

  /** Entries in [lo, hi) up to about `maxBytes` (at least one). @throws CompactedError. */
  slice(lo: number, hi: number, maxBytes: number): Entry[] {
    if (lo >= hi) return [];
    if (lo < this.firstIndex()) throw new CompactedError(lo);
    invariant(
      hi <= this.lastIndex() + 1,
      () => `slice [${lo}, ${hi}) beyond last index ${this.lastIndex()}`,
    );
    let result: Entry[] = [];
    const offset = this.unstable.offset;
    if (lo < offset) {
      result = this.storage.entries(lo, Math.min(hi, offset), maxBytes);
      if (result.length < Math.min(hi, offset) - lo) return result; // size limit reached
    }
    if (hi > offset) {
      let bytes = 0;
      for (const entry of result) bytes += entrySize(entry);
      const unstable = this.unstable.entries;
      for (let i = Math.max(lo, offset); i < hi; i++) {
        const entry = unstable[i - offset];
        if (entry === undefined) throw new InvariantViolation(`unstable entry ${i} missing`);
        bytes += entrySize(entry);
        if (bytes > maxBytes && result.length > 0) break;
        result.push(entry);
      }
    }
    return result;
  }

  unstableEntries(): Entry[] {
    return this.unstable.entries.slice();
  }

  unstableSnapshot(): SnapshotMeta | undefined {
    return this.unstable.snapshot;
  }

  hasUnstableEntries(): boolean {
    return this.unstable.entries.length > 0;
  }

  /**
   * Index up to which entries are already durable: the driver persisted them and they are
   * not being replaced by the unstable tail.
   */
  stableLastIndex(): number {
    if (this.unstable.snapshot !== undefined) return this.storage.snapshotMeta().index;
    return Math.min(this.storage.lastIndex(), this.unstable.offset - 1);
  }

  hasNextCommittedEntries(): boolean {
    return this.unstable.snapshot === undefined && this.committed > this.applied;
  }

  /** Committed entries not yet handed out for applying, up to about `maxBytes`. */
  nextCommittedEntries(maxBytes: number): Entry[] {
    if (!this.hasNextCommittedEntries()) return [];
    return this.slice(this.applied + 1, this.committed + 1, maxBytes);
  }

  commitTo(index: number): void {
    if (index <= this.committed) return;
    invariant(
      index <= this.lastIndex(),
      () => `commit ${index} is beyond last index ${this.lastIndex()}`,
    );
    this.committed = index;
  }

  /** §3.6.2: commit by counting replicas only an entry of the current term. */
  maybeCommit(index: number, term: number): boolean {
    if (index > this.committed && this.termOrZero(index) === term) {
      this.commitTo(index);
      return true;
    }
    return false;
  }

  appliedTo(index: number): void {
    invariant(
      index <= this.committed && index >= this.applied,
      () => `applied ${index} outside [${this.applied}, ${this.committed}]`,
    );
    this.applied = index;
  }

  stableTo(index: number, term: number): void {
    this.unstable.stableTo(index, term);
  }

  stableSnapTo(index: number): void {
    if (this.unstable.snapshot?.index === index) this.unstable.snapshot = undefined;
  }

  /** Replaces the whole log by a snapshot (follower falling too far behind, §5.1). */
  restore(snapshot: SnapshotMeta): void {
    this.committed = snapshot.index;
    this.unstable.restore(snapshot);
  }
}
