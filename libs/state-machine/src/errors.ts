/**
 * Errors the state machine throws. A command that is merely invalid is never thrown: it is
 * answered with a rejection ({@link ApplyRejection}). These classes are for programming
 * errors of the caller (applying out of order), unreadable input (a corrupt snapshot, bytes
 * that are not a command) and broken invariants (a bug in this library).
 *
 * Every class has a stable `readonly code` (`'state/…'`) that callers may branch on.
 */
export abstract class StateMachineError extends Error {
  abstract readonly code: string;

  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** An invariant of the replicated state does not hold: a bug. The process should stop. */
export class InvariantViolation extends StateMachineError {
  readonly code = 'state/invariant-violation';
}

/**
 * `apply` was called with a Raft index that is not larger than the last applied one (Raft
 * applies every committed entry exactly once, in index order: thesis §3.5).
 */
export class ApplyOrderError extends StateMachineError {
  readonly code = 'state/apply-order';
}

/** Bytes given to `decodeCommand` are not a command this release understands. */
export class CommandDecodeError extends StateMachineError {
  readonly code = 'state/command-decode';
}

/** A snapshot stream is truncated, corrupt, or of a format version this release cannot read. */
export class SnapshotFormatError extends StateMachineError {
  readonly code = 'state/snapshot-format';
}
