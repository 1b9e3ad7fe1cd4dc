import fc from 'fast-check';
import type { Message } from '../core/messages';
import type { Entry } from '../core/types';
import { CodecError } from './codec-error';
import { CODEC_VERSION, decodeMessage, encodeMessage } from './message-codec';

/** Numbers as they occur (mostly small) and at the edge of the encoding (up to 2^53 - 1). */
const num = fc.oneof(fc.nat(300), fc.maxSafeNat());
const ids = fc.array(num, { maxLength: 7 });
const header = { from: num, to: num, term: num };
const entry: fc.Arbitrary<Entry> = fc.record({
  index: num,
  term: num,
  kind: fc.constantFrom('normal' as const, 'conf-change' as const),
  data: fc.uint8Array({ maxLength: 300 }),
});

const messageArb: fc.Arbitrary<Message> = fc.oneof(
  fc.record({
    type: fc.constant('vote-request' as const),
    ...header,
    preVote: fc.boolean(),
    lastLogIndex: num,
    lastLogTerm: num,
    transfer: fc.boolean(),
  }),
  fc.record({
    type: fc.constant('vote-response' as const),
    ...header,
    preVote: fc.boolean(),
    granted: fc.boolean(),
  }),
  fc.record({
    type: fc.constant('append' as const),
    ...header,
    prevLogIndex: num,
    prevLogTerm: num,
    entries: fc.array(entry, { maxLength: 6 }),
    commit: num,
  }),
  fc.record({
    type: fc.constant('append-response' as const),
    ...header,
    success: fc.boolean(),
    index: num,
    conflictIndex: num,
    conflictTerm: num,
  }),
  fc.record({ type: fc.constant('heartbeat' as const), ...header, commit: num, context: num }),
  fc.record({ type: fc.constant('heartbeat-response' as const), ...header, context: num }),
  fc.record({ type: fc.constant('log-lost' as const), ...header, lastIndex: num }),
  fc.record({
    type: fc.constant('snapshot-chunk' as const),
    ...header,
    snapshotIndex: num,
    snapshotTerm: num,
    voters: ids,
    learners: ids,
    offset: num,
    data: fc.uint8Array({ maxLength: 2000 }),
    done: fc.boolean(),
  }),
  fc.record({
    type: fc.constant('snapshot-ack' as const),
    ...header,
    snapshotIndex: num,
    nextOffset: num,
    rejected: fc.boolean(),
  }),
  fc.record({ type: fc.constant('timeout-now' as const), ...header }),
  fc.record({ type: fc.constant('read-index' as const), ...header, context: num }),
  fc.record({
    type: fc.constant('read-index-response' as const),
    ...header,
    context: num,
    index: num,
    rejected: fc.boolean(),
  }),
);

/** The error `decode` throws, or undefined when it decoded. */
function decodeError(bytes: Uint8Array): unknown {
  try {
    decodeMessage(bytes);
    return undefined;
  } catch (error) {
    return error;
  }
}

describe('message codec', () => {
  it('decode(encode(m)) deep-equals m for every message type', () => {
    fc.assert(
      fc.property(messageArb, (message) => {
        const decoded = decodeMessage(encodeMessage(message));
        expect(decoded).toEqual(message);
        expect(Object.keys(decoded).sort()).toEqual(Object.keys(message).sort());
      }),
      { numRuns: 2000 },
    );
  });

  it('is compact: a heartbeat with small numbers is 7 bytes, an entry costs ~4 bytes + data', () => {
    expect(
      encodeMessage({ type: 'heartbeat', from: 1, to: 2, term: 5, commit: 10, context: 0 }),
    ).toEqual(new Uint8Array([CODEC_VERSION, 5, 1, 2, 5, 10, 0]));
    const entries: Entry[] = [{ index: 11, term: 5, kind: 'normal', data: new Uint8Array(100) }];
    const append: Message = {
      type: 'append',
      from: 1,
      to: 2,
      term: 5,
      prevLogIndex: 10,
      prevLogTerm: 5,
      entries,
      commit: 9,
    };
    expect(encodeMessage(append).length).toBe(9 + 4 + 100);
  });

  it('rejects a newer codec version with codec/unsupported-version', () => {
    const bytes = encodeMessage({ type: 'timeout-now', from: 1, to: 2, term: 3 });
    bytes[0] = CODEC_VERSION + 1;
    expect(decodeError(bytes)).toMatchObject({ code: 'codec/unsupported-version' });
    expect(decodeError(bytes)).toBeInstanceOf(CodecError);
  });

  it('rejects every truncation and trailing bytes', () => {
    fc.assert(
      fc.property(messageArb, (message) => {
        const bytes = encodeMessage(message);
        for (let length = 0; length < bytes.length; length++) {
          expect(decodeError(bytes.subarray(0, length))).toMatchObject({ code: 'codec/truncated' });
        }
        const longer = new Uint8Array(bytes.length + 1);
        longer.set(bytes);
        expect(decodeError(longer)).toMatchObject({ code: 'codec/trailing-bytes' });
      }),
      { numRuns: 300 },
    );
  });

  it('decoding garbage either fails with a CodecError or yields a message that re-encodes to it', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (garbage) => {
        const error = decodeError(garbage);
        if (error === undefined) expect(encodeMessage(decodeMessage(garbage))).toEqual(garbage);
        else expect(error).toBeInstanceOf(CodecError);
      }),
      { numRuns: 5000 },
    );
    expect(decodeError(new Uint8Array([1, 99, 0, 0, 0]))).toMatchObject({
      code: 'codec/malformed',
    });
    expect(decodeError(new Uint8Array([1, 2, 0, 0, 0, 4]))).toMatchObject({
      code: 'codec/malformed',
    });
    expect(decodeError(new Uint8Array([0]))).toMatchObject({ code: 'codec/malformed' });
    // A non-shortest varint (1 written as 0x81 0x00) is refused: encodings are unique.
    expect(decodeError(new Uint8Array([1, 9, 0x81, 0x00, 2, 3]))).toMatchObject({
      code: 'codec/malformed',
    });
  });

  it('refuses to encode numbers that are not non-negative safe integers', () => {
    const bad = { type: 'heartbeat', from: 1, to: 2, term: -1, commit: 0, context: 0 } as const;
    expect(() => encodeMessage(bad)).toThrow(
      expect.objectContaining({ code: 'codec/invalid-value' }),
    );
    expect(() => encodeMessage({ ...bad, term: 2 ** 53 })).toThrow(CodecError);
    expect(() => encodeMessage({ ...bad, term: 1.5 })).toThrow(CodecError);
  });
});
