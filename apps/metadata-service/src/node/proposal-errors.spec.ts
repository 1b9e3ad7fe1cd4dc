import { LeadershipLostError, NotLeaderError, ProposalDroppedError } from '@dmq/raft-core';
import { ApiError } from '../http/api-error';
import { proposalError, withCommitTimeout } from './proposal-errors';

describe('proposalError', () => {
  it.each([
    [new NotLeaderError(2), 'NO_LEADER', 503],
    [new ProposalDroppedError('transfer-in-progress', 'transferring'), 'NO_LEADER', 503],
    [new ProposalDroppedError('uncommitted-limit'), 'NO_LEADER', 503],
    [
      new ProposalDroppedError('conf-change-pending', 'pending'),
      'MEMBERSHIP_CHANGE_IN_PROGRESS',
      409,
    ],
    [new ProposalDroppedError('invalid-conf-change', 'bad'), 'PRECONDITION_FAILED', 412],
    [new LeadershipLostError(7, 3, false), 'COMMIT_TIMEOUT', 504],
  ])('maps %s to %s', (err, code, status) => {
    const mapped = proposalError(err);
    expect(mapped).toBeInstanceOf(ApiError);
    expect(mapped.code).toBe(code);
    expect(mapped.status).toBe(status);
  });

  it('says why when the leader sheds load because commits stall', () => {
    const mapped = proposalError(new ProposalDroppedError('uncommitted-limit'));
    expect(mapped.message).toMatch(/^not committed: .*followers catch up/);
    // Retry-After 1 (RetryAfterPolicy) although a leader is known: no election ends it.
    expect(mapped.options.retryLater).toBe(true);
    expect(proposalError(new NotLeaderError(2)).options.retryLater).toBeUndefined();
  });

  it('passes ApiErrors through and rethrows anything else', () => {
    const apiError = new ApiError('TOPIC_NOT_FOUND', 'x');
    expect(proposalError(apiError)).toBe(apiError);
    expect(() => proposalError(new TypeError('bug'))).toThrow(TypeError);
  });
});

describe('withCommitTimeout', () => {
  it('answers 504 COMMIT_TIMEOUT when the promise does not settle in time', async () => {
    await expect(withCommitTimeout(new Promise(() => undefined), 5)).rejects.toMatchObject({
      code: 'COMMIT_TIMEOUT',
    });
  });
  it('passes values and errors through', async () => {
    await expect(withCommitTimeout(Promise.resolve(4), 1_000)).resolves.toBe(4);
    await expect(withCommitTimeout(Promise.reject(new Error('no')), 1_000)).rejects.toThrow('no');
  });
});
