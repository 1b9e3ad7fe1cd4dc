import { brokerInfoSchema, ErrorCode } from '@dmq/api-contracts';
import { at, defined, Harness, T0 } from './harness.test-util';

describe('RegisterBroker', () => {
  it('registers an ONLINE broker with a new epoch: the entry index', () => {
    const h = new Harness();
    h.sm.advance(41);
    h.index = 41;
    expect(
      h.ok({ type: 'RegisterBroker', brokerId: 7, host: '10.0.0.7', port: 9192, rack: 'a' }),
    ).toEqual({ brokerId: 7, brokerEpoch: 42 });
    const info = h.sm.broker(7);
    expect(brokerInfoSchema.parse(info)).toEqual({
      brokerId: 7,
      host: '10.0.0.7',
      port: 9192,
      rack: 'a',
      brokerEpoch: 42,
      status: 'ONLINE',
      lastHeartbeatAt: new Date(T0).toISOString(),
      pushEndpoint: null,
    });
  });

  it('gives every registration a larger epoch and may register fenced', () => {
    const h = new Harness();
    const first = h.register(1);
    const second = h.register(1);
    expect(second).toBeGreaterThan(first);
    h.ok({
      type: 'RegisterBroker',
      brokerId: 2,
      host: 'h',
      port: 1,
      fenced: true,
      pushEndpoint: 'http://h:8080/notify',
    });
    expect(h.sm.broker(2)).toMatchObject({
      status: 'FENCED',
      pushEndpoint: 'http://h:8080/notify',
    });
  });

  it('ends the previous incarnation: it leaves the ISRs and loses its leaderships', () => {
    const h = new Harness();
    [1, 2, 3].forEach((id) => h.register(id));
    h.createTopic('t', 3, 3);
    const led = h.sm.partitionsLedBy(1);
    expect(led.length).toBe(1);
    const before = at(led, 0);
    h.register(1);
    const after = h.part('t', before.partition);
    expect(after.leader).not.toBe(1);
    expect(after.isr).not.toContain(1);
    expect(after.leaderEpoch).toBe(before.leaderEpoch + 1);
    expect(h.sm.broker(1)?.status).toBe('ONLINE');
    h.sm.assertInvariants();
  });
});

describe('BrokerHeartbeat', () => {
  it('records the offsets the leader reports and ignores the others', () => {
    const h = new Harness();
    [1, 2].forEach((id) => h.register(id));
    h.createTopic('t', 2, 2);
    const leaderOf0 = h.part('t', 0).leader;
    const follower = leaderOf0 === 1 ? 2 : 1;
    h.now += 5000;
    const value = h.ok({
      type: 'BrokerHeartbeat',
      brokerId: leaderOf0,
      brokerEpoch: h.epochOf(leaderOf0),
      offsets: [
        { topic: 't', partition: 0, startOffset: 3, endOffset: 10 },
        { topic: 't', partition: 1, startOffset: 7, endOffset: 8 },
        { topic: 'gone', partition: 0, startOffset: 1, endOffset: 2 },
      ],
    });
    expect(value).toEqual({ status: 'ONLINE', metadataVersion: h.index });
    expect(h.part('t', 0)).toMatchObject({ startOffset: 3, endOffset: 10 });
    // Partition 1 is led by the other broker: its report would come from it.
    expect(h.part('t', 1)).toMatchObject({ startOffset: 0, endOffset: 0 });
    expect(h.sm.broker(leaderOf0)?.lastHeartbeatAt).toBe(new Date(h.now).toISOString());
    expect(h.sm.broker(follower)?.lastHeartbeatAt).toBe(new Date(T0).toISOString());
  });

  it('answers FENCED to a fenced broker', () => {
    const h = new Harness();
    h.register(1);
    h.ok({ type: 'FenceBroker', brokerId: 1 });
    expect(h.ok({ type: 'BrokerHeartbeat', brokerId: 1, brokerEpoch: h.epochOf(1) })).toEqual({
      status: 'FENCED',
      metadataVersion: h.index,
    });
  });

  it('rejects an unknown broker and a stale epoch', () => {
    const h = new Harness();
    h.register(1);
    h.rejected(
      { type: 'BrokerHeartbeat', brokerId: 2, brokerEpoch: 1 },
      ErrorCode.BROKER_NOT_FOUND,
    );
    const old = h.epochOf(1);
    h.register(1);
    expect(
      h.rejected(
        { type: 'BrokerHeartbeat', brokerId: 1, brokerEpoch: old },
        ErrorCode.STALE_BROKER_EPOCH,
      ),
    ).toContain(`${old}`);
  });
});

describe('FenceBroker', () => {
  it('removes the broker from every ISR and moves its leaderships to the next ISR member', () => {
    const h = new Harness();
    [1, 2, 3].forEach((id) => h.register(id));
    h.createTopic('t', 6, 3);
    const led = h.sm.partitionsLedBy(2);
    expect(led.length).toBe(2);
    h.ok({ type: 'FenceBroker', brokerId: 2, brokerEpoch: h.epochOf(2) });
    for (const before of led) {
      const after = h.part('t', before.partition);
      const expected = before.replicas.find((id) => id !== 2);
      expect(after.leader).toBe(expected);
      expect(after.leaderEpoch).toBe(before.leaderEpoch + 1);
      expect(after.partitionEpoch).toBe(before.partitionEpoch + 1);
    }
    for (const p of h.parts('t')) expect(p.isr).not.toContain(2);
    expect(h.sm.partitionsLedBy(2)).toEqual([]);
    expect(h.sm.broker(2)?.status).toBe('FENCED');
    h.sm.assertInvariants();
  });

  it('leaves a partition leaderless when its last ISR member is fenced, keeping that member', () => {
    const h = new Harness();
    h.register(1);
    h.createTopic('t', 1, 1);
    h.ok({ type: 'FenceBroker', brokerId: 1 });
    expect(h.part('t')).toMatchObject({ leader: -1, isr: [1], leaderEpoch: 1, partitionEpoch: 1 });
  });

  it('elects an out-of-sync replica when the topic allows unclean election', () => {
    const h = new Harness();
    [1, 2].forEach((id) => h.register(id));
    h.createTopic('t', 1, 2, { 'unclean.leader.election.enable': 'true' });
    const { leader, replicas } = h.part('t');
    const other = defined(replicas.find((id) => id !== leader));
    // The leader drops the follower from the ISR, then dies.
    h.ok({
      type: 'AlterPartition',
      topic: 't',
      partition: 0,
      brokerId: leader,
      brokerEpoch: h.epochOf(leader),
      leaderEpoch: 0,
      isr: [leader],
    });
    h.ok({ type: 'FenceBroker', brokerId: leader });
    expect(h.part('t')).toMatchObject({ leader: other, isr: [other], leaderEpoch: 1 });
  });

  it('is a no-op on a fenced broker and rejects unknown brokers and stale epochs', () => {
    const h = new Harness();
    h.register(1);
    h.ok({ type: 'FenceBroker', brokerId: 1 });
    const state = h.stateText();
    h.ok({ type: 'FenceBroker', brokerId: 1 });
    expect(h.stateText()).toBe(state);
    h.rejected({ type: 'FenceBroker', brokerId: 9 }, ErrorCode.BROKER_NOT_FOUND);
    h.rejected(
      { type: 'FenceBroker', brokerId: 1, brokerEpoch: 999 },
      ErrorCode.STALE_BROKER_EPOCH,
    );
  });
});

describe('UnfenceBroker', () => {
  it('restores no ISR membership but leads the leaderless partitions it is in the ISR of', () => {
    const h = new Harness();
    [1, 2].forEach((id) => h.register(id));
    h.createTopic('solo', 1, 1);
    h.createTopic('pair', 2, 2);
    const soloOwner = h.part('solo').leader;
    const other = soloOwner === 1 ? 2 : 1;
    h.ok({ type: 'FenceBroker', brokerId: soloOwner });
    expect(h.part('solo').leader).toBe(-1);
    h.ok({ type: 'UnfenceBroker', brokerId: soloOwner, brokerEpoch: h.epochOf(soloOwner) });
    expect(h.part('solo')).toMatchObject({ leader: soloOwner, isr: [soloOwner], leaderEpoch: 2 });
    for (const p of h.parts('pair')) {
      expect(p.isr).toEqual([other]);
      expect(p.leader).toBe(other);
    }
    h.sm.assertInvariants();
  });

  it('rejects unknown brokers and stale epochs', () => {
    const h = new Harness();
    h.register(1);
    h.rejected({ type: 'UnfenceBroker', brokerId: 2, brokerEpoch: 1 }, ErrorCode.BROKER_NOT_FOUND);
    h.rejected(
      { type: 'UnfenceBroker', brokerId: 1, brokerEpoch: 0 },
      ErrorCode.STALE_BROKER_EPOCH,
    );
  });
});

describe('ControlledShutdown', () => {
  it('moves leadership away, leaves the ISRs and fences the broker', () => {
    const h = new Harness();
    [1, 2, 3].forEach((id) => h.register(id));
    h.createTopic('t', 3, 2);
    h.ok({ type: 'ControlledShutdown', brokerId: 1, brokerEpoch: h.epochOf(1) });
    expect(h.sm.partitionsLedBy(1)).toEqual([]);
    for (const p of h.parts('t')) {
      expect(p.isr).not.toContain(1);
      expect(p.leader).not.toBe(-1);
    }
    expect(h.sm.broker(1)?.status).toBe('FENCED');
  });

  it('rejects unknown brokers and stale epochs', () => {
    const h = new Harness();
    h.register(1);
    h.rejected(
      { type: 'ControlledShutdown', brokerId: 5, brokerEpoch: 1 },
      ErrorCode.BROKER_NOT_FOUND,
    );
    h.rejected(
      { type: 'ControlledShutdown', brokerId: 1, brokerEpoch: 0 },
      ErrorCode.STALE_BROKER_EPOCH,
    );
  });
});

describe('UnregisterBroker', () => {
  it('moves leadership first, then removes the broker from the brokers and every replica list', () => {
    const h = new Harness();
    [1, 2, 3].forEach((id) => h.register(id));
    h.createTopic('t', 3, 3);
    h.ok({ type: 'UnregisterBroker', brokerId: 3 });
    expect(h.sm.broker(3)).toBeUndefined();
    for (const p of h.parts('t')) {
      expect(p.replicas).not.toContain(3);
      expect(p.isr).not.toContain(3);
      expect([1, 2]).toContain(p.leader);
    }
    h.sm.assertInvariants();
  });

  it('leaves a partition whose only replica it was with no replicas and no leader', () => {
    const h = new Harness();
    h.register(1);
    h.createTopic('t', 1, 1);
    h.ok({ type: 'UnregisterBroker', brokerId: 1, brokerEpoch: h.epochOf(1) });
    expect(h.part('t')).toMatchObject({ leader: -1, replicas: [], isr: [] });
    h.sm.assertInvariants();
  });

  it('rejects unknown brokers and stale epochs', () => {
    const h = new Harness();
    h.register(1);
    h.rejected({ type: 'UnregisterBroker', brokerId: 2 }, ErrorCode.BROKER_NOT_FOUND);
    h.rejected(
      { type: 'UnregisterBroker', brokerId: 1, brokerEpoch: 0 },
      ErrorCode.STALE_BROKER_EPOCH,
    );
  });
});
