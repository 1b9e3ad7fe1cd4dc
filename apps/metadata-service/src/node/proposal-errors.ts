import { ErrorCode } from '@dmq/api-contracts';
import {
  LeadershipLostError,
  NodeStoppedError,
  NotLeaderError,
  ProposalDroppedError,
} from '@dmq/raft-core';
import { ApiError } from '../http/api-error';

/**
 * Maps what a Raft proposal or read can fail with onto the contract's answers:
 * refused before entering the log → 503 NO_LEADER (nothing was committed, retry);
 * entered the log but the outcome is unknown → 504 COMMIT_TIMEOUT (retry with the same
 * Idempotency-Key).
 */
export function proposalError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof ProposalDroppedError && err.reason === 'uncommitted-limit') {
    // Back-pressure: commits stall (followers slow, partitioned or with a stalled disk) and the
    // leader already holds its limit of unapplied entries. Nothing was appended: a 503 like any
    // refusal before the log, saying why, so operators look at the followers, not the leader.
    // No election ends it, so `retryLater`: Retry-After 1 although the leader is known.
    return new ApiError(
      ErrorCode.NO_LEADER,
      'not committed: the leader refuses writes until its followers catch up (too many uncommitted entries); retry later',
      { retryLater: true },
    );
  }
  if (err instanceof ProposalDroppedError && err.reason === 'conf-change-pending') {
    return new ApiError(
      ErrorCode.MEMBERSHIP_CHANGE_IN_PROGRESS,
      'another membership change is still in progress (one voter at a time); retry once it completes',
    );
  }
  if (err instanceof ProposalDroppedError && err.reason === 'invalid-conf-change') {
    return new ApiError(ErrorCode.PRECONDITION_FAILED, `membership change refused: ${err.message}`);
  }
  if (err instanceof NotLeaderError || err instanceof ProposalDroppedError) {
    return new ApiError(ErrorCode.NO_LEADER, `not committed: ${err.message}`);
  }
  if (err instanceof LeadershipLostError || err instanceof NodeStoppedError) {
    return new ApiError(
      ErrorCode.COMMIT_TIMEOUT,
      `leadership changed before the write was confirmed; it may still commit: retry with the same Idempotency-Key (${err.message})`,
    );
  }
  throw err;
}

/** Rejects with a 504 COMMIT_TIMEOUT when `promise` does not settle within `ms`. */
export function withCommitTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(
      () =>
        reject(
          new ApiError(
            ErrorCode.COMMIT_TIMEOUT,
            `not confirmed within ${ms} ms; it may still commit: retry with the same Idempotency-Key`,
          ),
        ),
      ms,
    );
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}
