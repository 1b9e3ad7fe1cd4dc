import * as fs from 'node:fs';
import { promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import * as path from 'node:path';
import { ByteReader } from '../codec/byte-reader';
import { ByteWriter } from '../codec/byte-writer';
import { writeEntry } from '../codec/entry-codec';
import { InvariantViolation } from '../core/errors';
import type { Entry, EntryKind } from '../core/types';
import { fsyncDirectory, fsyncDirectorySync, isNotFound } from './atomic-file';
import { crc32c } from './crc32c';
import { GroupCommit } from './group-commit';
import { CorruptLogError, StorageClosedError, UnsupportedVersionError } from './storage-errors';

/*
 * On-disk format (version 1), little-endian:
 *
 *   segment file "<first index, 20 digits>.seg"
 *     header  magic "DMQL" (4) | format version (1) | 0 (3) | first index (8) | 0 (4) | CRC-32C of the previous 20 bytes (4)
 *     record* length of payload (4) | CRC-32C of length ++ type ++ payload (4) | type (1) | payload
 *
 *   record type 1 = entry; payload = the codec's entry encoding (varint index, varint term,
 *   kind byte, varint length + data), so an entry is the same bytes on disk and on the wire.
 *
 * Durability rules the recovery relies on:
 *   - a flush writes, then fdatasyncs, before any sync() resolves;
 *   - before the first write to a new segment, the previous one is fdatasynced, so only the
 *     *last* segment can end in a torn record;
 *   - a suffix truncation (ftruncate) is fdatasynced before anything is written after it, and
 *     an unlink is followed by a directory fsync before anything else, so stale records can
 *     never reappear behind new ones.
 */

const SEGMENT_MAGIC = 0x4c514d44; // "DMQL" read as a little-endian u32
/** Highest segment format version this build reads, and the one it writes. */
export const SEGMENT_FORMAT_VERSION = 1;
/** Bytes of the segment header. */
export const SEGMENT_HEADER_BYTES = 24;
/** Bytes of a record's frame before its payload: length, CRC, type. */
export const RECORD_HEADER_BYTES = 9;
const RECORD_TYPE_ENTRY = 1;
/** Sanity bound on one record: a larger length field is garbage, not a record. */
const MAX_RECORD_BYTES = 512 * 1024 * 1024;
/** Largest block read at once when serving old entries from disk. */
const READ_BLOCK_BYTES = 4 * 1024 * 1024;
/** Read descriptors kept open for older segments (LRU); the rest are reopened on demand. */
const MAX_READ_DESCRIPTORS = 16;
const SEGMENT_NAME = /^(\d{20})\.seg$/;

/** Options of {@link SegmentedLog}. */
export interface SegmentedLogOptions {
  /** Roll to a new segment once the current one holds this many bytes. */
  readonly segmentBytes: number;
  /** Bytes of recent entry data kept in memory; older entries are read from disk. */
  readonly cacheBytes: number;
  /** When false, nothing is fsynced: only for tests that do not test durability. */
  readonly fsync: boolean;
}

/** Hooks of {@link SegmentedLog.open}. */
export interface SegmentedLogHooks {
  /**
   * Called by every flush right after it took the queued operations and before it writes
   * them; the flush waits for the returned promise. FileLogStorage uses it to make the term
   * durable before any entry of that term reaches a file.
   */
  readonly beforeWrite?: () => Promise<void>;
}

/** Defaults of {@link SegmentedLogOptions}. */
export const DEFAULT_SEGMENTED_LOG_OPTIONS: SegmentedLogOptions = Object.freeze({
  segmentBytes: 64 * 1024 * 1024,
  cacheBytes: 16 * 1024 * 1024,
  fsync: true,
});

/** What recovery found and repaired while opening a log. */
export interface LogRecoveryReport {
  /** Segment files opened. */
  readonly segments: number;
  /** Entries found valid. */
  readonly entries: number;
  /** A torn last record that was cut off (the crash happened before its sync resolved). */
  readonly tornTail?: { readonly file: string; readonly offset: number; readonly bytes: number };
  /** Segment files removed because they held only a torn header. */
  readonly removedFiles: readonly string[];
}

/** File name of the segment whose first entry is `firstIndex`. */
export function segmentFileName(firstIndex: number): string {
  return `${String(firstIndex).padStart(20, '0')}.seg`;
}

/** One segment file and the in-memory index of its records. */
class Segment {
  /** Records indexed: entry `firstIndex + i` starts at byte `offsets[i]`. */
  count = 0;
  offsets: Float64Array;
  terms: Float64Array;
  /** End of the last record, counting records not yet written to the file. */
  size = SEGMENT_HEADER_BYTES;

  constructor(
    readonly file: string,
    readonly firstIndex: number,
    capacity = 1024,
  ) {
    this.offsets = new Float64Array(capacity);
    this.terms = new Float64Array(capacity);
  }

  get lastIndex(): number {
    return this.firstIndex + this.count - 1;
  }

  push(offset: number, term: number): void {
    if (this.count === this.offsets.length) {
      const offsets = new Float64Array(this.count * 2);
      offsets.set(this.offsets);
      this.offsets = offsets;
      const terms = new Float64Array(this.count * 2);
      terms.set(this.terms);
      this.terms = terms;
    }
    this.offsets[this.count] = offset;
    this.terms[this.count] = term;
    this.count++;
  }

  /** Byte offset where the record of `index` ends. */
  recordEnd(index: number): number {
    const next = index - this.firstIndex + 1;
    return next < this.count ? (this.offsets[next] as number) : this.size;
  }
}

/** A file mutation, queued by the synchronous methods and executed in order by a flush. */
type WriteOp =
  | { readonly kind: 'create'; readonly segment: Segment }
  | {
      readonly kind: 'write';
      readonly segment: Segment;
      readonly position: number;
      readonly bytes: ByteWriter;
    }
  | { readonly kind: 'truncate'; readonly segment: Segment; readonly size: number }
  | { readonly kind: 'delete'; readonly segment: Segment };

/**
 * A segmented, append-only log of Raft entries with group commit.
 *
 * Mutations (`append`, `truncateAfter`, `compact`, `reset`) apply to the in-memory index at
 * once and queue file operations; `sync()` runs them — one write and one fdatasync for all
 * the callers waiting at that moment. Reads (`term`, `entries`) are synchronous: terms and
 * offsets live in typed arrays per segment, recent entries in a byte-bounded cache, older
 * ones are read with `readSync` (entries not yet written are never evicted from the cache).
 *
 * Indices below {@link firstIndex} may still be in a segment file (segments are deleted
 * whole); they are unreadable here.
 */
export class SegmentedLog {
  private readonly segments: Segment[] = [];
  private start = 1;
  private last = 0;

  /** Cached entries `[cacheFirst, last]` at `cache[cacheHead..]`. */
  private cache: Entry[] = [];
  private cacheHead = 0;
  private cacheFirst = 1;
  private cachedBytes = 0;

  private ops: WriteOp[] = [];
  /** Counts mutations; the group commit makes sequence numbers durable. */
  private seq = 0;
  /** Lowest index changed since the last flush took the queue (Infinity: none). */
  private pendingFrom = Infinity;
  /** Lowest index changed by the flush in progress (Infinity: none). */
  private inFlightFrom = Infinity;
  private readonly commit: GroupCommit;
  private readonly readDescriptors = new Map<Segment, number>();
  private writeHandle: FileHandle | undefined;
  private writeSegment: Segment | undefined;
  private writeDirty = false;
  private closed = false;
  /** Last index covered by the latest completed flush (read it through durableLastIndex). */
  private durableLast = 0;
  private flushes = 0;

  private constructor(
    readonly directory: string,
    private readonly options: SegmentedLogOptions,
    private readonly hooks: SegmentedLogHooks,
  ) {
    this.commit = new GroupCommit(() => this.flush());
  }

  /**
   * Opens (creating if needed) the log in `directory`, validating every record.
   *
   * A damaged record at the end of the last segment with no valid record after it is a torn
   * write from a crash: it was never acknowledged, so it is cut off (and the cut fsynced).
   * Anything else damaged throws {@link CorruptLogError}: that data may have been
   * acknowledged, and silently dropping it could lose committed entries.
   */
  static async open(
    directory: string,
    options: Partial<SegmentedLogOptions> = {},
    hooks: SegmentedLogHooks = {},
  ): Promise<{ log: SegmentedLog; report: LogRecoveryReport }> {
    const resolved = { ...DEFAULT_SEGMENTED_LOG_OPTIONS, ...options };
    if (!(resolved.segmentBytes > SEGMENT_HEADER_BYTES) || !(resolved.cacheBytes >= 0)) {
      throw new RangeError('segmentBytes must exceed the header size and cacheBytes be >= 0');
    }
    await fsp.mkdir(directory, { recursive: true });
    const log = new SegmentedLog(directory, resolved, hooks);
    const report = log.recover();
    return { log, report };
  }

  /** First readable index (entries below were compacted). */
  get firstIndex(): number {
    return this.start;
  }

  /** Last index; `firstIndex - 1` when the log is empty. */
  get lastIndex(): number {
    return this.last;
  }

  /** Flushes run so far (each is at most one write and one fdatasync per touched segment). */
  get flushCount(): number {
    return this.flushes;
  }

  /** Last index written and fdatasynced by the latest completed flush. */
  get durableLastIndex(): number {
    return Math.min(this.durableLast, this.last);
  }

  /** Term of `index`, for `firstIndex <= index <= lastIndex`. */
  term(index: number): number {
    this.checkReadable(index);
    const segment = this.segmentOf(index);
    return segment.terms[index - segment.firstIndex] as number;
  }

  /**
   * Entries in `[lo, hi)`, at least one, then stopping before the entry that would take the
   * total of `sizeOf` past `maxBytes`.
   */
  entries(lo: number, hi: number, maxBytes: number, sizeOf: (entry: Entry) => number): Entry[] {
    if (lo >= hi) return [];
    this.checkReadable(lo);
    this.checkReadable(hi - 1);
    const result: Entry[] = [];
    let total = 0;
    let index = lo;
    while (index < hi) {
      if (index >= this.cacheFirst) {
        const entry = this.cache[this.cacheHead + index - this.cacheFirst] as Entry;
        const size = sizeOf(entry);
        if (result.length > 0 && total + size > maxBytes) return result;
        total += size;
        result.push(entry);
        index++;
        continue;
      }
      const batch = this.readFromDisk(index, Math.min(hi, this.cacheFirst));
      for (const entry of batch) {
        const size = sizeOf(entry);
        if (result.length > 0 && total + size > maxBytes) return result;
        total += size;
        result.push(entry);
      }
      index += batch.length;
    }
    return result;
  }

  /**
   * Appends entries `first.index ..`, which must continue the log (`first.index ===
   * lastIndex + 1`): callers truncate first. Not durable until `sync()` resolves.
   */
  append(entries: readonly Entry[]): void {
    this.checkOpen();
    const first = entries[0];
    if (first === undefined) return;
    if (first.index !== this.last + 1) {
      throw new InvariantViolation(`append at ${first.index} does not follow ${this.last}`);
    }
    this.pendingFrom = Math.min(this.pendingFrom, first.index);
    let expected = first.index;
    let previousTerm = this.storedTerm(this.last) ?? 0;
    for (const entry of entries) {
      if (entry.index !== expected || entry.term < previousTerm) {
        throw new InvariantViolation(
          `entry ${entry.index}@${entry.term} breaks the log order after ${expected - 1}@${previousTerm}`,
        );
      }
      this.appendOne(entry);
      expected++;
      previousTerm = entry.term;
    }
    this.last = expected - 1;
    this.seq++;
  }

  /** Drops every entry above `index` (`index >= firstIndex - 1`). */
  truncateAfter(index: number): void {
    this.checkOpen();
    if (index >= this.last) return;
    if (index < this.start - 1) {
      throw new InvariantViolation(`cannot truncate to ${index}, below the first index`);
    }
    for (
      let tail = this.tail();
      tail !== undefined && tail.firstIndex > index;
      tail = this.tail()
    ) {
      this.dropSegment(tail);
      this.segments.pop();
    }
    const tail = this.tail();
    if (tail !== undefined && tail.lastIndex > index) {
      tail.count = index - tail.firstIndex + 1;
      tail.size = tail.offsets[tail.count] as number;
      this.ops.push({ kind: 'truncate', segment: tail, size: tail.size });
    }
    this.dropCachedAfter(index);
    this.last = index;
    this.pendingFrom = Math.min(this.pendingFrom, index + 1);
    this.seq++;
  }

  /**
   * Makes `index + 1` the first index (log compaction below a snapshot at `index <=
   * lastIndex`) and deletes the segment files holding only entries up to `index`. The last
   * segment is kept even when fully compacted: appends continue in it.
   */
  compact(index: number): void {
    this.checkOpen();
    if (index < this.start) return;
    if (index > this.last) throw new InvariantViolation(`compact(${index}) beyond ${this.last}`);
    this.start = index + 1;
    while (this.segments.length > 1 && (this.segments[0] as Segment).lastIndex <= index) {
      this.dropSegment(this.segments.shift() as Segment);
    }
    this.dropCachedBefore(this.start);
    this.seq++;
  }

  /**
   * Discards the whole log and makes `index + 1` the next index (a snapshot that the log does
   * not match replaces it). Segments are deleted newest first, so a crash part-way leaves a
   * prefix of the old log, which recovery recognises as not matching the snapshot.
   */
  reset(index: number): void {
    this.checkOpen();
    for (let tail = this.tail(); tail !== undefined; tail = this.tail()) {
      this.dropSegment(tail);
      this.segments.pop();
    }
    this.dropCachedAfter(this.cacheFirst - 1);
    this.start = index + 1;
    this.last = index;
    this.cacheFirst = index + 1;
    this.pendingFrom = Math.min(this.pendingFrom, index + 1);
    this.seq++;
  }

  /** Resolves once every earlier mutation is on disk (one shared flush for concurrent calls). */
  sync(): Promise<void> {
    if (this.closed) return Promise.reject(new StorageClosedError());
    return this.commit.whenDurable(this.seq);
  }

  /** Flushes pending writes, then releases every descriptor. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    try {
      await this.commit.whenDurable(this.seq);
    } finally {
      this.closed = true;
      for (const fd of this.readDescriptors.values()) fs.closeSync(fd);
      this.readDescriptors.clear();
      await this.writeHandle?.close();
      this.writeHandle = undefined;
    }
  }

  // ---- writing ----------------------------------------------------------------------------

  private appendOne(entry: Entry): void {
    let segment = this.tail();
    if (segment === undefined || (segment.size >= this.options.segmentBytes && segment.count > 0)) {
      segment = new Segment(path.join(this.directory, segmentFileName(entry.index)), entry.index);
      this.segments.push(segment);
      this.ops.push({ kind: 'create', segment });
    }
    const op = this.ops[this.ops.length - 1];
    let bytes: ByteWriter;
    if (op?.kind === 'write' && op.segment === segment) {
      bytes = op.bytes;
    } else {
      bytes = new ByteWriter(64 * 1024);
      this.ops.push({ kind: 'write', segment, position: segment.size, bytes });
    }
    const start = bytes.length;
    bytes.u32(0);
    bytes.u32(0);
    bytes.u8(RECORD_TYPE_ENTRY);
    writeEntry(bytes, entry);
    const payloadLength = bytes.length - start - RECORD_HEADER_BYTES;
    bytes.patchU32(start, payloadLength);
    const lengthCrc = crc32c(bytes.subarray(start, start + 4));
    bytes.patchU32(start + 4, crc32c(bytes.subarray(start + 8), lengthCrc));
    segment.push(segment.size, entry.term);
    segment.size += bytes.length - start;
    this.cache.push(entry);
    this.cachedBytes += entry.data.length;
    this.evictCache();
  }

  /** Removes a segment from memory and queues its deletion (the caller unlinks it from the list). */
  private dropSegment(segment: Segment): void {
    const fd = this.readDescriptors.get(segment);
    if (fd !== undefined) {
      fs.closeSync(fd);
      this.readDescriptors.delete(segment);
    }
    this.ops.push({ kind: 'delete', segment });
  }

  /** One group-commit flush: runs the queued operations, fdatasyncs, returns the covered seq. */
  private async flush(): Promise<number> {
    const seq = this.seq;
    const last = this.last;
    const ops = this.ops;
    this.flushes++;
    this.ops = [];
    this.inFlightFrom = this.pendingFrom;
    this.pendingFrom = Infinity;
    const barrier = ops.length > 0 ? this.hooks.beforeWrite?.() : undefined;
    if (barrier !== undefined) await barrier;
    let directoryDirty = false;
    for (const op of ops) {
      switch (op.kind) {
        case 'create': {
          await this.switchTo(op.segment, 'w');
          await writeFully(this.writeHandle as FileHandle, encodeHeader(op.segment.firstIndex), 0);
          this.writeDirty = true;
          directoryDirty = true;
          break;
        }
        case 'write': {
          await this.switchTo(op.segment, 'r+');
          await writeFully(this.writeHandle as FileHandle, op.bytes.subarray(), op.position);
          this.writeDirty = true;
          break;
        }
        case 'truncate': {
          await this.switchTo(op.segment, 'r+');
          const handle = this.writeHandle as FileHandle;
          await handle.truncate(op.size);
          // Durable before anything is written after the cut: see the format notes above.
          if (this.options.fsync) await handle.datasync();
          this.writeDirty = false;
          break;
        }
        case 'delete': {
          if (this.writeSegment === op.segment) {
            await this.writeHandle?.close();
            this.writeHandle = undefined;
            this.writeSegment = undefined;
            this.writeDirty = false;
          }
          try {
            await fsp.unlink(op.segment.file);
          } catch (error) {
            if (!isNotFound(error)) throw error;
          }
          if (this.options.fsync) await fsyncDirectory(this.directory);
          break;
        }
      }
    }
    if (this.writeDirty && this.options.fsync) await this.writeHandle?.datasync();
    this.writeDirty = false;
    if (directoryDirty && this.options.fsync) await fsyncDirectory(this.directory);
    this.inFlightFrom = Infinity;
    this.durableLast = last;
    this.evictCache();
    return seq;
  }

  /** Points the write handle at `segment`, syncing the previous one first (torn-tail rule). */
  private async switchTo(segment: Segment, flags: 'w' | 'r+'): Promise<void> {
    if (this.writeSegment === segment && this.writeHandle !== undefined && flags === 'r+') return;
    if (this.writeHandle !== undefined) {
      if (this.writeDirty && this.options.fsync) await this.writeHandle.datasync();
      await this.writeHandle.close();
      this.writeHandle = undefined;
    }
    this.writeDirty = false;
    this.writeSegment = segment;
    this.writeHandle = await fsp.open(segment.file, flags);
  }

  // ---- cache --------------------------------------------------------------------------------

  /** Evicts the oldest cached entries beyond the budget, but only those already in a file. */
  private evictCache(): void {
    const unwritten = Math.min(this.pendingFrom, this.inFlightFrom);
    while (
      this.cachedBytes > this.options.cacheBytes &&
      this.cacheFirst <= this.last &&
      this.cacheFirst < unwritten
    ) {
      const entry = this.cache[this.cacheHead] as Entry;
      this.cachedBytes -= entry.data.length;
      this.cacheHead++;
      this.cacheFirst++;
    }
    // Reclaim the dead prefix now and then, so eviction stays O(1) amortised.
    if (this.cacheHead > 4096 && this.cacheHead * 2 > this.cache.length) {
      this.cache = this.cache.slice(this.cacheHead);
      this.cacheHead = 0;
    }
  }

  private dropCachedAfter(index: number): void {
    while (this.cacheFirst + this.cache.length - this.cacheHead - 1 > index) {
      if (this.cache.length === this.cacheHead) break;
      const entry = this.cache.pop() as Entry;
      this.cachedBytes -= entry.data.length;
    }
    if (this.cache.length === this.cacheHead) {
      this.cache = [];
      this.cacheHead = 0;
      this.cacheFirst = index + 1;
    }
  }

  private dropCachedBefore(index: number): void {
    while (this.cacheFirst < index && this.cacheHead < this.cache.length) {
      const entry = this.cache[this.cacheHead] as Entry;
      this.cachedBytes -= entry.data.length;
      this.cacheHead++;
      this.cacheFirst++;
    }
    if (this.cacheFirst < index) this.cacheFirst = index;
  }

  // ---- reading ------------------------------------------------------------------------------

  private checkReadable(index: number): void {
    this.checkOpen();
    if (!(index >= this.start && index <= this.last)) {
      throw new InvariantViolation(`index ${index} outside [${this.start}, ${this.last}]`);
    }
  }

  private tail(): Segment | undefined {
    return this.segments[this.segments.length - 1];
  }

  private segmentOf(index: number): Segment {
    const tail = this.tail() as Segment;
    if (index >= tail.firstIndex) return tail;
    let lo = 0;
    let hi = this.segments.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if ((this.segments[mid] as Segment).firstIndex <= index) lo = mid;
      else hi = mid - 1;
    }
    return this.segments[lo] as Segment;
  }

  /** Reads entries `index ..` (below `hi`, within one segment and one block) from the file. */
  private readFromDisk(index: number, hi: number): Entry[] {
    const segment = this.segmentOf(index);
    const startOffset = segment.offsets[index - segment.firstIndex] as number;
    let end = index + 1;
    const limit = Math.min(hi, segment.lastIndex + 1);
    while (end < limit && segment.recordEnd(end) - startOffset <= READ_BLOCK_BYTES) end++;
    const endOffset = segment.recordEnd(end - 1);
    const block = Buffer.allocUnsafe(endOffset - startOffset);
    const fd = this.readDescriptor(segment);
    let done = 0;
    while (done < block.length) {
      const read = fs.readSync(fd, block, done, block.length - done, startOffset + done);
      if (read === 0) {
        throw new CorruptLogError(segment.file, startOffset + done, 'file shorter than indexed');
      }
      done += read;
    }
    const result: Entry[] = [];
    const view = new DataView(block.buffer, block.byteOffset, block.byteLength);
    const scan = new RecordScan();
    let position = 0;
    for (let i = index; i < end; i++) {
      const valid = scanRecord(block, view, position, block.length, scan);
      if (!valid || scan.index !== i) {
        const reason = valid ? `holds index ${scan.index}, expected ${i}` : scan.error;
        throw new CorruptLogError(segment.file, startOffset + position, reason);
      }
      result.push(scan.toEntry(block));
      position = scan.end;
    }
    return result;
  }

  private readDescriptor(segment: Segment): number {
    let fd = this.readDescriptors.get(segment);
    if (fd !== undefined) {
      // Refresh the LRU order.
      this.readDescriptors.delete(segment);
      this.readDescriptors.set(segment, fd);
      return fd;
    }
    if (this.readDescriptors.size >= MAX_READ_DESCRIPTORS) {
      const [oldest, oldestFd] = this.readDescriptors.entries().next().value as [Segment, number];
      fs.closeSync(oldestFd);
      this.readDescriptors.delete(oldest);
    }
    fd = fs.openSync(segment.file, 'r');
    this.readDescriptors.set(segment, fd);
    return fd;
  }

  private checkOpen(): void {
    if (this.closed) throw new StorageClosedError();
    const failure = this.commit.failed;
    if (failure !== undefined) throw failure;
  }

  // ---- recovery -----------------------------------------------------------------------------

  private recover(): LogRecoveryReport {
    const names = fs
      .readdirSync(this.directory)
      .filter((name) => SEGMENT_NAME.test(name))
      .sort();
    const removedFiles: string[] = [];
    let tornTail: LogRecoveryReport['tornTail'];
    let entries = 0;
    for (let k = 0; k < names.length; k++) {
      const file = path.join(this.directory, names[k] as string);
      const isLast = k === names.length - 1;
      const named = Number((SEGMENT_NAME.exec(names[k] as string) as RegExpExecArray)[1]);
      const bytes = fs.readFileSync(file);
      const header = parseHeader(bytes);
      if (typeof header === 'string') {
        if (isLast && !hasValidRecordAfter(bytes, 0)) {
          // A crash while creating the segment: it never held an acknowledged record.
          fs.unlinkSync(file);
          if (this.options.fsync) fsyncDirectorySync(this.directory);
          removedFiles.push(file);
          continue;
        }
        throw new CorruptLogError(file, 0, header);
      }
      if (header.version > SEGMENT_FORMAT_VERSION) {
        throw new UnsupportedVersionError(file, header.version);
      }
      if (header.firstIndex !== named) {
        throw new CorruptLogError(file, 0, `header names first index ${header.firstIndex}`);
      }
      if (this.segments.length > 0 && named !== this.last + 1) {
        throw new CorruptLogError(file, 0, `starts at ${named} but the log ended at ${this.last}`);
      }
      const segment = new Segment(file, named, Math.max(1024, bytes.length >>> 8));
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      const record = new RecordScan();
      let position = SEGMENT_HEADER_BYTES;
      let previousTerm = this.storedTerm(this.last) ?? 0;
      while (position < bytes.length) {
        if (!scanRecord(bytes, view, position, bytes.length, record)) {
          if (isLast && !hasValidRecordAfter(bytes, position)) {
            tornTail = { file, offset: position, bytes: bytes.length - position };
            const fd = fs.openSync(file, 'r+');
            try {
              fs.ftruncateSync(fd, position);
              if (this.options.fsync) fs.fdatasyncSync(fd);
            } finally {
              fs.closeSync(fd);
            }
            break;
          }
          throw new CorruptLogError(file, position, record.error);
        }
        const expected = named + segment.count;
        if (record.index !== expected) {
          throw new CorruptLogError(file, position, `index ${record.index}, expected ${expected}`);
        }
        if (record.term < previousTerm) {
          throw new CorruptLogError(file, position, `term ${record.term} after ${previousTerm}`);
        }
        previousTerm = record.term;
        segment.push(position, record.term);
        position = record.end;
      }
      segment.size = position;
      if (this.segments.length === 0) this.start = named;
      this.segments.push(segment);
      this.last = segment.lastIndex;
      entries += segment.count;
    }
    if (this.segments.length === 0) {
      this.start = 1;
      this.last = 0;
    }
    this.cacheFirst = this.last + 1;
    this.durableLast = this.last;
    return {
      segments: this.segments.length,
      entries,
      removedFiles,
      ...(tornTail === undefined ? {} : { tornTail }),
    };
  }

  /**
   * Re-bases an empty or freshly recovered log at `start` (recovery uses this when the first
   * segment starts exactly after the snapshot).
   */
  setStart(start: number): void {
    if (this.segments.length > 0 && (this.segments[0] as Segment).firstIndex !== start) {
      throw new InvariantViolation(`setStart(${start}) with segments`);
    }
    this.start = start;
    if (this.segments.length === 0) {
      this.last = start - 1;
      this.cacheFirst = start;
    }
  }

  /** Index of the first entry still in a segment file (may be below firstIndex). */
  get firstStoredIndex(): number | undefined {
    return this.segments[0]?.firstIndex;
  }

  /** Term of an entry still in a file, even if below firstIndex; undefined when absent. */
  storedTerm(index: number): number | undefined {
    const first = this.segments[0];
    if (first === undefined || index < first.firstIndex || index > this.last) return undefined;
    const segment = this.segmentOf(index);
    return segment.terms[index - segment.firstIndex];
  }
}

function encodeHeader(firstIndex: number): Uint8Array {
  const writer = new ByteWriter(SEGMENT_HEADER_BYTES);
  writer.u32(SEGMENT_MAGIC);
  writer.u8(SEGMENT_FORMAT_VERSION);
  writer.u8(0);
  writer.u8(0);
  writer.u8(0);
  writer.u64(firstIndex);
  writer.u32(0);
  writer.u32(crc32c(writer.subarray()));
  return writer.finish();
}

function parseHeader(bytes: Uint8Array): { version: number; firstIndex: number } | string {
  if (bytes.length < SEGMENT_HEADER_BYTES) return 'segment header is incomplete';
  const reader = new ByteReader(bytes, 0, SEGMENT_HEADER_BYTES);
  if (reader.u32() !== SEGMENT_MAGIC) return 'segment header has a wrong magic number';
  const version = reader.u8();
  reader.u8();
  reader.u8();
  reader.u8();
  let firstIndex: number;
  try {
    firstIndex = reader.u64();
  } catch {
    return 'segment header first index out of range';
  }
  reader.u32();
  const checked = reader.offset;
  if (reader.u32() !== crc32c(bytes.subarray(0, checked)))
    return 'segment header checksum mismatch';
  return { version, firstIndex };
}

/**
 * The fields of one scanned record. A single instance is reused for every record of a
 * replay: a million small result objects would cost more than the checksums.
 */
class RecordScan {
  index = 0;
  term = 0;
  kind = 0;
  /** Offset of the entry data. */
  dataStart = 0;
  /** Offset just past the record. */
  end = 0;
  /** Why the last scan failed. */
  error = '';

  /** Copies the scanned entry out of `bytes`. */
  toEntry(bytes: Uint8Array): Entry {
    return {
      index: this.index,
      term: this.term,
      kind: ENTRY_KINDS[this.kind] as EntryKind,
      // A copy (Buffer#slice would be a view pinning the whole read block).
      data: new Uint8Array(bytes.subarray(this.dataStart, this.end)),
    };
  }
}

const ENTRY_KINDS: readonly EntryKind[] = ['normal', 'conf-change'];

/**
 * Checks the record at `position` (frame, checksum, type, entry encoding) and fills `out`;
 * returns false with `out.error` saying why it is not a valid record.
 */
function scanRecord(
  bytes: Uint8Array,
  view: DataView,
  position: number,
  end: number,
  out: RecordScan,
): boolean {
  if (end - position < RECORD_HEADER_BYTES) return fail(out, 'record header is incomplete');
  const length = view.getUint32(position, true);
  if (length > MAX_RECORD_BYTES || position + RECORD_HEADER_BYTES + length > end) {
    return fail(out, `record length ${length} runs past the end of the file`);
  }
  const recordEnd = position + RECORD_HEADER_BYTES + length;
  const expected = view.getUint32(position + 4, true);
  const actual = crc32c(
    bytes.subarray(position + 8, recordEnd),
    crc32c(bytes.subarray(position, position + 4)),
  );
  if (actual !== expected) return fail(out, 'record checksum mismatch');
  const type = bytes[position + 8];
  if (type !== RECORD_TYPE_ENTRY) return fail(out, `unknown record type ${type}`);
  let at = position + RECORD_HEADER_BYTES;
  at = readVarint(bytes, at, recordEnd);
  out.index = varintValue;
  if (at >= 0) at = readVarint(bytes, at, recordEnd);
  out.term = varintValue;
  if (at < 0 || at >= recordEnd) return fail(out, 'malformed entry header');
  out.kind = bytes[at] as number;
  if (out.kind >= ENTRY_KINDS.length) return fail(out, `unknown entry kind ${out.kind}`);
  at = readVarint(bytes, at + 1, recordEnd);
  if (at < 0 || varintValue !== recordEnd - at) {
    return fail(out, 'entry length disagrees with record length');
  }
  out.dataStart = at;
  out.end = recordEnd;
  return true;
}

function fail(out: RecordScan, error: string): false {
  out.error = error;
  return false;
}

/** Value of the last {@link readVarint} (a module-level slot avoids allocating a pair). */
let varintValue = 0;

/** Reads a varint at `at` into {@link varintValue}; returns the next offset, or -1. */
function readVarint(bytes: Uint8Array, at: number, end: number): number {
  let value = 0;
  let multiplier = 1;
  for (let i = 0; i < 8 && at < end; i++) {
    const byte = bytes[at++] as number;
    value += (byte & 0x7f) * multiplier;
    if (byte < 0x80) {
      varintValue = value;
      return Number.isSafeInteger(value) ? at : -1;
    }
    multiplier *= 128;
  }
  varintValue = 0;
  return -1;
}

/**
 * True when some complete, checksum-valid record starts after `from`: the damage at `from`
 * is then in the middle of the data, not a torn tail. Cheap in practice: the CRC is only
 * computed where the type byte and the length are plausible.
 */
function hasValidRecordAfter(bytes: Uint8Array, from: number): boolean {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const scan = new RecordScan();
  for (let p = from + 1; p + RECORD_HEADER_BYTES <= bytes.length; p++) {
    if (bytes[p + 8] !== RECORD_TYPE_ENTRY) continue;
    const length = view.getUint32(p, true);
    if (length < 3 || p + RECORD_HEADER_BYTES + length > bytes.length) continue;
    if (scanRecord(bytes, view, p, bytes.length, scan)) return true;
  }
  return false;
}

async function writeFully(handle: FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    const { bytesWritten } = await handle.write(bytes, done, bytes.length - done, position + done);
    done += bytesWritten;
  }
}
