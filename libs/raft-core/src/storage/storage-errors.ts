/**
 * Errors of the file-backed storage. Codes are stable and documented; every one of them means
 * "do not serve from this directory until an operator looks", except `storage/closed`, which
 * is a programming error of the caller.
 */
export type StorageErrorCode =
  /** A log record failed validation somewhere other than the torn tail of the last segment. */
  | 'storage/corrupt-record'
  /** A small state file (hard state, snapshot metadata) failed its checksum or format check. */
  | 'storage/corrupt-state'
  /** A snapshot file failed its checksum or format check. */
  | 'storage/corrupt-snapshot'
  /** A write or fsync failed: the on-disk state is unknown, so the storage stops accepting work. */
  | 'storage/io-failed'
  /** A file was written by a newer format version than this build reads. */
  | 'storage/unsupported-version'
  /** A method was called after `close()`. */
  | 'storage/closed';

/** Base class of the storage errors. */
export abstract class StorageError extends Error {
  abstract readonly code: StorageErrorCode;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/**
 * A record in the middle of the log is damaged (bit rot, a bad disk, a foreign write). Unlike a
 * torn tail this cannot be the result of a crash, so entries this node acknowledged may be
 * lost: refusing to start is the only safe answer (the node must be rebuilt from its peers).
 */
export class CorruptLogError extends StorageError {
  readonly code = 'storage/corrupt-record' as const;
  constructor(
    /** Path of the damaged segment file. */
    readonly file: string,
    /** Byte offset of the damaged record (or header) in that file. */
    readonly offset: number,
    readonly reason: string,
  ) {
    super(`corrupt log record in ${file} at offset ${offset}: ${reason}`);
  }
}

/** A state file (hard state, snapshot metadata) is damaged. */
export class CorruptStateError extends StorageError {
  readonly code = 'storage/corrupt-state' as const;
  constructor(
    readonly file: string,
    readonly reason: string,
  ) {
    super(`corrupt state file ${file}: ${reason}`);
  }
}

/** A snapshot file is damaged. */
export class CorruptSnapshotError extends StorageError {
  readonly code = 'storage/corrupt-snapshot' as const;
  constructor(
    readonly file: string,
    readonly reason: string,
  ) {
    super(`corrupt snapshot ${file}: ${reason}`);
  }
}

/** A file carries a format version newer than this build understands. */
export class UnsupportedVersionError extends StorageError {
  readonly code = 'storage/unsupported-version' as const;
  constructor(
    readonly file: string,
    readonly version: number,
  ) {
    super(`${file} has format version ${version}, newer than this build supports`);
  }
}

/**
 * A write, fsync or rename failed. After a failed fsync the kernel may have dropped the dirty
 * pages ("fsyncgate"), so retrying could report success for data that never reached the disk:
 * the storage fails every later call with this error instead.
 */
export class StorageIoError extends StorageError {
  readonly code = 'storage/io-failed' as const;
  constructor(message: string, cause: unknown) {
    super(message, { cause });
  }
}

/** The storage was used after `close()`. */
export class StorageClosedError extends StorageError {
  readonly code = 'storage/closed' as const;
  constructor() {
    super('the storage is closed');
  }
}
