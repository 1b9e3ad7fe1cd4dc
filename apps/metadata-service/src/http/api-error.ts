import {
  ERROR_HTTP_STATUS,
  type ErrorBody,
  type ErrorCode,
  type FieldIssue,
} from '@dmq/api-contracts';

/**
 * An error the API answers with: a contract error code, a human message and, for
 * `INVALID_REQUEST`, the offending fields. Its HTTP status comes from the contract's
 * code → status table, in one place (the error middleware), and so does the `Retry-After`
 * of a 503 (from the node's `RetryAfterPolicy`).
 */
export class ApiError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly options: {
      readonly issues?: readonly FieldIssue[];
      /**
       * A 503 that no leader change will fix soon (back-pressure): its `Retry-After` is the
       * policy's "later" value whatever the node knows of the leader.
       */
      readonly retryLater?: boolean;
    } = {},
  ) {
    super(message);
    this.name = 'ApiError';
  }

  get status(): number {
    return ERROR_HTTP_STATUS[this.code];
  }

  toBody(): ErrorBody {
    return {
      error: {
        code: this.code,
        message: this.message,
        ...(this.options.issues === undefined ? {} : { issues: [...this.options.issues] }),
      },
    };
  }
}
