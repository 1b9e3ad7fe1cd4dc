/**
 * Why bytes could not be decoded (or a value could not be encoded). Stable: callers branch on
 * it, e.g. a transport drops a connection on `codec/unsupported-version` and asks the peer to
 * downgrade, but treats every other code as a corrupted frame.
 */
export type CodecErrorCode =
  /** The input ended in the middle of a value. */
  | 'codec/truncated'
  /** The first byte names a codec version this build does not know (a newer peer). */
  | 'codec/unsupported-version'
  /** A tag, enum value or varint is not one this codec ever writes. */
  | 'codec/malformed'
  /** Bytes were left over after a complete value. */
  | 'codec/trailing-bytes'
  /** A value cannot be encoded (not a safe non-negative integer, unknown message type). */
  | 'codec/invalid-value';

/** Thrown by every encoder and decoder of the codec; never carries partial output. */
export class CodecError extends Error {
  constructor(
    readonly code: CodecErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'CodecError';
  }
}
