import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { ByteReader } from '../codec/byte-reader';
import { ByteWriter } from '../codec/byte-writer';
import { CodecError } from '../codec/codec-error';
import { readSnapshotMeta, writeSnapshotMeta } from '../codec/entry-codec';
import { CompactedError, UnavailableError, invariant } from '../core/errors';
import { entrySize } from '../core/messages';
import { EMPTY_CONF_STATE, EMPTY_HARD_STATE } from '../core/types';
import type { ConfState, Entry, HardState, SnapshotMeta } from '../core/types';
import {
  TEMP_SUFFIX,
  decodeStateFile,
  encodeStateFile,
  readFileIfExists,
  writeFileAtomic,
} from './atomic-file';
import { GroupCommit } from './group-commit';
import type { LogStorage } from './log-storage';
import { SegmentedLog } from './segmented-log';
import type { LogRecoveryReport } from './segmented-log';
import { CorruptLogError, CorruptStateError, StorageClosedError } from './storage-errors';

/** Options of {@link FileLogStorage.open}; every field has a default. */
export interface FileLogStorageOptions {
  /** Roll to a new segment file at this size. Default 64 MiB. */
  readonly segmentBytes?: number;
  /** Bytes of recent entry data served from memory. Default 16 MiB. */
  readonly cacheBytes?: number;
  /** fsync before acknowledging. Default true; false only for tests that do not crash. */
  readonly fsync?: boolean;
  /**
   * Membership to bootstrap with when the directory has no snapshot metadata yet (a new node).
   * It is persisted at once, so later opens ignore this option: the disk is authoritative.
   */
  readonly conf?: ConfState;
  /**
   * A commit-only hard state change is written lazily: once the commit index advanced by this
   * many entries since the last write, and at close. Default 4096.
   */
  readonly commitPersistInterval?: number;
}

/** Defaults of {@link FileLogStorageOptions}. */
export const DEFAULT_FILE_LOG_STORAGE_OPTIONS = Object.freeze({
  segmentBytes: 64 * 1024 * 1024,
  cacheBytes: 16 * 1024 * 1024,
  fsync: true,
  conf: EMPTY_CONF_STATE,
  commitPersistInterval: 4096,
}) satisfies Required<FileLogStorageOptions>;

/** What {@link FileLogStorage.open} found. */
export interface FileLogRecoveryReport extends LogRecoveryReport {
  /** How the log was reconciled with the snapshot metadata. */
  readonly snapshotReconcile: 'none' | 'compacted' | 'discarded';
}

/** Directory layout. */
const LOG_DIRECTORY = 'log';
const HARD_STATE_FILE = 'hard-state';
const SNAPSHOT_META_FILE = 'snapshot-meta';
const HARD_STATE_MAGIC = 0x48514d44; // "DMQH"
const SNAPSHOT_META_MAGIC = 0x4d514d44; // "DMQM"
const STATE_FORMAT_VERSION = 1;

/**
 * The durable {@link LogStorage}: a {@link SegmentedLog} for entries, an atomically replaced
 * `hard-state` file (term, vote, commit) and a `snapshot-meta` file, in one directory:
 *
 *     <directory>/log/<first index>.seg   entries (see segmented-log.ts for the format)
 *     <directory>/hard-state              term, vote, commit
 *     <directory>/snapshot-meta           index, term and membership of the latest snapshot
 *
 * Durability (what `sync()` guarantees when it resolves):
 * - Term and vote: written (temp file, fsync, rename, fsync directory) *before* the entries
 *   of the same sync, so a term on disk is never older than an entry's term on disk.
 * - Entries: written and fdatasynced, shared by every concurrent caller (group commit).
 * - Commit: written lazily (with the next term/vote change, every `commitPersistInterval`
 *   entries, at close). It only speeds up restart: the commit index is re-learned from the
 *   leader, and a lagging value is safe. The value written never exceeds the last entry
 *   already fdatasynced, so on open `commit <= lastIndex` always holds on an intact disk.
 *
 * The snapshot bytes live in a separate {@link SnapshotStore}; this class only records the
 * metadata of the latest one and compacts the log behind it.
 */
export class FileLogStorage implements LogStorage {
  private hard: HardState;
  /** Numbers hard-state write requests (term/vote changes, lazy commit writes, close). */
  private hardSeq = 0;
  /** `hardSeq` of the latest term or vote change: `sync()` waits until it is durable. */
  private termVoteSeq = 0;
  private persistedCommit: number;
  private readonly hardStateCommit: GroupCommit;
  private snapshot: SnapshotMeta;
  private snapshotWrites: Promise<void> = Promise.resolve();
  private closed = false;

  private constructor(
    private readonly directory: string,
    private readonly log: SegmentedLog,
    private readonly options: Required<FileLogStorageOptions>,
    hardState: HardState,
    snapshot: SnapshotMeta,
    /** What recovery found: torn tails cut, files removed, how the snapshot was reconciled. */
    readonly recovery: FileLogRecoveryReport,
  ) {
    this.hard = hardState;
    this.persistedCommit = hardState.commit;
    this.snapshot = snapshot;
    this.hardStateCommit = new GroupCommit(() => this.writeHardState());
  }

  /**
   * Opens the storage in `directory` (created if missing), validating every log record.
   *
   * @throws {CorruptLogError} when a log record other than a torn tail is damaged, or the log
   *   does not line up with the snapshot metadata or the hard state.
   * @throws {CorruptStateError} when the hard state or snapshot metadata file is damaged.
   * @throws {UnsupportedVersionError} for files of a newer format.
   */
  static async open(
    directory: string,
    options: FileLogStorageOptions = {},
  ): Promise<FileLogStorage> {
    const resolved: Required<FileLogStorageOptions> = {
      ...DEFAULT_FILE_LOG_STORAGE_OPTIONS,
      ...options,
    };
    if (!(resolved.commitPersistInterval >= 1)) {
      throw new RangeError('commitPersistInterval must be at least 1');
    }
    await fsp.mkdir(directory, { recursive: true });
    // Debris of an atomic write interrupted by a crash: the target file is still the old one.
    for (const name of await fsp.readdir(directory)) {
      if (name.endsWith(TEMP_SUFFIX)) await fsp.rm(path.join(directory, name), { force: true });
    }

    const hardStateFile = path.join(directory, HARD_STATE_FILE);
    const hardBytes = await readFileIfExists(hardStateFile);
    const hardState =
      hardBytes === undefined ? EMPTY_HARD_STATE : decodeHardState(hardStateFile, hardBytes);

    const metaFile = path.join(directory, SNAPSHOT_META_FILE);
    const metaBytes = await readFileIfExists(metaFile);
    let snapshot: SnapshotMeta;
    if (metaBytes === undefined) {
      snapshot = { index: 0, term: 0, conf: resolved.conf };
      await writeFileAtomic(metaFile, encodeSnapshotMetaFile(snapshot), resolved.fsync);
    } else {
      snapshot = decodeSnapshotMetaFile(metaFile, metaBytes);
    }

    // The storage does not exist yet when the log opens; the hook reaches it through this.
    let storage: FileLogStorage | undefined;
    const { log, report } = await SegmentedLog.open(
      path.join(directory, LOG_DIRECTORY),
      {
        segmentBytes: resolved.segmentBytes,
        cacheBytes: resolved.cacheBytes,
        fsync: resolved.fsync,
      },
      { beforeWrite: () => storage?.termVoteDurable() ?? Promise.resolve() },
    );
    try {
      const snapshotReconcile = reconcile(log, snapshot);
      await log.sync();
      if (hardState.commit > log.lastIndex) {
        // The commit written never exceeds the fdatasynced log, and a torn tail only holds
        // unsynced records: acknowledged entries are missing.
        throw new CorruptLogError(
          path.join(directory, LOG_DIRECTORY),
          0,
          `the log ends at ${log.lastIndex} but commit ${hardState.commit} was persisted`,
        );
      }
      storage = new FileLogStorage(directory, log, resolved, hardState, snapshot, {
        ...report,
        snapshotReconcile,
      });
      return storage;
    } catch (error) {
      await log.close().catch(() => undefined);
      throw error;
    }
  }

  initialState(): { readonly hardState: HardState; readonly conf: ConfState } {
    return { hardState: this.hard, conf: this.snapshot.conf };
  }

  firstIndex(): number {
    return this.snapshot.index + 1;
  }

  lastIndex(): number {
    return this.log.lastIndex;
  }

  term(index: number): number {
    if (index < this.snapshot.index) throw new CompactedError(index);
    if (index === this.snapshot.index) return this.snapshot.term;
    if (index > this.log.lastIndex) throw new UnavailableError(index);
    return this.log.term(index);
  }

  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    if (lo <= this.snapshot.index) throw new CompactedError(lo);
    if (hi > this.log.lastIndex + 1) throw new UnavailableError(hi - 1);
    return this.log.entries(lo, hi, maxBytes, entrySize);
  }

  snapshotMeta(): SnapshotMeta {
    return this.snapshot;
  }

  append(entries: readonly Entry[]): void {
    this.checkOpen();
    const first = entries[0];
    if (first === undefined) return;
    // Entries already covered by the snapshot are dropped (a follower may receive them again).
    const skip = Math.max(0, this.snapshot.index + 1 - first.index);
    if (skip >= entries.length) return;
    const start = first.index + skip;
    invariant(
      start <= this.log.lastIndex + 1,
      () => `append at ${start} leaves a gap after ${this.log.lastIndex}`,
    );
    this.log.truncateAfter(start - 1);
    this.log.append(skip === 0 ? entries : entries.slice(skip));
  }

  setHardState(hardState: HardState): void {
    this.checkOpen();
    invariant(
      hardState.term >= this.hard.term,
      () => `hard state term went back from ${this.hard.term} to ${hardState.term}`,
    );
    if (hardState.term !== this.hard.term || hardState.vote !== this.hard.vote) {
      this.termVoteSeq = ++this.hardSeq;
    }
    this.hard = hardState;
  }

  async sync(): Promise<void> {
    this.checkOpen();
    // Term and vote first, even when there is no entry to write (a vote); log flushes also
    // wait for them (termVoteDurable), so an entry's term is never on disk ahead of the term.
    await this.termVoteDurable();
    await this.log.sync();
    if (this.hard.commit - this.persistedCommit >= this.options.commitPersistInterval) {
      // Lazily, in the background: a lagging commit is safe, a failure is sticky and surfaces
      // at the next sync().
      this.hardStateCommit.whenDurable(++this.hardSeq).catch(() => undefined);
    }
  }

  async applySnapshot(meta: SnapshotMeta): Promise<void> {
    this.checkOpen();
    // Serialised: each write must see the previous one's result.
    const previous = this.snapshotWrites;
    const next = previous.then(() => this.applySnapshotNow(meta));
    this.snapshotWrites = next.catch(() => undefined);
    await next;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.snapshotWrites;
      await this.log.sync();
      if (this.hard.commit !== this.persistedCommit && this.hardStateCommit.failed === undefined) {
        await this.hardStateCommit.whenDurable(++this.hardSeq);
      }
    } finally {
      await this.log.close();
    }
  }

  /**
   * Resolves once the latest term/vote change is durable. Every log flush waits for it before
   * writing (captured when the flush takes its operations), so no entry reaches a file ahead
   * of its term, whichever caller's sync() started the flush.
   */
  private termVoteDurable(): Promise<void> {
    return this.hardStateCommit.whenDurable(this.termVoteSeq);
  }

  private async applySnapshotNow(meta: SnapshotMeta): Promise<void> {
    if (meta.index <= this.snapshot.index) return;
    // The metadata is durable before any segment is deleted: recovery re-derives the same
    // decision from it (see reconcile) if we crash part-way.
    await writeFileAtomic(
      path.join(this.directory, SNAPSHOT_META_FILE),
      encodeSnapshotMetaFile(meta),
      this.options.fsync,
    );
    if (this.log.lastIndex >= meta.index && this.log.storedTerm(meta.index) === meta.term) {
      this.log.compact(meta.index);
    } else {
      this.log.reset(meta.index);
    }
    this.snapshot = meta;
    await this.log.sync();
  }

  /** One hard-state write: covers every term/vote change made before it started. */
  private async writeHardState(): Promise<number> {
    const seq = this.hardSeq;
    // Never claim a commit beyond what is durable in the log (or the snapshot).
    const commit = Math.min(
      this.hard.commit,
      Math.max(this.log.durableLastIndex, this.snapshot.index),
    );
    const state: HardState = { term: this.hard.term, vote: this.hard.vote, commit };
    await writeFileAtomic(
      path.join(this.directory, HARD_STATE_FILE),
      encodeHardState(state),
      this.options.fsync,
    );
    this.persistedCommit = Math.max(this.persistedCommit, commit);
    return seq;
  }

  private checkOpen(): void {
    if (this.closed) throw new StorageClosedError();
    const failure = this.hardStateCommit.failed;
    if (failure !== undefined) throw failure;
  }
}

/**
 * Lines the recovered log up with the snapshot at `(I, T)`, with the same rule as
 * `applySnapshot`, so a crash at any point of it converges:
 * - no segments: the log is empty after I;
 * - the first segment starts at I + 1: nothing to do (a segment boundary fell on I);
 * - it starts above I + 1: entries are missing, refuse;
 * - it starts at or below I: keep the suffix after I if the log holds I with term T,
 *   otherwise discard everything (a mismatching snapshot replaced the log; the deletion,
 *   newest segment first, may have been interrupted, leaving a prefix of the old log).
 */
function reconcile(
  log: SegmentedLog,
  snapshot: SnapshotMeta,
): FileLogRecoveryReport['snapshotReconcile'] {
  const first = log.firstStoredIndex;
  const next = snapshot.index + 1;
  if (first === undefined) {
    log.setStart(next);
    return 'none';
  }
  if (first === next) return 'none';
  if (first > next) {
    throw new CorruptLogError(
      log.directory,
      0,
      `the log starts at ${first} but the snapshot ends at ${snapshot.index}`,
    );
  }
  if (log.lastIndex >= snapshot.index && log.storedTerm(snapshot.index) === snapshot.term) {
    log.compact(snapshot.index);
    return 'compacted';
  }
  log.reset(snapshot.index);
  return 'discarded';
}

function encodeHardState(state: HardState): Uint8Array {
  const writer = new ByteWriter(32);
  writer.varint(state.term);
  writer.varint(state.vote);
  writer.varint(state.commit);
  return encodeStateFile(HARD_STATE_MAGIC, STATE_FORMAT_VERSION, writer.finish());
}

function decodeHardState(file: string, bytes: Uint8Array): HardState {
  const { payload } = decodeStateFile(file, bytes, HARD_STATE_MAGIC, STATE_FORMAT_VERSION);
  return decodePayload(file, payload, (reader) => ({
    term: reader.varint(),
    vote: reader.varint(),
    commit: reader.varint(),
  }));
}

function encodeSnapshotMetaFile(meta: SnapshotMeta): Uint8Array {
  const writer = new ByteWriter(64);
  writeSnapshotMeta(writer, meta);
  return encodeStateFile(SNAPSHOT_META_MAGIC, STATE_FORMAT_VERSION, writer.finish());
}

function decodeSnapshotMetaFile(file: string, bytes: Uint8Array): SnapshotMeta {
  const { payload } = decodeStateFile(file, bytes, SNAPSHOT_META_MAGIC, STATE_FORMAT_VERSION);
  return decodePayload(file, payload, readSnapshotMeta);
}

function decodePayload<T>(file: string, payload: Uint8Array, read: (reader: ByteReader) => T): T {
  try {
    const reader = new ByteReader(payload);
    const value = read(reader);
    reader.expectEnd();
    return value;
  } catch (error) {
    if (error instanceof CodecError) throw new CorruptStateError(file, error.message);
    throw error;
  }
}
