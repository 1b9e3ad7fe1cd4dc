import { getEventListeners } from 'node:events';
import { fullJitterBackoff, parseRetryAfter, sleep } from './backoff';

describe('fullJitterBackoff', () => {
  it('draws from [0, min(max, initial·2^(n-1)))', () => {
    expect([1, 2, 3, 4, 5].map((n) => fullJitterBackoff(n, 100, 1000, () => 0.999))).toEqual([
      99, 199, 399, 799, 999,
    ]);
    expect(fullJitterBackoff(3, 100, 1000, () => 0)).toBe(0);
  });
  it('does not overflow for large retry numbers', () => {
    expect(fullJitterBackoff(10_000, 100, 1000, () => 0.5)).toBe(500);
  });
});

describe('parseRetryAfter', () => {
  const now = Date.parse('2026-01-01T00:00:00Z');
  it.each<[string | undefined, number | undefined]>([
    [undefined, undefined],
    ['3', 3000],
    [' 0 ', 0],
    ['Thu, 01 Jan 2026 00:00:05 GMT', 5000],
    ['Wed, 31 Dec 2025 23:00:00 GMT', 0],
    ['soon', undefined],
    ['-1', undefined],
  ])('%p → %p ms', (value, ms) => {
    expect(parseRetryAfter(value, now)).toBe(ms);
  });
});

describe('sleep', () => {
  it('rejects with the reason when aborted', async () => {
    const controller = new AbortController();
    const slept = sleep(60_000, controller.signal);
    controller.abort(new Error('stop'));
    await expect(slept).rejects.toThrow('stop');
  });
  it('resolves after the delay', async () => {
    await expect(sleep(1)).resolves.toBeUndefined();
  });
  it('removes its abort listener when it resolves (a call sleeps many times on one signal)', async () => {
    const controller = new AbortController();
    for (let i = 0; i < 12; i += 1) await sleep(0, controller.signal);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });
});
