import fc from 'fast-check';
import { SnapshotFormatError } from './errors';
import { Harness, snapshotText } from './harness.test-util';
import { MetadataStateMachine } from './metadata-state-machine';

function sample(): Harness {
  const h = new Harness();
  h.register(1, 'a');
  h.register(2, 'b');
  h.createTopic('orders', 3, 2, { 'retention.ms': '1000' });
  h.createTopic('plain.name_2', 1, 1);
  h.ok({ type: 'FenceBroker', brokerId: 2 });
  h.ok({
    type: 'CreateTopic',
    name: 'keyed',
    partitions: 1,
    replicationFactor: 1,
    config: {},
    idempotency: { key: 'k', requestHash: 'h' },
  });
  return h;
}

const bytesOf = (sm: MetadataStateMachine) => {
  const parts = [...sm.snapshot()];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
};

describe('snapshot', () => {
  it('is versioned NDJSON with a header and a checked trailer', () => {
    const text = sample().snapshotText();
    const lines = text
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line) as { t: string });
    expect(lines[0]).toMatchObject({
      t: 'header',
      format: 'dmq-metadata-snapshot',
      formatVersion: 1,
    });
    expect(lines.at(-1)).toMatchObject({ t: 'end', lines: lines.length - 1 });
    expect(lines.map((l) => l.t)).toEqual(['header', 'b', 'b', 't', 't', 't', 'i', 'end']);
  });

  it('restores from chunks split anywhere, synchronously or not', async () => {
    const h = sample();
    const bytes = bytesOf(h.sm);
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 1, max: bytes.length - 1 }), { maxLength: 20 }),
        (cuts) => {
          const points = [0, ...cuts.sort((a, b) => a - b), bytes.length];
          const chunks = points.slice(1).map((end, i) => bytes.slice(points[i], end));
          expect(snapshotText(MetadataStateMachine.restore(chunks))).toBe(h.snapshotText());
        },
      ),
      { numRuns: 50 },
    );
    async function* stream() {
      yield bytes.slice(0, 10);
      yield bytes.slice(10);
    }
    const restored = await MetadataStateMachine.restoreAsync(stream());
    expect(restored.metadata()).toEqual(h.sm.metadata());
    expect(restored.version).toBe(h.index);
  });

  it('refuses a truncated snapshot', () => {
    const bytes = bytesOf(sample().sm);
    for (const cut of [0, 10, Math.floor(bytes.length / 2), bytes.length - 1]) {
      expect(() => MetadataStateMachine.restore([bytes.slice(0, cut)])).toThrow(
        SnapshotFormatError,
      );
    }
  });

  it('refuses a damaged snapshot', () => {
    const text = sample().snapshotText().replace('"retention.ms":"1000"', '"retention.ms":"1001"');
    expect(() => MetadataStateMachine.restore([new TextEncoder().encode(text)])).toThrow(
      /checksum/,
    );
  });

  it('refuses a format version newer than it reads, and other headers', () => {
    const text = sample().snapshotText();
    const newer = text.replace('"formatVersion":1', '"formatVersion":2');
    expect(() => MetadataStateMachine.restore([new TextEncoder().encode(newer)])).toThrow(/newer/);
    const other = text.replace('dmq-metadata-snapshot', 'something-else');
    expect(() => MetadataStateMachine.restore([new TextEncoder().encode(other)])).toThrow(
      SnapshotFormatError,
    );
    expect(() => MetadataStateMachine.restore([new TextEncoder().encode('{}\n')])).toThrow(
      SnapshotFormatError,
    );
  });

  it('refuses data after the end line', () => {
    const text = `${sample().snapshotText()}{"t":"b"}\n`;
    expect(() => MetadataStateMachine.restore([new TextEncoder().encode(text)])).toThrow(/after/);
  });

  it('is canonical: equal states give equal bytes whatever the order things were added in', () => {
    const a = new Harness();
    a.register(1);
    a.register(2);
    a.createTopic('x', 1, 1);
    a.createTopic('y', 1, 1);
    const b = new Harness();
    b.register(2);
    b.register(1);
    b.createTopic('y', 1, 1);
    b.createTopic('x', 1, 1);
    // Different ids and placements, but the same ordering of lines.
    const kinds = (h: Harness) =>
      h
        .snapshotText()
        .split('\n')
        .map((l) => l.slice(0, 30));
    expect(kinds(a).map((l) => l.slice(0, 8))).toEqual(kinds(b).map((l) => l.slice(0, 8)));
    expect(a.snapshotText().indexOf('"name":"x"')).toBeLessThan(
      a.snapshotText().indexOf('"name":"y"'),
    );
    expect(b.snapshotText().indexOf('"name":"x"')).toBeLessThan(
      b.snapshotText().indexOf('"name":"y"'),
    );
  });
});
