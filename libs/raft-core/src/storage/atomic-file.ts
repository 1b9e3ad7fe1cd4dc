import { promises as fsp } from 'node:fs';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ByteReader } from '../codec/byte-reader';
import { ByteWriter } from '../codec/byte-writer';
import { CodecError } from '../codec/codec-error';
import { crc32c } from './crc32c';
import { CorruptStateError, UnsupportedVersionError } from './storage-errors';

/** Suffix of the temporary file an atomic write goes through; leftovers are crash debris. */
export const TEMP_SUFFIX = '.tmp';

/**
 * Replaces `file` with `data` so that after a crash at any moment the file holds either the
 * old or the new contents, never a mix: write a temporary sibling, fsync it, rename it over
 * the target (atomic on POSIX), then fsync the directory so the rename itself is durable.
 *
 * Callers serialise writes to the same path (the temporary name is fixed, so that a crash
 * leaves at most one piece of debris to clean up).
 *
 * @param sync false skips both fsyncs (tests that do not test durability run much faster).
 */
export async function writeFileAtomic(file: string, data: Uint8Array, sync = true): Promise<void> {
  const temp = file + TEMP_SUFFIX;
  const handle = await fsp.open(temp, 'w');
  try {
    await handle.writeFile(data);
    if (sync) await handle.sync();
  } finally {
    await handle.close();
  }
  await fsp.rename(temp, file);
  if (sync) await fsyncDirectory(path.dirname(file));
}

/**
 * Makes the directory's entries (created, renamed, deleted files) durable. A new file whose
 * data was fsynced can still vanish after a crash if its directory entry was not.
 */
export async function fsyncDirectory(directory: string): Promise<void> {
  const handle = await fsp.open(directory, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Synchronous variant of {@link fsyncDirectory}, for code that already blocks. */
export function fsyncDirectorySync(directory: string): void {
  const fd = fs.openSync(directory, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Frame of the small state files: `magic (4) | version (1) | payload length (varint) | payload |
 * CRC-32C of everything before it (4, LE)`. The magic tells files apart when an operator
 * copies the wrong one; the version lets a later build change the payload.
 */
export function encodeStateFile(magic: number, version: number, payload: Uint8Array): Uint8Array {
  const writer = new ByteWriter(payload.length + 16);
  writer.u32(magic);
  writer.u8(version);
  writer.bytes(payload);
  writer.u32(crc32c(writer.subarray()));
  return writer.finish();
}

/**
 * Checks and unwraps {@link encodeStateFile}'s frame.
 * @throws {CorruptStateError} on a wrong magic, a bad CRC or a malformed frame.
 * @throws {UnsupportedVersionError} when the version is above `maxVersion`.
 */
export function decodeStateFile(
  file: string,
  bytes: Uint8Array,
  magic: number,
  maxVersion: number,
): { version: number; payload: Uint8Array } {
  try {
    const reader = new ByteReader(bytes);
    if (reader.u32() !== magic) throw new CorruptStateError(file, 'wrong magic number');
    const version = reader.u8();
    const payload = reader.bytes();
    const checked = reader.offset;
    const expected = reader.u32();
    reader.expectEnd();
    if (crc32c(bytes.subarray(0, checked)) !== expected) {
      throw new CorruptStateError(file, 'checksum mismatch');
    }
    if (version > maxVersion) throw new UnsupportedVersionError(file, version);
    return { version, payload };
  } catch (error) {
    if (error instanceof CodecError) throw new CorruptStateError(file, error.message);
    throw error;
  }
}

/** Reads a whole small file, or `undefined` when it does not exist. */
export async function readFileIfExists(file: string): Promise<Uint8Array | undefined> {
  try {
    return await fsp.readFile(file);
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
}

/** True for ENOENT. */
export function isNotFound(error: unknown): boolean {
  return (error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}
