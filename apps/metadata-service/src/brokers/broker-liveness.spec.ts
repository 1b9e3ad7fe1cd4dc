import { BrokerLiveness } from './broker-liveness';

function setup() {
  let now = 1_000;
  const fenced: Array<[number, number]> = [];
  let fail = false;
  const pending: Array<() => void> = [];
  const liveness = new BrokerLiveness({
    sessionTimeoutMs: 9_000,
    now: () => now,
    fence: (id, epoch) => {
      fenced.push([id, epoch]);
      return fail
        ? Promise.reject(new Error('no leader'))
        : new Promise<void>((resolve) => pending.push(resolve));
    },
    logger: { info: () => undefined, warn: () => undefined },
  });
  return {
    liveness,
    fenced,
    advance: (ms: number) => (now += ms),
    setFail: (f: boolean) => (fail = f),
    commitAll: async () => {
      for (const resolve of pending.splice(0)) resolve();
      await Promise.resolve();
    },
  };
}

describe('BrokerLiveness', () => {
  it('fences a broker whose session expired, once', async () => {
    const t = setup();
    t.liveness.becameLeader([
      { brokerId: 1, brokerEpoch: 5, fenced: false },
      { brokerId: 2, brokerEpoch: 7, fenced: false },
    ]);
    t.advance(5_000);
    t.liveness.heard(2, 7, false);
    t.advance(4_001);
    expect(t.liveness.check()).toBe(1);
    expect(t.fenced).toEqual([[1, 5]]);
    expect(t.liveness.check()).toBe(0); // already proposing
    await t.commitAll();
    t.advance(60_000);
    expect(t.liveness.check()).toBe(1); // broker 2 now; broker 1 is fenced
    expect(t.fenced).toEqual([
      [1, 5],
      [2, 7],
    ]);
  });

  it('gives every broker a fresh grace period on becoming leader', () => {
    const t = setup();
    t.liveness.becameLeader([{ brokerId: 1, brokerEpoch: 1, fenced: false }]);
    t.advance(8_000);
    t.liveness.steppedDown();
    t.advance(8_000);
    expect(t.liveness.check()).toBe(0); // not leader
    t.liveness.becameLeader([{ brokerId: 1, brokerEpoch: 1, fenced: false }]);
    t.advance(8_999);
    expect(t.liveness.check()).toBe(0);
    t.advance(2);
    expect(t.liveness.check()).toBe(1);
  });

  it('starts a new session on a new epoch and ignores fenced brokers', () => {
    const t = setup();
    t.liveness.becameLeader([{ brokerId: 1, brokerEpoch: 1, fenced: true }]);
    t.advance(20_000);
    expect(t.liveness.check()).toBe(0);
    t.liveness.heard(1, 2, false); // re-registered
    t.advance(9_001);
    expect(t.liveness.check()).toBe(1);
    expect(t.fenced).toEqual([[1, 2]]);
  });

  it('retries a fence that failed', async () => {
    const t = setup();
    t.setFail(true);
    t.liveness.becameLeader([{ brokerId: 3, brokerEpoch: 1, fenced: false }]);
    t.advance(9_001);
    expect(t.liveness.check()).toBe(1);
    await new Promise((resolve) => setImmediate(resolve));
    t.setFail(false);
    expect(t.liveness.check()).toBe(1);
    expect(t.fenced).toHaveLength(2);
  });

  it('forgets removed brokers', () => {
    const t = setup();
    t.liveness.becameLeader([{ brokerId: 1, brokerEpoch: 1, fenced: false }]);
    t.liveness.removed(1);
    t.advance(10_000);
    expect(t.liveness.check()).toBe(0);
    expect(t.liveness.sinceLastHeard(1)).toBeUndefined();
  });
});
