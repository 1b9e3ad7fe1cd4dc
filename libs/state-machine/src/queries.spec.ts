import { metadataDeltaSchema, metadataResponseSchema } from '@dmq/api-contracts';
import { Harness } from './harness.test-util';
import { MetadataStateMachine } from './metadata-state-machine';

describe('queries', () => {
  it('serves the full image in the contract shape, brokers by id and topics by name', () => {
    const h = new Harness();
    [3, 1, 2].forEach((id) => h.register(id));
    h.createTopic('zeta', 2, 2);
    h.createTopic('alpha', 1, 3);
    const image = metadataResponseSchema.parse(h.sm.metadata());
    expect(image.version).toBe(h.index);
    expect(image.brokers.map((b) => b.brokerId)).toEqual([1, 2, 3]);
    expect(image.topics.map((t) => t.name)).toEqual(['alpha', 'zeta']);
    expect(h.sm.topics()).toEqual(image.topics);
    expect(h.sm.brokers()).toEqual(image.brokers);
    expect(h.sm.counts()).toEqual({
      version: h.index,
      brokers: 3,
      topics: 2,
      partitions: 3,
      idempotencyKeys: 0,
    });
  });

  it('lists the partitions a broker leads and hosts, ordered', () => {
    const h = new Harness();
    [1, 2].forEach((id) => h.register(id));
    h.createTopic('b', 2, 2);
    h.createTopic('a', 2, 2);
    const led = h.sm.partitionsLedBy(1).map((p) => `${p.topic}-${p.partition}`);
    expect(led).toEqual(['a-0', 'b-0']);
    expect(h.sm.partitionsOnBroker(1).map((p) => `${p.topic}-${p.partition}`)).toEqual([
      'a-0',
      'a-1',
      'b-0',
      'b-1',
    ]);
    expect(h.sm.partitionsLedBy(9)).toEqual([]);
    expect(h.sm.partition('a', 9)).toBeUndefined();
    expect(h.sm.topic('none')).toBeUndefined();
  });

  it('returns copies: changing an answer does not change the state', () => {
    const h = new Harness();
    h.register(1);
    h.createTopic('t', 1, 1, { 'retention.ms': '5' });
    const topic = h.sm.topic('t');
    topic?.partitions[0]?.replicas.push(99);
    if (topic) topic.config['retention.ms'] = '6';
    expect(h.sm.topic('t')?.partitions[0]?.replicas).toEqual([1]);
    expect(h.sm.topic('t')?.config).toEqual({ 'retention.ms': '5' });
  });
});

describe('delta', () => {
  it('answers what changed since a version: changed topics and brokers in full, removed ones by name', () => {
    const h = new Harness();
    [1, 2].forEach((id) => h.register(id));
    h.createTopic('keep', 1, 1);
    h.createTopic('gone', 1, 1);
    const since = h.index;
    h.createTopic('new', 1, 2);
    h.ok({ type: 'DeleteTopic', name: 'gone' });
    h.ok({ type: 'UnregisterBroker', brokerId: 2 });
    const delta = metadataDeltaSchema.parse(h.sm.delta(since));
    expect(delta).toMatchObject({ version: h.index, sinceVersion: since, full: false });
    expect(delta.topics.map((t) => t.name)).toEqual(
      h.sm.partition('keep', 0)?.replicas.includes(2) ? ['keep', 'new'] : ['new'],
    );
    expect(delta.deletedTopics).toEqual(['gone']);
    expect(delta.deletedBrokers).toEqual([2]);
    expect(delta.brokers).toEqual([]);
  });

  it('is empty at the current version, and after rejected commands', () => {
    const h = new Harness();
    h.register(1);
    const since = h.index;
    h.run({ type: 'DeleteTopic', name: 'nope' });
    expect(h.sm.delta(since)).toMatchObject({
      full: false,
      topics: [],
      brokers: [],
      deletedTopics: [],
      deletedBrokers: [],
    });
    expect(h.sm.delta(h.index).topics).toEqual([]);
    expect(h.sm.delta(h.index + 100).full).toBe(false);
  });

  it('answers the full image when the bounded change log no longer reaches back', () => {
    const h = new Harness({ changeLog: { maxEntries: 2 } });
    h.register(1);
    h.createTopic('a', 1, 1);
    h.createTopic('b', 1, 1);
    h.createTopic('c', 1, 1);
    expect(h.sm.delta(0).full).toBe(true);
    expect(h.sm.delta(0).topics.map((t) => t.name)).toEqual(['a', 'b', 'c']);
    expect(h.sm.delta(2)).toMatchObject({ full: false });
    expect(h.sm.delta(2).topics.map((t) => t.name)).toEqual(['b', 'c']);
  });

  it('starts at the snapshot version after a restore', () => {
    const h = new Harness();
    h.register(1);
    const restored = MetadataStateMachine.restore(h.sm.snapshot());
    expect(restored.delta(0).full).toBe(true);
    expect(restored.delta(h.index).full).toBe(false);
    restored.apply(h.index + 1, {
      type: 'CreateTopic',
      timestampMs: h.now,
      name: 't',
      partitions: 1,
      replicationFactor: 1,
      config: {},
    });
    expect(restored.delta(h.index).topics.map((t) => t.name)).toEqual(['t']);
  });
});
