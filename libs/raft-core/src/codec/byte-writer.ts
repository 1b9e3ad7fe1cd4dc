import { CodecError } from './codec-error';

const TWO_POW_32 = 0x1_0000_0000;

/**
 * An append-only, growable byte buffer with the primitives of the codec: unsigned LEB128
 * varints for numbers (1 byte for the small values Raft mostly sends), fixed little-endian
 * 32-bit words where a field must be patched in place (record length and CRC), raw bytes.
 *
 * Numbers are JavaScript safe integers (< 2^53): indices and terms never reach that, and
 * staying in `number` avoids BigInt on the hot path.
 */
export class ByteWriter {
  private buffer: Uint8Array;
  private view: DataView;
  /** Bytes written so far; `buffer[length..]` is free capacity. */
  private size = 0;

  constructor(initialCapacity = 256) {
    this.buffer = new Uint8Array(Math.max(16, initialCapacity));
    this.view = new DataView(this.buffer.buffer);
  }

  /** Number of bytes written. */
  get length(): number {
    return this.size;
  }

  /** Makes room for `bytes` more bytes, doubling so that appends are amortised O(1). */
  reserve(bytes: number): void {
    const needed = this.size + bytes;
    if (needed <= this.buffer.length) return;
    let capacity = this.buffer.length * 2;
    while (capacity < needed) capacity *= 2;
    const grown = new Uint8Array(capacity);
    grown.set(this.buffer.subarray(0, this.size));
    this.buffer = grown;
    this.view = new DataView(grown.buffer);
  }

  u8(value: number): void {
    this.reserve(1);
    this.buffer[this.size++] = value;
  }

  /** A fixed 4-byte little-endian unsigned integer. */
  u32(value: number): void {
    this.reserve(4);
    this.view.setUint32(this.size, value, true);
    this.size += 4;
  }

  /** Overwrites a fixed 4-byte word written earlier (e.g. a length known only afterwards). */
  patchU32(offset: number, value: number): void {
    this.view.setUint32(offset, value, true);
  }

  /** A fixed 8-byte little-endian unsigned integer (a safe integer). */
  u64(value: number): void {
    checkSafe(value);
    this.reserve(8);
    this.view.setUint32(this.size, value % TWO_POW_32, true);
    this.view.setUint32(this.size + 4, Math.floor(value / TWO_POW_32), true);
    this.size += 8;
  }

  /** An unsigned LEB128 varint of a non-negative safe integer (1–8 bytes). */
  varint(value: number): void {
    checkSafe(value);
    this.reserve(8);
    let rest = value;
    // Above 2^31 the bitwise operators would wrap; divide instead.
    while (rest >= 0x8000_0000) {
      this.buffer[this.size++] = (rest % 128) | 0x80;
      rest = Math.floor(rest / 128);
    }
    while (rest >= 0x80) {
      this.buffer[this.size++] = (rest & 0x7f) | 0x80;
      rest >>>= 7;
    }
    this.buffer[this.size++] = rest;
  }

  bool(value: boolean): void {
    this.u8(value ? 1 : 0);
  }

  /** Raw bytes, no length. */
  raw(bytes: Uint8Array): void {
    this.reserve(bytes.length);
    this.buffer.set(bytes, this.size);
    this.size += bytes.length;
  }

  /** A varint length followed by the bytes. */
  bytes(bytes: Uint8Array): void {
    this.varint(bytes.length);
    this.raw(bytes);
  }

  /** A view (no copy) of bytes `[start, end)` written so far; valid until the next write. */
  subarray(start = 0, end = this.size): Uint8Array {
    return this.buffer.subarray(start, end);
  }

  /** A copy of everything written, detached from this writer. */
  finish(): Uint8Array {
    return this.buffer.slice(0, this.size);
  }

  /** Forgets the contents, keeping the capacity for reuse. */
  clear(): void {
    this.size = 0;
  }
}

function checkSafe(value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new CodecError('codec/invalid-value', `${value} is not a non-negative safe integer`);
  }
}
