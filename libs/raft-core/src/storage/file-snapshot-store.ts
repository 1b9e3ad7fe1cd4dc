import { promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import * as path from 'node:path';
import { ByteReader } from '../codec/byte-reader';
import { ByteWriter } from '../codec/byte-writer';
import { CodecError } from '../codec/codec-error';
import { readSnapshotMeta, writeSnapshotMeta } from '../codec/entry-codec';
import { InvariantViolation } from '../core/errors';
import type { SnapshotMeta } from '../core/types';
import { TEMP_SUFFIX, fsyncDirectory } from './atomic-file';
import { crc32c } from './crc32c';
import type { SnapshotStore, SnapshotWriter } from './snapshot-store';
import { CorruptSnapshotError, UnsupportedVersionError } from './storage-errors';

/*
 * Snapshot file "<index, 20 digits>.snap", version 1, little-endian:
 *   header  magic "DMQP" (4) | version (1) | varint length + snapshot meta | CRC-32C of the header so far (4)
 *   frame*  data length (4, > 0) | CRC-32C of the data (4) | data
 *   end     0 (4) | CRC-32C of all data (4) | total data length (8)
 * Per-frame checksums let a reader verify each chunk *before* yielding it; the end frame
 * proves the file is complete.
 */
const MAGIC = 0x50514d44; // "DMQP"
const FORMAT_VERSION = 1;
const FRAME_HEADER_BYTES = 8;
const SNAPSHOT_NAME = /^(\d{20})\.snap$/;
/** A header larger than this is garbage (membership lists are small). */
const MAX_HEADER_BYTES = 1024 * 1024;
/** A frame larger than this is garbage, whatever chunkBytes the writer used. */
const MAX_FRAME_BYTES = 256 * 1024 * 1024;

/** Options of {@link FileSnapshotStore.open}. */
export interface FileSnapshotStoreOptions {
  /** Committed snapshots kept; older ones are deleted after each commit. Default 2. */
  readonly retain?: number;
  /** Bytes per frame on disk, hence the size of the chunks `read` yields. Default 64 KiB. */
  readonly chunkBytes?: number;
  /** fsync before a commit resolves. Default true; false only for tests that do not crash. */
  readonly fsync?: boolean;
}

/** Defaults of {@link FileSnapshotStoreOptions}. */
export const DEFAULT_FILE_SNAPSHOT_STORE_OPTIONS = Object.freeze({
  retain: 2,
  chunkBytes: 64 * 1024,
  fsync: true,
}) satisfies Required<FileSnapshotStoreOptions>;

/**
 * A {@link SnapshotStore} on files. A snapshot is streamed into a temporary file frame by
 * frame (memory stays at one frame, whatever the image size), fsynced, then renamed into place
 * and the directory fsynced: a crash leaves either the complete snapshot or none (temporary
 * debris is removed at open). Reads stream frames, each checked against its CRC before it is
 * yielded; a damaged or incomplete file throws {@link CorruptSnapshotError}.
 */
export class FileSnapshotStore implements SnapshotStore {
  /** Committed snapshots by index. */
  private readonly snapshots = new Map<number, SnapshotMeta>();
  private temporaryCounter = 0;

  private constructor(
    private readonly directory: string,
    private readonly options: Required<FileSnapshotStoreOptions>,
  ) {}

  /**
   * Opens (creating if needed) the store in `directory`, checking every snapshot's header.
   * @throws {CorruptSnapshotError} when a snapshot header is damaged.
   */
  static async open(
    directory: string,
    options: FileSnapshotStoreOptions = {},
  ): Promise<FileSnapshotStore> {
    const resolved = { ...DEFAULT_FILE_SNAPSHOT_STORE_OPTIONS, ...options };
    if (!(resolved.retain >= 1) || !(resolved.chunkBytes >= 1)) {
      throw new RangeError('retain and chunkBytes must be at least 1');
    }
    await fsp.mkdir(directory, { recursive: true });
    const store = new FileSnapshotStore(directory, resolved);
    for (const name of await fsp.readdir(directory)) {
      const file = path.join(directory, name);
      if (name.endsWith(TEMP_SUFFIX)) {
        await fsp.rm(file, { force: true });
        continue;
      }
      if (!SNAPSHOT_NAME.test(name)) continue;
      const handle = await fsp.open(file, 'r');
      try {
        const { meta } = await readHeader(file, handle);
        store.snapshots.set(meta.index, meta);
      } finally {
        await handle.close();
      }
    }
    return store;
  }

  create(meta: SnapshotMeta): Promise<SnapshotWriter> {
    const temporary = path.join(
      this.directory,
      `${fileName(meta.index)}.${++this.temporaryCounter}${TEMP_SUFFIX}`,
    );
    return FileSnapshotWriter.start(meta, temporary, this.options, (written) =>
      this.install(meta, written),
    );
  }

  latest(): Promise<SnapshotMeta | undefined> {
    let latest: SnapshotMeta | undefined;
    for (const meta of this.snapshots.values()) {
      if (latest === undefined || meta.index > latest.index) latest = meta;
    }
    return Promise.resolve(latest);
  }

  /** Metadata of every retained snapshot, oldest first. */
  list(): SnapshotMeta[] {
    return [...this.snapshots.values()].sort((a, b) => a.index - b.index);
  }

  async *read(index: number): AsyncIterable<Uint8Array> {
    if (!this.snapshots.has(index)) throw new InvariantViolation(`no snapshot at index ${index}`);
    const file = path.join(this.directory, fileName(index));
    // Opened once: a later commit may delete the file, the descriptor keeps it readable.
    const handle = await fsp.open(file, 'r');
    try {
      const { end: headerEnd } = await readHeader(file, handle);
      let position = headerEnd;
      let total = 0;
      let totalCrc = 0;
      const frameHeader = Buffer.alloc(FRAME_HEADER_BYTES);
      for (;;) {
        await readExactly(file, handle, frameHeader, position);
        position += FRAME_HEADER_BYTES;
        const length = frameHeader.readUInt32LE(0);
        const crc = frameHeader.readUInt32LE(4);
        if (length === 0) {
          const trailer = Buffer.alloc(8);
          await readExactly(file, handle, trailer, position);
          position += 8;
          const declared = Number(trailer.readBigUInt64LE(0));
          if (crc !== totalCrc || declared !== total) {
            throw new CorruptSnapshotError(file, 'end frame disagrees with the data');
          }
          const { size } = await handle.stat();
          if (size !== position) throw new CorruptSnapshotError(file, 'bytes after the end frame');
          return;
        }
        if (length > MAX_FRAME_BYTES) {
          throw new CorruptSnapshotError(file, `frame length ${length} at ${position - 8}`);
        }
        const data = Buffer.allocUnsafe(length);
        await readExactly(file, handle, data, position);
        if (crc32c(data) !== crc) {
          throw new CorruptSnapshotError(file, `frame checksum mismatch at ${position - 8}`);
        }
        position += length;
        total += length;
        totalCrc = crc32c(data, totalCrc);
        yield new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
      }
    } finally {
      await handle.close();
    }
  }

  /** Renames a completed temporary file into place and prunes old snapshots. */
  private async install(meta: SnapshotMeta, temporary: string): Promise<void> {
    await fsp.rename(temporary, path.join(this.directory, fileName(meta.index)));
    if (this.options.fsync) await fsyncDirectory(this.directory);
    this.snapshots.set(meta.index, meta);
    const indices = [...this.snapshots.keys()].sort((a, b) => b - a);
    const stale = indices.slice(this.options.retain);
    for (const index of stale) {
      this.snapshots.delete(index);
      await fsp.rm(path.join(this.directory, fileName(index)), { force: true });
    }
    if (stale.length > 0 && this.options.fsync) await fsyncDirectory(this.directory);
  }
}

/** Streams one snapshot into its temporary file; see {@link FileSnapshotStore}. */
class FileSnapshotWriter implements SnapshotWriter {
  private state: 'open' | 'committed' | 'aborted' = 'open';
  private position: number;
  private total = 0;
  private totalCrc = 0;
  /** Bytes waiting to fill a frame (small chunks are coalesced into frames of chunkBytes). */
  private readonly pending: ByteWriter;
  /** Serialises calls: a caller that does not await each write still gets them in order. */
  private queue: Promise<void> = Promise.resolve();

  private constructor(
    private readonly temporary: string,
    private readonly handle: FileHandle,
    headerBytes: number,
    private readonly options: Required<FileSnapshotStoreOptions>,
    private readonly onCommit: (temporary: string) => Promise<void>,
  ) {
    this.position = headerBytes;
    this.pending = new ByteWriter(options.chunkBytes);
  }

  static async start(
    meta: SnapshotMeta,
    temporary: string,
    options: Required<FileSnapshotStoreOptions>,
    onCommit: (temporary: string) => Promise<void>,
  ): Promise<FileSnapshotWriter> {
    const handle = await fsp.open(temporary, 'w');
    try {
      const header = encodeHeader(meta);
      await writeAll(handle, header, 0);
      return new FileSnapshotWriter(temporary, handle, header.length, options, onCommit);
    } catch (error) {
      await handle.close();
      await fsp.rm(temporary, { force: true });
      throw error;
    }
  }

  write(chunk: Uint8Array): Promise<void> {
    return this.enqueue(async () => {
      let at = 0;
      while (at < chunk.length) {
        const take = Math.min(chunk.length - at, this.options.chunkBytes - this.pending.length);
        this.pending.raw(chunk.subarray(at, at + take));
        at += take;
        if (this.pending.length === this.options.chunkBytes) await this.writeFrame();
      }
    });
  }

  commit(): Promise<void> {
    return this.enqueue(async () => {
      if (this.pending.length > 0) await this.writeFrame();
      const end = Buffer.alloc(FRAME_HEADER_BYTES + 8);
      end.writeUInt32LE(this.totalCrc, 4);
      end.writeBigUInt64LE(BigInt(this.total), 8);
      await writeAll(this.handle, end, this.position);
      if (this.options.fsync) await this.handle.sync();
      await this.handle.close();
      this.state = 'committed';
      await this.onCommit(this.temporary);
    });
  }

  async abort(): Promise<void> {
    if (this.state !== 'open') return;
    this.state = 'aborted';
    // Let an in-flight write finish with the handle before closing it.
    await this.queue.catch(() => undefined);
    await this.handle.close().catch(() => undefined);
    await fsp.rm(this.temporary, { force: true });
  }

  private enqueue(operation: () => Promise<void>): Promise<void> {
    const run = this.queue.then(() => {
      if (this.state !== 'open') {
        throw new InvariantViolation(`snapshot writer is ${this.state}`);
      }
      return operation();
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async writeFrame(): Promise<void> {
    const data = this.pending.subarray();
    const header = Buffer.alloc(FRAME_HEADER_BYTES);
    header.writeUInt32LE(data.length, 0);
    header.writeUInt32LE(crc32c(data), 4);
    await writeAll(this.handle, header, this.position);
    await writeAll(this.handle, data, this.position + FRAME_HEADER_BYTES);
    this.position += FRAME_HEADER_BYTES + data.length;
    this.total += data.length;
    this.totalCrc = crc32c(data, this.totalCrc);
    this.pending.clear();
  }
}

function fileName(index: number): string {
  return `${String(index).padStart(20, '0')}.snap`;
}

function encodeHeader(meta: SnapshotMeta): Uint8Array {
  const metaBytes = new ByteWriter(64);
  writeSnapshotMeta(metaBytes, meta);
  const writer = new ByteWriter(metaBytes.length + 16);
  writer.u32(MAGIC);
  writer.u8(FORMAT_VERSION);
  writer.bytes(metaBytes.subarray());
  writer.u32(crc32c(writer.subarray()));
  return writer.finish();
}

/** Reads and checks a snapshot header; returns its meta and where the frames start. */
async function readHeader(
  file: string,
  handle: FileHandle,
): Promise<{ meta: SnapshotMeta; end: number }> {
  // magic + version + at most an 8-byte varint: enough to learn the header's length.
  const prefix = Buffer.alloc(13);
  const { bytesRead } = await handle.read(prefix, 0, prefix.length, 0);
  try {
    const reader = new ByteReader(prefix, 0, bytesRead);
    if (reader.u32() !== MAGIC) throw new CorruptSnapshotError(file, 'wrong magic number');
    const version = reader.u8();
    const metaLength = reader.varint();
    if (metaLength > MAX_HEADER_BYTES) throw new CorruptSnapshotError(file, 'header too large');
    const headerBytes = reader.offset + metaLength + 4;
    const header = Buffer.alloc(headerBytes);
    await readExactly(file, handle, header, 0);
    const checked = headerBytes - 4;
    if (crc32c(header.subarray(0, checked)) !== header.readUInt32LE(checked)) {
      throw new CorruptSnapshotError(file, 'header checksum mismatch');
    }
    if (version > FORMAT_VERSION) throw new UnsupportedVersionError(file, version);
    const metaReader = new ByteReader(header, reader.offset, checked);
    const meta = readSnapshotMeta(metaReader);
    metaReader.expectEnd();
    return { meta, end: headerBytes };
  } catch (error) {
    if (error instanceof CodecError) throw new CorruptSnapshotError(file, error.message);
    throw error;
  }
}

async function readExactly(
  file: string,
  handle: FileHandle,
  into: Uint8Array,
  position: number,
): Promise<void> {
  let done = 0;
  while (done < into.length) {
    const { bytesRead } = await handle.read(into, done, into.length - done, position + done);
    if (bytesRead === 0) throw new CorruptSnapshotError(file, `truncated at ${position + done}`);
    done += bytesRead;
  }
}

async function writeAll(handle: FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    const { bytesWritten } = await handle.write(bytes, done, bytes.length - done, position + done);
    done += bytesWritten;
  }
}
