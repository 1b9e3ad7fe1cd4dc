import { ErrorCode } from '@dmq/api-contracts';
import { decodeCommand, encodeCommand, type Command } from './commands';
import { ApplyOrderError, CommandDecodeError } from './errors';
import { MetadataStateMachine } from './metadata-state-machine';

const createTopic: Command = {
  type: 'CreateTopic',
  timestampMs: 1,
  name: 'orders',
  partitions: 3,
  replicationFactor: 1,
  config: { 'retention.ms': '1000' },
  idempotency: { key: 'k-1', requestHash: 'abc' },
};

describe('command encoding', () => {
  it('round-trips through versioned JSON bytes', () => {
    const bytes = encodeCommand(createTopic);
    const text = new TextDecoder().decode(bytes);
    expect(JSON.parse(text)).toMatchObject({ v: 1, type: 'CreateTopic' });
    expect(decodeCommand(bytes)).toEqual(createTopic);
  });

  it('refuses to encode an invalid command', () => {
    expect(() => encodeCommand({ ...createTopic, partitions: 0 })).toThrow(CommandDecodeError);
  });

  it.each([
    ['not JSON', '{'],
    ['not an object', '[1]'],
    ['an unknown version', '{"v":2,"type":"FenceBroker","timestampMs":1,"brokerId":1}'],
    ['no version', '{"type":"FenceBroker","timestampMs":1,"brokerId":1}'],
    ['an unknown type', '{"v":1,"type":"Explode","timestampMs":1}'],
    ['an unknown field', '{"v":1,"type":"FenceBroker","timestampMs":1,"brokerId":1,"x":1}'],
    ['a missing timestamp', '{"v":1,"type":"FenceBroker","brokerId":1}'],
  ])('refuses to decode %s', (_what, text) => {
    expect(() => decodeCommand(new TextEncoder().encode(text))).toThrow(CommandDecodeError);
  });

  it('refuses bytes that are not UTF-8', () => {
    expect(() => decodeCommand(new Uint8Array([0x7b, 0xff, 0x7d]))).toThrow(/UTF-8/);
  });
});

describe('apply', () => {
  it('applies bytes like the command object and reports the error code of a refusal', () => {
    const sm = new MetadataStateMachine();
    const register = encodeCommand({
      type: 'RegisterBroker',
      timestampMs: 1,
      brokerId: 1,
      host: 'h',
      port: 1,
    });
    expect(sm.apply(1, register)).toEqual({
      ok: true,
      value: { brokerId: 1, brokerEpoch: 1 },
      replayed: false,
    });
    expect(
      sm.apply(2, encodeCommand({ type: 'FenceBroker', timestampMs: 2, brokerId: 3 })),
    ).toEqual({
      ok: false,
      error: { code: ErrorCode.BROKER_NOT_FOUND, message: 'broker 3 is not registered' },
      replayed: false,
    });
  });

  it('answers INVALID_REQUEST to undecodable entries and invalid objects, and advances the version', () => {
    const sm = new MetadataStateMachine();
    const garbage = sm.apply(5, new TextEncoder().encode('garbage'));
    expect(garbage).toMatchObject({ ok: false, error: { code: ErrorCode.INVALID_REQUEST } });
    expect(sm.version).toBe(5);
    const invalid = sm.apply(6, { type: 'FenceBroker', timestampMs: -1, brokerId: 1 });
    expect(invalid).toMatchObject({ ok: false, error: { code: ErrorCode.INVALID_REQUEST } });
    expect(sm.version).toBe(6);
  });

  it('requires increasing indexes, also through advance()', () => {
    const sm = new MetadataStateMachine();
    sm.advance(3);
    expect(() => sm.advance(3)).toThrow(ApplyOrderError);
    expect(() => sm.apply(2, createTopic)).toThrow(ApplyOrderError);
    expect(() => sm.advance(Number.NaN)).toThrow(ApplyOrderError);
    expect(sm.version).toBe(3);
  });
});
