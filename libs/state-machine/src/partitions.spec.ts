import { ErrorCode, type PartitionInfo } from '@dmq/api-contracts';
import type { ElectLeadersValue, ReassignPartitionsValue } from './apply-result';
import { at, Harness } from './harness.test-util';

/** Three brokers and topic `t` with one partition on replicas [1, 2, 3] (leader 1). */
function cluster(): Harness {
  const h = new Harness();
  [1, 2, 3].forEach((id) => h.register(id));
  h.createTopic('t', 1, 3);
  expect(h.part('t').replicas).toEqual([1, 2, 3]);
  return h;
}

function alter(
  h: Harness,
  isr: number[],
  overrides: Partial<{
    brokerId: number;
    brokerEpoch: number;
    leaderEpoch: number;
    partition: number;
    topic: string;
  }> = {},
) {
  const p = h.part('t');
  return {
    type: 'AlterPartition' as const,
    topic: 't',
    partition: 0,
    brokerId: p.leader,
    brokerEpoch: h.epochOf(p.leader),
    leaderEpoch: p.leaderEpoch,
    isr,
    ...overrides,
  };
}

describe('AlterPartition', () => {
  it('shrinks and expands the ISR, bumping only the partition epoch', () => {
    const h = cluster();
    const shrunk = h.ok<PartitionInfo>(alter(h, [3, 1]));
    expect(shrunk).toMatchObject({ leader: 1, isr: [1, 3], leaderEpoch: 0, partitionEpoch: 1 });
    const expanded = h.ok<PartitionInfo>(alter(h, [1, 2, 3]));
    expect(expanded).toMatchObject({ isr: [1, 2, 3], leaderEpoch: 0, partitionEpoch: 2 });
    // The same ISR again changes nothing.
    expect(h.ok<PartitionInfo>(alter(h, [1, 2, 3])).partitionEpoch).toBe(2);
  });

  it('rejects each invalid request', () => {
    const h = cluster();
    h.rejected(alter(h, [1], { topic: 'nope' }), ErrorCode.TOPIC_NOT_FOUND);
    h.rejected(alter(h, [1], { partition: 5 }), ErrorCode.PARTITION_NOT_FOUND);
    h.rejected(alter(h, [1], { brokerId: 9 }), ErrorCode.BROKER_NOT_FOUND);
    h.rejected(alter(h, [1], { brokerEpoch: 0 }), ErrorCode.STALE_BROKER_EPOCH);
    h.rejected(alter(h, [1], { leaderEpoch: 7 }), ErrorCode.STALE_LEADER_EPOCH);
    expect(
      h.rejected(
        alter(h, [2], { brokerId: 2, brokerEpoch: h.epochOf(2) }),
        ErrorCode.INVALID_PARTITION_STATE,
      ),
    ).toContain('not the leader');
    expect(h.rejected(alter(h, [2, 3]), ErrorCode.INVALID_PARTITION_STATE)).toContain(
      'contain the leader',
    );
    h.register(4);
    expect(h.rejected(alter(h, [1, 4]), ErrorCode.INVALID_PARTITION_STATE)).toContain(
      'not a replica',
    );
    h.ok(alter(h, [1, 2]));
    h.ok({ type: 'FenceBroker', brokerId: 3 });
    expect(h.rejected(alter(h, [1, 2, 3]), ErrorCode.INVALID_PARTITION_STATE)).toContain('fenced');
  });

  it('is fenced by the leader epoch after a leader change', () => {
    const h = cluster();
    const stale = alter(h, [1, 2]);
    h.ok({ type: 'FenceBroker', brokerId: 1 });
    h.ok({ type: 'UnfenceBroker', brokerId: 1, brokerEpoch: h.epochOf(1) });
    // Broker 2 leads now (leader epoch 1); requests made under leader epoch 0 are stale.
    h.rejected(stale, ErrorCode.STALE_LEADER_EPOCH);
    h.rejected({ ...stale, brokerId: 2, brokerEpoch: h.epochOf(2) }, ErrorCode.STALE_LEADER_EPOCH);
    expect(h.ok<PartitionInfo>(alter(h, [2, 3, 1])).isr).toEqual([1, 2, 3]);
  });
});

describe('ElectLeaders', () => {
  it('preferred: moves leadership back to the first replica once it is in the ISR', () => {
    const h = cluster();
    h.ok({ type: 'FenceBroker', brokerId: 1 });
    expect(h.part('t').leader).toBe(2);
    h.ok({ type: 'UnfenceBroker', brokerId: 1, brokerEpoch: h.epochOf(1) });
    // Not in the ISR yet: nothing to do.
    let value = h.ok<ElectLeadersValue>({ type: 'ElectLeaders', electionType: 'preferred' });
    expect(value.partitions).toEqual([{ topic: 't', partition: 0, leader: 2, elected: false }]);
    h.ok(alter(h, [1, 2, 3]));
    value = h.ok<ElectLeadersValue>({
      type: 'ElectLeaders',
      electionType: 'preferred',
      partitions: [{ topic: 't', partition: 0 }],
    });
    expect(value.partitions).toEqual([{ topic: 't', partition: 0, leader: 1, elected: true }]);
    expect(h.part('t')).toMatchObject({ leader: 1, leaderEpoch: 2 });
  });

  it('unclean: gives a leaderless partition an out-of-sync replica', () => {
    const h = cluster();
    h.ok(alter(h, [1]));
    h.ok({ type: 'FenceBroker', brokerId: 1 });
    expect(h.part('t')).toMatchObject({ leader: -1, isr: [1] });
    const value = h.ok<ElectLeadersValue>({ type: 'ElectLeaders', electionType: 'unclean' });
    expect(value.partitions).toEqual([{ topic: 't', partition: 0, leader: 2, elected: true }]);
    expect(h.part('t')).toMatchObject({ leader: 2, isr: [2] });
    h.sm.assertInvariants();
  });

  it('rejects unknown topics and partitions', () => {
    const h = cluster();
    h.rejected(
      {
        type: 'ElectLeaders',
        electionType: 'preferred',
        partitions: [{ topic: 'x', partition: 0 }],
      },
      ErrorCode.TOPIC_NOT_FOUND,
    );
    h.rejected(
      { type: 'ElectLeaders', electionType: 'unclean', partitions: [{ topic: 't', partition: 1 }] },
      ErrorCode.PARTITION_NOT_FOUND,
    );
  });
});

describe('ReassignPartitions', () => {
  it('replicates to old and new replicas until the new ones are in the ISR, then drops the old', () => {
    const h = cluster();
    h.register(4);
    const started = h.ok<ReassignPartitionsValue>({
      type: 'ReassignPartitions',
      partitions: [{ topic: 't', partition: 0, replicas: [4, 2, 3] }],
    });
    expect(at(started.partitions, 0)).toMatchObject({
      replicas: [4, 2, 3, 1],
      isr: [2, 3, 1],
      leader: 1,
    });
    const done = h.ok<PartitionInfo>(alter(h, [1, 2, 3, 4]));
    // Complete: broker 1 is removed, so leadership moves to the first target replica in the ISR.
    expect(done).toMatchObject({ replicas: [4, 2, 3], isr: [4, 2, 3], leader: 4 });
    expect(h.sm.partitionsOnBroker(1)).toEqual([]);
    h.sm.assertInvariants();
  });

  it('completes at once when the target replicas are already in the ISR', () => {
    const h = cluster();
    h.ok({
      type: 'ReassignPartitions',
      partitions: [{ topic: 't', partition: 0, replicas: [3, 2] }],
    });
    expect(h.part('t')).toMatchObject({ replicas: [3, 2], isr: [3, 2], leader: 3 });
  });

  it('cancels with replicas: null, returning to the original replicas', () => {
    const h = cluster();
    h.register(4);
    h.ok({
      type: 'ReassignPartitions',
      partitions: [{ topic: 't', partition: 0, replicas: [4, 1, 2] }],
    });
    h.ok({
      type: 'ReassignPartitions',
      partitions: [{ topic: 't', partition: 0, replicas: null }],
    });
    expect(h.part('t')).toMatchObject({ replicas: [1, 2, 3], isr: [1, 2, 3], leader: 1 });
    h.sm.assertInvariants();
  });

  it('rejects unknown topics, partitions, brokers and duplicate entries', () => {
    const h = cluster();
    const entry = { topic: 't', partition: 0, replicas: [1, 2] };
    h.rejected(
      { type: 'ReassignPartitions', partitions: [{ ...entry, topic: 'x' }] },
      ErrorCode.TOPIC_NOT_FOUND,
    );
    h.rejected(
      { type: 'ReassignPartitions', partitions: [{ ...entry, partition: 3 }] },
      ErrorCode.PARTITION_NOT_FOUND,
    );
    h.rejected(
      { type: 'ReassignPartitions', partitions: [{ ...entry, replicas: [1, 9] }] },
      ErrorCode.BROKER_NOT_FOUND,
    );
    h.rejected(
      { type: 'ReassignPartitions', partitions: [entry, entry] },
      ErrorCode.INVALID_REQUEST,
    );
  });
});
