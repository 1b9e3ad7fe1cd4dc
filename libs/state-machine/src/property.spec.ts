import fc from 'fast-check';
import { metadataResponseSchema } from '@dmq/api-contracts';
import { encodeCommand, type Command } from './commands';
import { snapshotText, T0 } from './harness.test-util';
import { MetadataStateMachine } from './metadata-state-machine';
import { materialize, sequenceArbitrary } from './property.test-util';

const GARBAGE = new TextEncoder().encode('{"v":1,"type":"Nope"}');

interface Run {
  readonly sm: MetadataStateMachine;
  /** What was applied, in order: commands or raw bytes. */
  readonly entries: (Command | Uint8Array)[];
}

/** Applies the intents one by one, checking the invariants after every entry. */
function run(intents: readonly Parameters<typeof materialize>[0][], check = false): Run {
  const sm = new MetadataStateMachine({ idempotency: { maxEntries: 5 } });
  const entries: (Command | Uint8Array)[] = [];
  const partitionEpochs = new Map<string, [number, number]>();
  const brokerEpochs = new Map<number, number>();
  intents.forEach((intent, i) => {
    const command = materialize(intent, sm, T0 + i * 1000);
    const entry = command ?? GARBAGE;
    entries.push(entry);
    sm.apply(i + 1, entry);
    if (!check) return;
    sm.assertInvariants();
    // Epochs never decrease (a partition is identified by its topic id).
    for (const topic of sm.topics()) {
      for (const p of topic.partitions) {
        const key = `${topic.topicId}/${p.partition}`;
        const before = partitionEpochs.get(key);
        if (before) {
          expect(p.leaderEpoch).toBeGreaterThanOrEqual(before[0]);
          expect(p.partitionEpoch).toBeGreaterThanOrEqual(before[1]);
        }
        partitionEpochs.set(key, [p.leaderEpoch, p.partitionEpoch]);
        // Leader in the ISR or -1; ISR within the replicas; replicas distinct, on brokers.
        expect(p.leader === -1 || p.isr.includes(p.leader)).toBe(true);
        for (const id of p.isr) expect(p.replicas).toContain(id);
        expect(new Set(p.replicas).size).toBe(p.replicas.length);
        for (const id of p.replicas) expect(sm.broker(id)).toBeDefined();
      }
    }
    for (const broker of sm.brokers()) {
      expect(broker.brokerEpoch).toBeGreaterThanOrEqual(brokerEpochs.get(broker.brokerId) ?? 0);
      brokerEpochs.set(broker.brokerId, broker.brokerEpoch);
    }
  });
  return { sm, entries };
}

const sequences = sequenceArbitrary;

describe('random command sequences', () => {
  it('keep every invariant, and epochs never decrease', () => {
    fc.assert(
      fc.property(sequences, (intents) => {
        const { sm } = run(intents, true);
        metadataResponseSchema.parse(sm.metadata());
      }),
      { numRuns: 120 },
    );
  });

  it('are deterministic: the same entries, as objects or bytes, give identical snapshots', () => {
    fc.assert(
      fc.property(sequences, (intents) => {
        const first = run(intents);
        const replay = new MetadataStateMachine({ idempotency: { maxEntries: 5 } });
        first.entries.forEach((entry, i) => {
          replay.apply(i + 1, entry instanceof Uint8Array ? entry : encodeCommand(entry));
        });
        expect(snapshotText(replay)).toBe(snapshotText(first.sm));
      }),
      { numRuns: 100 },
    );
  });

  it('survive snapshot and restore: restore(snapshot(s)) == s', () => {
    fc.assert(
      fc.property(sequences, fc.integer({ min: 1, max: 300 }), (intents, chunkBytes) => {
        const { sm } = run(intents);
        const restored = MetadataStateMachine.restore(sm.snapshot(chunkBytes));
        expect(snapshotText(restored)).toBe(snapshotText(sm));
        expect(restored.metadata()).toEqual(sm.metadata());
        expect(restored.counts()).toEqual(sm.counts());
        for (const broker of sm.brokers()) {
          expect(restored.partitionsLedBy(broker.brokerId)).toEqual(
            sm.partitionsLedBy(broker.brokerId),
          );
          expect(restored.partitionsOnBroker(broker.brokerId)).toEqual(
            sm.partitionsOnBroker(broker.brokerId),
          );
        }
      }),
      { numRuns: 100 },
    );
  });

  it('continue identically after a restore', () => {
    fc.assert(
      fc.property(sequences, sequences, (before, after) => {
        const whole = run([...before, ...after]);
        const prefix = run(before);
        const restored = MetadataStateMachine.restore(prefix.sm.snapshot());
        whole.entries.slice(before.length).forEach((entry, i) => {
          restored.apply(before.length + i + 1, entry);
        });
        expect(snapshotText(restored)).toBe(snapshotText(whole.sm));
      }),
      { numRuns: 40 },
    );
  });
});
