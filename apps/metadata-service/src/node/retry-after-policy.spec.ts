import { ErrorCode } from '@dmq/api-contracts';
import { RetryAfterPolicy } from './retry-after-policy';

describe('RetryAfterPolicy', () => {
  let clock: number;
  let policy: RetryAfterPolicy;
  const advance = (ms: number) => {
    clock += ms;
  };

  beforeEach(() => {
    clock = 1_000;
    policy = new RetryAfterPolicy({ electionTimeoutMs: 250, now: () => clock });
  });

  it('waits for a leader for four election timeouts: one failed round and a successful one', () => {
    expect(policy.settleMs).toBe(1_000);
  });

  it('answers NO_LEADER with 0 while a leader is known (a race with a leader change)', () => {
    policy.leaderChanged(2);
    advance(60_000);
    expect(policy.seconds(ErrorCode.NO_LEADER)).toBe(0);
    expect(policy.leaderlessForMs()).toBe(0);
  });

  it('answers NO_LEADER with 0 during an election, and 1 once no leader came for settleMs', () => {
    policy.leaderChanged(2);
    advance(5_000);
    policy.leaderChanged(undefined); // its election timer fired: pre-candidate
    expect(policy.seconds(ErrorCode.NO_LEADER)).toBe(0);
    advance(999);
    expect(policy.seconds(ErrorCode.NO_LEADER)).toBe(0);
    advance(1);
    expect(policy.seconds(ErrorCode.NO_LEADER)).toBe(1);
    advance(3_600_000); // a lasting loss of quorum stays at 1
    expect(policy.seconds(ErrorCode.NO_LEADER)).toBe(1);
  });

  it('counts from the first loss: role changes without a leader do not restart the clock', () => {
    policy.leaderChanged(2);
    policy.leaderChanged(undefined); // pre-candidate
    advance(600);
    policy.leaderChanged(undefined); // candidate, then pre-candidate again…
    advance(600);
    policy.leaderChanged(undefined);
    expect(policy.leaderlessForMs()).toBe(1_200);
    expect(policy.seconds(ErrorCode.NO_LEADER)).toBe(1);
  });

  it('expects a leader again as soon as one is known, and restarts the clock at the next loss', () => {
    policy.leaderChanged(undefined);
    advance(10_000);
    expect(policy.seconds(ErrorCode.NO_LEADER)).toBe(1);
    policy.leaderChanged(3);
    expect(policy.seconds(ErrorCode.NO_LEADER)).toBe(0);
    advance(10_000);
    policy.leaderChanged(undefined);
    advance(500);
    expect(policy.seconds(ErrorCode.NO_LEADER)).toBe(0);
  });

  it('counts a node that never knew a leader as leaderless since it started', () => {
    expect(policy.seconds(ErrorCode.NO_LEADER)).toBe(0);
    advance(1_000);
    expect(policy.seconds(ErrorCode.NO_LEADER)).toBe(1);
  });

  it('answers a NO_LEADER marked retryLater (back-pressure) with 1 even while a leader is known', () => {
    policy.leaderChanged(1);
    expect(policy.seconds(ErrorCode.NO_LEADER, true)).toBe(1);
    expect(policy.seconds(ErrorCode.NO_LEADER)).toBe(0);
  });

  it('answers NOT_READY with 1: this node already waited the commit timeout', () => {
    policy.leaderChanged(1);
    expect(policy.seconds(ErrorCode.NOT_READY)).toBe(1);
  });
});
