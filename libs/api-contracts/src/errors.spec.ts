import { ERROR_HTTP_STATUS, ErrorCode, errorCodeSchema, isRetryableErrorCode } from './errors';

describe('error codes', () => {
  it('gives every code an HTTP status and the contract its documented ones', () => {
    for (const code of Object.values(ErrorCode)) {
      expect(ERROR_HTTP_STATUS[code]).toBeGreaterThanOrEqual(400);
    }
    expect(ERROR_HTTP_STATUS.INVALID_REQUEST).toBe(400);
    expect(ERROR_HTTP_STATUS.UNAUTHORIZED).toBe(401);
    expect(ERROR_HTTP_STATUS.TOPIC_NOT_FOUND).toBe(404);
    expect(ERROR_HTTP_STATUS.BROKER_NOT_FOUND).toBe(404);
    expect(ERROR_HTTP_STATUS.TOPIC_ALREADY_EXISTS).toBe(409);
    expect(ERROR_HTTP_STATUS.STALE_BROKER_EPOCH).toBe(409);
    expect(ERROR_HTTP_STATUS.STALE_LEADER_EPOCH).toBe(409);
    expect(ERROR_HTTP_STATUS.PAYLOAD_TOO_LARGE).toBe(413);
    expect(ERROR_HTTP_STATUS.INVALID_REPLICATION_FACTOR).toBe(422);
    expect(ERROR_HTTP_STATUS.IDEMPOTENCY_KEY_REUSED).toBe(422);
    expect(ERROR_HTTP_STATUS.NO_LEADER).toBe(503);
    expect(ERROR_HTTP_STATUS.COMMIT_TIMEOUT).toBe(504);
  });
  it('uses UPPER_SNAKE names equal to their values', () => {
    for (const [name, value] of Object.entries(ErrorCode)) {
      expect(value).toBe(name);
      expect(value).toMatch(/^[A-Z]+(_[A-Z]+)*$/);
      expect(errorCodeSchema.parse(value)).toBe(value);
    }
  });
  it('marks exactly the outcome-unknown and no-leader codes retryable', () => {
    const retryable = Object.values(ErrorCode).filter(isRetryableErrorCode).sort();
    expect(retryable).toEqual(['COMMIT_TIMEOUT', 'NOT_READY', 'NO_LEADER']);
  });
});
