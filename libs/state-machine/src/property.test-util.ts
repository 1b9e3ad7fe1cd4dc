import fc from 'fast-check';
import type { Command } from './commands';
import type { MetadataStateMachine } from './metadata-state-machine';

/**
 * Random command sequences for property tests. An arbitrary yields intents; `materialize`
 * turns an intent into a command against the current state (so epochs are often right and
 * sometimes stale on purpose), which makes most commands valid and exercises every handler.
 */
export type Intent =
  | { kind: 'register'; broker: number; rack: number; fenced: boolean }
  | { kind: 'fence' | 'unfence' | 'shutdown' | 'unregister'; broker: number; stale: boolean }
  | { kind: 'create'; topic: number; partitions: number; rf: number; unclean: boolean }
  | { kind: 'delete'; topic: number }
  | { kind: 'config'; topic: number; unclean: boolean }
  | { kind: 'alter'; topic: number; partition: number; isrMask: number; stale: boolean }
  | { kind: 'elect'; topic: number; unclean: boolean; all: boolean }
  | { kind: 'reassign'; topic: number; partition: number; replicas: number[] | null }
  | { kind: 'heartbeat'; broker: number; topic: number; end: number }
  | { kind: 'garbage' };

const broker = fc.integer({ min: 1, max: 6 });
const topic = fc.integer({ min: 0, max: 3 });
const partition = fc.integer({ min: 0, max: 3 });

export const intentArbitrary: fc.Arbitrary<Intent> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('register' as const),
      broker,
      rack: fc.integer({ min: 0, max: 2 }),
      fenced: fc.boolean(),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constantFrom(
        'fence' as const,
        'unfence' as const,
        'shutdown' as const,
        'unregister' as const,
      ),
      broker,
      stale: fc.boolean(),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('create' as const),
      topic,
      partitions: fc.integer({ min: 1, max: 4 }),
      rf: fc.integer({ min: 1, max: 4 }),
      unclean: fc.boolean(),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('delete' as const), topic }) },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('config' as const), topic, unclean: fc.boolean() }),
  },
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant('alter' as const),
      topic,
      partition,
      isrMask: fc.integer({ min: 0, max: 63 }),
      stale: fc.boolean(),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('elect' as const),
      topic,
      unclean: fc.boolean(),
      all: fc.boolean(),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('reassign' as const),
      topic,
      partition,
      replicas: fc.option(fc.uniqueArray(broker, { minLength: 1, maxLength: 4 }), { nil: null }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('heartbeat' as const),
      broker,
      topic,
      end: fc.integer({ min: 0, max: 1000 }),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'garbage' as const }) },
);

const names = ['alpha', 'beta', 'gamma', 'delta'];

/** A start that gives the random commands something to work on: four brokers, two topics. */
export const PRELUDE: readonly Intent[] = [
  ...[1, 2, 3, 4].map((b) => ({
    kind: 'register' as const,
    broker: b,
    rack: b % 3,
    fenced: false,
  })),
  { kind: 'create', topic: 0, partitions: 3, rf: 2, unclean: false },
  { kind: 'create', topic: 1, partitions: 2, rf: 3, unclean: true },
];

/** Random sequences, after the prelude. */
export const sequenceArbitrary: fc.Arbitrary<Intent[]> = fc
  .array(intentArbitrary, { minLength: 5, maxLength: 80 })
  .map((intents) => [...PRELUDE, ...intents]);

/** The command an intent means in state `sm` at time `timestampMs` (`undefined`: raw garbage). */
export function materialize(
  intent: Intent,
  sm: MetadataStateMachine,
  timestampMs: number,
): Command | undefined {
  const epochOf = (id: number, stale: boolean) =>
    (sm.broker(id)?.brokerEpoch ?? 1) - (stale ? 1 : 0);
  switch (intent.kind) {
    case 'register':
      return {
        type: 'RegisterBroker',
        timestampMs,
        brokerId: intent.broker,
        host: `b${intent.broker}`,
        port: 9000 + intent.broker,
        rack: `rack-${intent.rack}`,
        fenced: intent.fenced,
      };
    case 'fence':
      return {
        type: 'FenceBroker',
        timestampMs,
        brokerId: intent.broker,
        brokerEpoch: epochOf(intent.broker, intent.stale),
      };
    case 'unfence':
      return {
        type: 'UnfenceBroker',
        timestampMs,
        brokerId: intent.broker,
        brokerEpoch: epochOf(intent.broker, intent.stale),
      };
    case 'shutdown':
      return {
        type: 'ControlledShutdown',
        timestampMs,
        brokerId: intent.broker,
        brokerEpoch: epochOf(intent.broker, intent.stale),
      };
    case 'unregister':
      return {
        type: 'UnregisterBroker',
        timestampMs,
        brokerId: intent.broker,
        ...(intent.stale ? { brokerEpoch: 0 } : {}),
      };
    case 'create':
      return {
        type: 'CreateTopic',
        timestampMs,
        name: names[intent.topic] as string,
        partitions: intent.partitions,
        replicationFactor: intent.rf,
        config: { 'unclean.leader.election.enable': String(intent.unclean) },
      };
    case 'delete':
      return { type: 'DeleteTopic', timestampMs, name: names[intent.topic] as string };
    case 'config':
      return {
        type: 'UpdateTopicConfig',
        timestampMs,
        name: names[intent.topic] as string,
        config: {
          'unclean.leader.election.enable': String(intent.unclean),
          'retention.ms': '1000',
        },
      };
    case 'alter': {
      const name = names[intent.topic] as string;
      const p = sm.partition(name, intent.partition);
      const leader = p !== undefined && p.leader !== -1 ? p.leader : 1;
      const replicas = p?.replicas ?? [1];
      const isr = replicas.filter((_, i) => (intent.isrMask >> i) & 1);
      if (!intent.stale && !isr.includes(leader)) isr.push(leader);
      if (isr.length === 0) isr.push(leader);
      return {
        type: 'AlterPartition',
        timestampMs,
        topic: name,
        partition: intent.partition,
        brokerId: leader,
        brokerEpoch: epochOf(leader, false),
        leaderEpoch: Math.max(0, (p?.leaderEpoch ?? 0) - (intent.stale ? 1 : 0)),
        isr,
      };
    }
    case 'elect': {
      const name = names[intent.topic] as string;
      const count = sm.partitions(name)?.length ?? 1;
      return {
        type: 'ElectLeaders',
        timestampMs,
        electionType: intent.unclean ? 'unclean' : 'preferred',
        ...(intent.all
          ? {}
          : {
              partitions: Array.from({ length: count }, (_, partition) => ({
                topic: name,
                partition,
              })),
            }),
      };
    }
    case 'reassign':
      return {
        type: 'ReassignPartitions',
        timestampMs,
        partitions: [
          {
            topic: names[intent.topic] as string,
            partition: intent.partition,
            replicas: intent.replicas,
          },
        ],
      };
    case 'heartbeat': {
      const name = names[intent.topic] as string;
      const offsets = (sm.partitions(name) ?? []).map((p) => ({
        topic: name,
        partition: p.partition,
        startOffset: Math.min(p.startOffset + 1, intent.end),
        endOffset: intent.end,
      }));
      return {
        type: 'BrokerHeartbeat',
        timestampMs,
        brokerId: intent.broker,
        brokerEpoch: epochOf(intent.broker, false),
        offsets,
      };
    }
    case 'garbage':
      return undefined;
  }
}
