import { z } from 'zod';

/**
 * Every error code the HTTP API can answer with, as one enum (contract: "Errors are always
 * `{"error": {"code": "UPPER_SNAKE", "message": "human text"}}`"). Codes are stable: clients
 * branch on them. New codes may be added; existing ones are never renamed.
 */
export const ErrorCode = {
  /** Bad JSON, unknown fields, wrong types, out-of-range numbers, bad names. Nothing changed. */
  INVALID_REQUEST: 'INVALID_REQUEST',
  /** `DMQ_API_TOKEN` is set and the bearer token is missing or wrong. */
  UNAUTHORIZED: 'UNAUTHORIZED',
  TOPIC_NOT_FOUND: 'TOPIC_NOT_FOUND',
  BROKER_NOT_FOUND: 'BROKER_NOT_FOUND',
  PARTITION_NOT_FOUND: 'PARTITION_NOT_FOUND',
  /** No such route. */
  NOT_FOUND: 'NOT_FOUND',
  /** The route exists but not with this method. */
  METHOD_NOT_ALLOWED: 'METHOD_NOT_ALLOWED',
  TOPIC_ALREADY_EXISTS: 'TOPIC_ALREADY_EXISTS',
  /** The broker epoch in the request is older than the registered one. */
  STALE_BROKER_EPOCH: 'STALE_BROKER_EPOCH',
  /** The leader epoch in an AlterPartition is not the partition's current one. */
  STALE_LEADER_EPOCH: 'STALE_LEADER_EPOCH',
  /** A membership change is already in flight (one voter at a time). */
  MEMBERSHIP_CHANGE_IN_PROGRESS: 'MEMBERSHIP_CHANGE_IN_PROGRESS',
  /** The request body is larger than the server accepts. */
  PAYLOAD_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  /** The request body is not JSON. */
  UNSUPPORTED_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  /** More replicas than available (unfenced) brokers. */
  INVALID_REPLICATION_FACTOR: 'INVALID_REPLICATION_FACTOR',
  /** Well-formed, but not a valid partition state (ISR not a subset of replicas, leader not in ISR…). */
  INVALID_PARTITION_STATE: 'INVALID_PARTITION_STATE',
  /** The same `Idempotency-Key` was used with a different request. */
  IDEMPOTENCY_KEY_REUSED: 'IDEMPOTENCY_KEY_REUSED',
  /** The cluster cannot do this now (e.g. backup disabled, target not a voter). */
  PRECONDITION_FAILED: 'PRECONDITION_FAILED',
  /** No leader is known: nothing was committed. Comes with `Retry-After`. */
  NO_LEADER: 'NO_LEADER',
  /** The node is up but cannot serve yet (still replaying or catching up). */
  NOT_READY: 'NOT_READY',
  /** The write was proposed but its outcome is unknown: retry with the same `Idempotency-Key`. */
  COMMIT_TIMEOUT: 'COMMIT_TIMEOUT',
  /** A bug or an unexpected failure inside the server. */
  INTERNAL_ERROR: 'INTERNAL_ERROR',
} as const;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

const allCodes = Object.values(ErrorCode) as [ErrorCode, ...ErrorCode[]];

/** HTTP status of each error code: the one place this mapping lives. */
export const ERROR_HTTP_STATUS: Readonly<Record<ErrorCode, number>> = Object.freeze({
  INVALID_REQUEST: 400,
  UNAUTHORIZED: 401,
  TOPIC_NOT_FOUND: 404,
  BROKER_NOT_FOUND: 404,
  PARTITION_NOT_FOUND: 404,
  NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  TOPIC_ALREADY_EXISTS: 409,
  STALE_BROKER_EPOCH: 409,
  STALE_LEADER_EPOCH: 409,
  MEMBERSHIP_CHANGE_IN_PROGRESS: 409,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  INVALID_REPLICATION_FACTOR: 422,
  INVALID_PARTITION_STATE: 422,
  IDEMPOTENCY_KEY_REUSED: 422,
  PRECONDITION_FAILED: 412,
  NO_LEADER: 503,
  NOT_READY: 503,
  COMMIT_TIMEOUT: 504,
  INTERNAL_ERROR: 500,
});

/** Whether a client may safely retry a request that failed with this code (same `Idempotency-Key`). */
export function isRetryableErrorCode(code: ErrorCode): boolean {
  return (
    code === ErrorCode.NO_LEADER ||
    code === ErrorCode.NOT_READY ||
    code === ErrorCode.COMMIT_TIMEOUT
  );
}

export const errorCodeSchema = z.enum(allCodes);

/** A field-level problem reported with `INVALID_REQUEST`. */
export const fieldIssueSchema = z.strictObject({
  path: z.string(),
  message: z.string(),
});
export type FieldIssue = z.infer<typeof fieldIssueSchema>;

/** The body of every error answer. */
export const errorBodySchema = z.strictObject({
  error: z.strictObject({
    code: errorCodeSchema,
    message: z.string(),
    /** Present on `INVALID_REQUEST`: which fields were wrong and why. */
    issues: z.array(fieldIssueSchema).optional(),
  }),
});
export type ErrorBody = z.infer<typeof errorBodySchema>;
