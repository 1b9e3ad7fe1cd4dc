import { ErrorCode, topicMetadataSchema, type TopicMetadata } from '@dmq/api-contracts';
import { at, Harness, T0 } from './harness.test-util';

describe('CreateTopic', () => {
  it('creates the topic and its partitions atomically, leaders first in the replica lists', () => {
    const h = new Harness();
    [1, 2, 3].forEach((id) => h.register(id));
    const topic = h.ok<TopicMetadata>({
      type: 'CreateTopic',
      name: 'orders',
      partitions: 3,
      replicationFactor: 2,
      config: { 'retention.ms': '604800000', 'cleanup.policy': 'delete' },
    });
    expect(topicMetadataSchema.parse(topic)).toEqual(topic);
    expect(topic).toMatchObject({
      name: 'orders',
      replicationFactor: 2,
      config: { 'cleanup.policy': 'delete', 'retention.ms': '604800000' },
      createdAt: new Date(T0).toISOString(),
    });
    expect(Object.keys(topic.config)).toEqual(['cleanup.policy', 'retention.ms']);
    expect(topic.partitions).toHaveLength(3);
    for (const p of topic.partitions) {
      expect(p.replicas).toHaveLength(2);
      expect(p.leader).toBe(p.replicas[0]);
      expect(p.isr).toEqual(p.replicas);
      expect(p).toMatchObject({ leaderEpoch: 0, partitionEpoch: 0, startOffset: 0, endOffset: 0 });
    }
    // One leader per broker.
    expect(new Set(topic.partitions.map((p) => p.leader)).size).toBe(3);
    expect(h.sm.topic('orders')).toEqual(topic);
    expect(h.sm.topicById(topic.topicId)).toEqual(topic);
  });

  it('derives a valid, distinct topic id for a topic re-created under the same name', () => {
    const h = new Harness();
    h.register(1);
    const first = h.ok<TopicMetadata>({
      type: 'CreateTopic',
      name: 'x',
      partitions: 1,
      replicationFactor: 1,
      config: {},
    });
    h.ok({ type: 'DeleteTopic', name: 'x' });
    const second = h.ok<TopicMetadata>({
      type: 'CreateTopic',
      name: 'x',
      partitions: 1,
      replicationFactor: 1,
      config: {},
    });
    expect(second.topicId).not.toBe(first.topicId);
    for (const id of [first.topicId, second.topicId]) {
      expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    }
    expect(h.sm.topicById(first.topicId)).toBeUndefined();
  });

  it('places replicas only on unfenced brokers', () => {
    const h = new Harness();
    [1, 2, 3].forEach((id) => h.register(id));
    h.ok({ type: 'FenceBroker', brokerId: 2 });
    h.createTopic('t', 4, 2);
    for (const p of h.parts('t')) expect(p.replicas).not.toContain(2);
  });

  it('rejects an existing name and a replication factor above the unfenced brokers', () => {
    const h = new Harness();
    [1, 2].forEach((id) => h.register(id));
    h.createTopic('t', 1, 1);
    h.rejected(
      { type: 'CreateTopic', name: 't', partitions: 1, replicationFactor: 1, config: {} },
      ErrorCode.TOPIC_ALREADY_EXISTS,
    );
    h.rejected(
      { type: 'CreateTopic', name: 'u', partitions: 1, replicationFactor: 3, config: {} },
      ErrorCode.INVALID_REPLICATION_FACTOR,
    );
    h.ok({ type: 'FenceBroker', brokerId: 2 });
    expect(
      h.rejected(
        { type: 'CreateTopic', name: 'u', partitions: 1, replicationFactor: 2, config: {} },
        ErrorCode.INVALID_REPLICATION_FACTOR,
      ),
    ).toContain('1 available');
    expect(h.sm.hasTopic('u')).toBe(false);
  });

  it('rejects invalid commands (bad name, unknown config) as INVALID_REQUEST', () => {
    const h = new Harness();
    h.register(1);
    h.rejected(
      { type: 'CreateTopic', name: '..', partitions: 1, replicationFactor: 1, config: {} },
      ErrorCode.INVALID_REQUEST,
    );
    expect(
      h.rejected(
        {
          type: 'CreateTopic',
          name: 'ok',
          partitions: 1,
          replicationFactor: 1,
          config: { 'no.such.key': '1' },
        },
        ErrorCode.INVALID_REQUEST,
      ),
    ).toContain('no.such.key');
  });
});

describe('DeleteTopic', () => {
  it('removes the topic, its partitions and their broker index entries', () => {
    const h = new Harness();
    [1, 2].forEach((id) => h.register(id));
    h.createTopic('t', 4, 2);
    const id = h.sm.topic('t')?.topicId;
    expect(h.ok({ type: 'DeleteTopic', name: 't', topicId: id })).toEqual({
      name: 't',
      topicId: id,
    });
    expect(h.sm.topic('t')).toBeUndefined();
    expect(h.sm.partitions('t')).toBeUndefined();
    expect(h.sm.partitionsLedBy(1)).toEqual([]);
    expect(h.sm.partitionsOnBroker(2)).toEqual([]);
    expect(h.sm.counts()).toMatchObject({ topics: 0, partitions: 0 });
    h.sm.assertInvariants();
  });

  it('rejects an unknown topic and another incarnation id', () => {
    const h = new Harness();
    h.register(1);
    h.rejected({ type: 'DeleteTopic', name: 'nope' }, ErrorCode.TOPIC_NOT_FOUND);
    h.createTopic('t', 1, 1);
    h.rejected(
      { type: 'DeleteTopic', name: 't', topicId: '00000000-0000-4000-8000-000000000000' },
      ErrorCode.TOPIC_NOT_FOUND,
    );
  });
});

describe('UpdateTopicConfig', () => {
  it('replaces the config', () => {
    const h = new Harness();
    h.register(1);
    h.createTopic('t', 1, 1, { 'retention.ms': '1000' });
    const topic = h.ok<TopicMetadata>({
      type: 'UpdateTopicConfig',
      name: 't',
      config: { 'segment.ms': '60000' },
    });
    expect(topic.config).toEqual({ 'segment.ms': '60000' });
    expect(h.sm.topic('t')?.config).toEqual({ 'segment.ms': '60000' });
  });

  it('elects leaders for leaderless partitions when unclean election is turned on', () => {
    const h = new Harness();
    [1, 2].forEach((id) => h.register(id));
    h.createTopic('t', 1, 2);
    const { leader, replicas } = h.part('t');
    const other = at(
      replicas.filter((id) => id !== leader),
      0,
    );
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
    expect(h.part('t').leader).toBe(-1);
    h.ok({
      type: 'UpdateTopicConfig',
      name: 't',
      config: { 'unclean.leader.election.enable': 'true' },
    });
    expect(h.part('t')).toMatchObject({ leader: other, isr: [other] });
  });

  it('rejects an unknown topic', () => {
    const h = new Harness();
    h.rejected({ type: 'UpdateTopicConfig', name: 'nope', config: {} }, ErrorCode.TOPIC_NOT_FOUND);
  });
});
