/**
 * Stable codes of the errors this library throws. Callers branch on `code`, never on
 * messages or classes from another realm.
 */
export type PersistenceErrorCode =
  | 'persistence/invalid-options'
  | 'persistence/migration-checksum-mismatch'
  | 'persistence/migration-failed-previously'
  | 'persistence/migration-failed'
  | 'persistence/migration-lock-timeout'
  | 'persistence/missing-migrations'
  | 'persistence/invalid-backup-row'
  | 'persistence/backup-cluster-mismatch'
  | 'persistence/stale-generation'
  | 'persistence/backup-queue-closed';

/** Base class of every error of `@dmq/persistence-prisma`; `code` is stable and documented. */
export class PersistenceError extends Error {
  override readonly name: string = 'PersistenceError';

  constructor(
    readonly code: PersistenceErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** True when `error` is a {@link PersistenceError} with the given code. */
export function isPersistenceError(
  error: unknown,
  code?: PersistenceErrorCode,
): error is PersistenceError {
  return error instanceof PersistenceError && (code === undefined || error.code === code);
}
