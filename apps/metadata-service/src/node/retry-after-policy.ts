import { ErrorCode } from '@dmq/api-contracts';

export interface RetryAfterPolicyOptions {
  /** `DMQ_RAFT_ELECTION_TIMEOUT_MS`: the base election timeout (randomized to [t, 2t)). */
  readonly electionTimeoutMs: number;
  /** Monotonic milliseconds (tests inject a fake clock). */
  readonly now?: () => number;
}

/**
 * The one place that decides the `Retry-After` of this node's `503` answers (`NO_LEADER`,
 * `NOT_READY`), from what the node knows when it answers.
 *
 * HTTP counts `Retry-After` in whole seconds, so the smallest "later" is 1 s: three times a
 * whole failover (kill -9 of the leader → first write on the new one, ~330 ms at the default
 * timeouts). Telling every client "1" during an ordinary leader change would triple what
 * they observe; telling them "0" while no quorum exists would let them retry as fast as
 * their own backoff allows for as long as the outage lasts. So:
 *
 * - `NO_LEADER`, and a leader is expected soon → `0` (retry now; the client's own jittered
 *   exponential backoff paces the retries). "Soon" means this node knows a leader (the
 *   answer lost a race with a leader change: it is not the leader any more, or the leader
 *   it forwarded to just died and its election timer has not fired yet), or it has been
 *   without one for less than {@link settleMs}: one failed election round (a randomized
 *   timeout, < 2 election timeouts) plus as much again for the round that succeeds.
 * - `NO_LEADER`, and no leader for longer than that → `1`: the cluster most likely has no
 *   quorum (majority down or partitioned away from this node); clients wait at least 1 s.
 * - `NOT_READY` → `1`: this node already waited the commit timeout for `minVersion`.
 * - a 503 its thrower marked `retryLater` (back-pressure: no election will end it) → `1`.
 *
 * "Without a leader" starts when the node last lost the leader it knew, or when it started.
 */
export class RetryAfterPolicy {
  /** Without a leader for this long, the node stops expecting one soon. */
  readonly settleMs: number;
  private readonly now: () => number;
  /** When the node last lost its leader; undefined while it knows one. */
  private leaderlessSince: number | undefined;

  constructor(options: RetryAfterPolicyOptions) {
    this.now = options.now ?? (() => performance.now());
    this.settleMs = 4 * options.electionTimeoutMs;
    this.leaderlessSince = this.now();
  }

  /** Tells the policy the leader this node knows now (undefined: none). Call on every change. */
  leaderChanged(leaderId: number | undefined): void {
    if (leaderId !== undefined) this.leaderlessSince = undefined;
    else this.leaderlessSince ??= this.now();
  }

  /** Milliseconds this node has been without a known leader (0 while it knows one). */
  leaderlessForMs(): number {
    return this.leaderlessSince === undefined ? 0 : Math.max(0, this.now() - this.leaderlessSince);
  }

  /**
   * `Retry-After` (whole seconds) of a 503 answer with `code`, answered now; `retryLater`:
   * the error says no leader change will fix it soon (`ApiError` option).
   */
  seconds(code: ErrorCode, retryLater = false): number {
    if (code === ErrorCode.NO_LEADER && !retryLater) {
      return this.leaderlessForMs() < this.settleMs ? 0 : 1;
    }
    return 1;
  }
}

/** `Retry-After` where no policy is wired (single-process tests): the conservative 1 s. */
export const DEFAULT_RETRY_AFTER_SECONDS = 1;
