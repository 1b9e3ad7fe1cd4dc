import { ErrorCode, IDEMPOTENCY_KEY_TTL_MS, type TopicMetadata } from '@dmq/api-contracts';
import { Harness, snapshotText } from './harness.test-util';
import { MetadataStateMachine } from './metadata-state-machine';

const create = (name: string, key: string, requestHash = `hash-${name}`) =>
  ({
    type: 'CreateTopic',
    name,
    partitions: 1,
    replicationFactor: 1,
    config: {},
    idempotency: { key, requestHash },
  }) as const;

describe('idempotency keys', () => {
  it('answers a repeat with the stored outcome and applies nothing twice', () => {
    const h = new Harness();
    h.register(1);
    const first = h.run(create('t', 'k'));
    expect(first.ok).toBe(true);
    const state = h.stateText();
    const again = h.run(create('t', 'k'));
    expect(again).toEqual({ ...first, replayed: true });
    expect(h.stateText()).toBe(state);
  });

  it('stores rejections too', () => {
    const h = new Harness();
    const first = h.run(create('t', 'k'));
    expect(first).toMatchObject({
      ok: false,
      error: { code: ErrorCode.INVALID_REPLICATION_FACTOR },
    });
    h.register(1);
    // Brokers exist now, but the key's outcome stays the original one.
    expect(h.run(create('t', 'k'))).toEqual({ ...first, replayed: true });
    expect(h.sm.hasTopic('t')).toBe(false);
  });

  it('refuses the same key with another request', () => {
    const h = new Harness();
    h.register(1);
    h.ok(create('t', 'k'));
    const message = h.rejected(create('u', 'k'), ErrorCode.IDEMPOTENCY_KEY_REUSED);
    expect(message).toContain('"k"');
    expect(h.sm.checkIdempotencyKey('k', 'hash-u').kind).toBe('reused');
    expect(h.sm.checkIdempotencyKey('k', 'hash-t').kind).toBe('replay');
    expect(h.sm.checkIdempotencyKey('other', 'x')).toEqual({ kind: 'new' });
  });

  it('honours a key for the TTL by command time, then forgets it', () => {
    const h = new Harness();
    h.register(1);
    h.ok(create('t', 'k'));
    h.now += IDEMPOTENCY_KEY_TTL_MS - 1;
    expect(h.run(create('t', 'k')).replayed).toBe(true);
    h.now += 1;
    // Expired: the command runs again (and meets the topic it created).
    expect(h.run(create('t', 'k'))).toMatchObject({
      ok: false,
      replayed: false,
      error: { code: ErrorCode.TOPIC_ALREADY_EXISTS },
    });
  });

  it('keeps at most maxEntries keys, evicting the oldest', () => {
    const h = new Harness({ idempotency: { maxEntries: 2 } });
    h.register(1);
    h.ok(create('a', 'ka'));
    h.ok(create('b', 'kb'));
    h.ok(create('c', 'kc'));
    expect(h.sm.counts().idempotencyKeys).toBe(2);
    expect(h.sm.checkIdempotencyKey('ka', 'hash-a').kind).toBe('new');
    expect(h.sm.checkIdempotencyKey('kc', 'hash-c').kind).toBe('replay');
  });

  it('survives a snapshot, with its order and options', () => {
    const h = new Harness({ idempotency: { maxEntries: 2 } });
    h.register(1);
    const created = h.ok<TopicMetadata>(create('a', 'ka'));
    h.ok(create('b', 'kb'));
    const restored = MetadataStateMachine.restore(h.sm.snapshot());
    expect(snapshotText(restored)).toBe(h.snapshotText());
    const replay = restored.apply(h.index + 1, {
      ...create('a', 'ka'),
      timestampMs: h.now,
    });
    expect(replay).toEqual({ ok: true, value: created, replayed: true });
    restored.apply(h.index + 2, { ...create('c', 'kc'), timestampMs: h.now });
    expect(restored.checkIdempotencyKey('ka', 'hash-a').kind).toBe('new');
  });

  it('refuses options that would honour keys for less than 10 minutes', () => {
    expect(() => new MetadataStateMachine({ idempotency: { ttlMs: 60_000 } })).toThrow(RangeError);
    expect(() => new MetadataStateMachine({ idempotency: { maxEntries: 0 } })).toThrow(RangeError);
  });
});
