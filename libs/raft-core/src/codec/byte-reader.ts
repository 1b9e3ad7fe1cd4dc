import { CodecError } from './codec-error';

const TWO_POW_32 = 0x1_0000_0000;

/**
 * Reads what {@link ByteWriter} wrote. Every read checks bounds and throws a
 * {@link CodecError} instead of returning `undefined` or reading past the end: decoding
 * garbage must fail loudly, never produce a plausible message.
 */
export class ByteReader {
  private position: number;
  private readonly view: DataView;

  constructor(
    private readonly buffer: Uint8Array,
    start = 0,
    private readonly end = buffer.length,
  ) {
    this.position = start;
    this.view = new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  }

  /** Offset of the next byte to read, relative to the start of the buffer. */
  get offset(): number {
    return this.position;
  }

  get remaining(): number {
    return this.end - this.position;
  }

  u8(): number {
    if (this.position >= this.end) throw truncated();
    return this.buffer[this.position++] as number;
  }

  u32(): number {
    this.need(4);
    const value = this.view.getUint32(this.position, true);
    this.position += 4;
    return value;
  }

  u64(): number {
    this.need(8);
    const low = this.view.getUint32(this.position, true);
    const high = this.view.getUint32(this.position + 4, true);
    this.position += 8;
    const value = high * TWO_POW_32 + low;
    if (!Number.isSafeInteger(value)) {
      throw new CodecError('codec/malformed', `64-bit value ${value} exceeds 2^53`);
    }
    return value;
  }

  /** An unsigned LEB128 varint; rejects non-shortest encodings, more than 8 bytes, or >= 2^53. */
  varint(): number {
    let value = 0;
    let multiplier = 1;
    for (let i = 0; i < 8; i++) {
      if (this.position >= this.end) throw truncated();
      const byte = this.buffer[this.position++] as number;
      value += (byte & 0x7f) * multiplier;
      if (byte < 0x80) {
        // Only the shortest encoding is valid, so every value has exactly one encoding.
        if (byte === 0 && i > 0) throw new CodecError('codec/malformed', 'non-canonical varint');
        if (!Number.isSafeInteger(value)) {
          throw new CodecError('codec/malformed', `varint ${value} exceeds 2^53`);
        }
        return value;
      }
      multiplier *= 128;
    }
    throw new CodecError('codec/malformed', 'varint longer than 8 bytes');
  }

  bool(): boolean {
    const byte = this.u8();
    if (byte > 1) throw new CodecError('codec/malformed', `boolean byte ${byte}`);
    return byte === 1;
  }

  /** `length` raw bytes, copied so the result does not pin (or alias) the input buffer. */
  raw(length: number): Uint8Array {
    this.need(length);
    // new Uint8Array(view) copies; Buffer#slice would alias the input instead.
    const bytes = new Uint8Array(this.buffer.subarray(this.position, this.position + length));
    this.position += length;
    return bytes;
  }

  /** A varint length followed by that many bytes (copied). */
  bytes(): Uint8Array {
    return this.raw(this.varint());
  }

  /** Throws unless every byte was consumed. */
  expectEnd(): void {
    if (this.position !== this.end) {
      throw new CodecError('codec/trailing-bytes', `${this.end - this.position} trailing bytes`);
    }
  }

  private need(length: number): void {
    if (length > this.end - this.position) throw truncated();
  }
}

function truncated(): CodecError {
  return new CodecError('codec/truncated', 'input ended in the middle of a value');
}
