import type { ErrorCode, FieldIssue } from '@dmq/api-contracts';

/**
 * Stable codes of the errors the client raises itself (the server's codes are
 * {@link ErrorCode}s, carried by {@link MetadataApiError}).
 */
export const ClientErrorCode = {
  /** A constructor option or a call argument is invalid; nothing was sent. */
  invalidArgument: 'client/invalid-argument',
  /** An answer that does not follow the contract (bad JSON, schema mismatch). */
  protocol: 'client/protocol-error',
  /** A connection-level failure (refused, reset, socket timeout…), retries exhausted or not retryable. */
  transport: 'client/transport-error',
  /** The nodes kept answering `503` (no leader / not ready) until retries ran out. */
  noLeader: 'client/no-leader',
  /** The call's overall deadline passed. */
  deadlineExceeded: 'client/deadline-exceeded',
  /** The caller's `AbortSignal` fired. */
  aborted: 'client/aborted',
  /** `close()` was called. */
  closed: 'client/closed',
} as const;
export type ClientErrorCode = (typeof ClientErrorCode)[keyof typeof ClientErrorCode];

/** Facts about the failed call that every error of the client carries when it has them. */
export interface CallFacts {
  /** HTTP attempts made (0 when none was sent). */
  readonly attempts?: number;
  /**
   * The `Idempotency-Key` the call was sent with: a retry of the same call with this key
   * returns the original outcome instead of applying the write twice.
   */
  readonly idempotencyKey?: string;
  /** The underlying failure, e.g. the last {@link MetadataApiError} or socket error. */
  readonly cause?: unknown;
}

/**
 * Base class of every error this client throws. Branch on `code`: a server error code
 * ({@link ErrorCode}, on {@link MetadataApiError}) or a {@link ClientErrorCode}.
 */
export abstract class MetadataClientError extends Error {
  abstract readonly code: ErrorCode | ClientErrorCode;
  /** HTTP attempts made for the call (when known). */
  readonly attempts: number | undefined;
  /** The `Idempotency-Key` the call carried, if any (retry the call with it). */
  readonly idempotencyKey: string | undefined;

  protected constructor(message: string, facts: CallFacts = {}) {
    super(message, facts.cause === undefined ? undefined : { cause: facts.cause });
    this.name = new.target.name;
    this.attempts = facts.attempts;
    this.idempotencyKey = facts.idempotencyKey;
  }
}

/** Details of an error answer. */
export interface ApiErrorDetails extends CallFacts {
  readonly status: number;
  readonly issues?: readonly FieldIssue[];
  /** Leader id the answering node named in `X-DMQ-Leader`, if any. */
  readonly leaderId?: number;
  /** `Retry-After` of the answer, in milliseconds. */
  readonly retryAfterMs?: number;
  /** Base URL of the node that answered. */
  readonly node?: string;
}

/**
 * The server answered with a contract error body `{"error": {"code", "message", "issues"?}}`.
 * `code` is the server's stable {@link ErrorCode}; `status` the HTTP status.
 *
 * A `COMMIT_TIMEOUT` means the outcome of the write is unknown: retry the call with the same
 * {@link MetadataClientError.idempotencyKey} to learn it.
 */
export class MetadataApiError extends MetadataClientError {
  readonly code: ErrorCode;
  readonly status: number;
  /** Field-level problems (on `INVALID_REQUEST`); empty when the server sent none. */
  readonly issues: readonly FieldIssue[];
  readonly leaderId: number | undefined;
  readonly retryAfterMs: number | undefined;
  readonly node: string | undefined;

  constructor(code: ErrorCode, message: string, details: ApiErrorDetails) {
    super(message, details);
    this.code = code;
    this.status = details.status;
    this.issues = details.issues ?? [];
    this.leaderId = details.leaderId;
    this.retryAfterMs = details.retryAfterMs;
    this.node = details.node;
  }
}

/** An answer broke the contract: not JSON, or not the shape of the response schema. */
export class ProtocolError extends MetadataClientError {
  readonly code = ClientErrorCode.protocol;
  /** HTTP status of the offending answer. */
  readonly status: number;
  /** What did not match the schema (dotted paths), empty for non-JSON answers. */
  readonly issues: readonly FieldIssue[];
  readonly node: string;

  constructor(
    message: string,
    details: CallFacts & { status: number; node: string; issues?: readonly FieldIssue[] },
  ) {
    super(message, details);
    this.status = details.status;
    this.issues = details.issues ?? [];
    this.node = details.node;
  }
}

/**
 * The request failed below HTTP (connection refused or reset, DNS, per-request timeout)
 * and could not be retried, or retries ran out. `cause` is the last socket error and
 * `causeCode` its Node error code (`ECONNREFUSED`, `ECONNRESET`, `ETIMEDOUT`…).
 */
export class TransportError extends MetadataClientError {
  readonly code = ClientErrorCode.transport;
  readonly causeCode: string | undefined;
  constructor(message: string, facts: CallFacts & { causeCode?: string }) {
    super(message, facts);
    this.causeCode = facts.causeCode;
  }
}

/**
 * The cluster kept answering `503` (`NO_LEADER` or `NOT_READY`: nothing was committed) until
 * retries ran out. `cause` is the last {@link MetadataApiError}.
 */
export class NoLeaderError extends MetadataClientError {
  readonly code = ClientErrorCode.noLeader;
  constructor(message: string, facts: CallFacts) {
    super(message, facts);
  }
}

/** The call's overall deadline passed; `cause` is the last failure, if there was one. */
export class DeadlineExceededError extends MetadataClientError {
  readonly code = ClientErrorCode.deadlineExceeded;
  constructor(message: string, facts: CallFacts) {
    super(message, facts);
  }
}

/** The caller's `AbortSignal` fired; `cause` is the signal's reason. */
export class AbortError extends MetadataClientError {
  readonly code = ClientErrorCode.aborted;
  constructor(message: string, facts: CallFacts) {
    super(message, facts);
  }
}

/** The client was closed before or while the call ran. */
export class ClientClosedError extends MetadataClientError {
  readonly code = ClientErrorCode.closed;
  constructor(facts: CallFacts = {}) {
    super('the metadata client is closed', facts);
  }
}

/** A constructor option or call argument is invalid; the message names it and the rule. */
export class InvalidArgumentError extends MetadataClientError {
  readonly code = ClientErrorCode.invalidArgument;
  constructor(message: string) {
    super(message);
  }
}

/** Whether `error` is a {@link MetadataApiError}, optionally with the given server code. */
export function isMetadataApiError(error: unknown, code?: ErrorCode): error is MetadataApiError {
  return error instanceof MetadataApiError && (code === undefined || error.code === code);
}
