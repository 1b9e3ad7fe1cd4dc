/**
 * Benchmark of the state machine (not a test: it prints a markdown table).
 *
 *   node --expose-gc --import tsx libs/state-machine/bench/state-machine.bench.ts
 *
 * Without --expose-gc the memory column is left empty. Scenarios and targets (issue):
 * - CreateTopic 10,000 topics × 10 partitions (RF 3) on 50 brokers, applied as encoded entries: ≤ 2 s
 * - FenceBroker on a broker that leads 100,000 partitions: ≤ 500 ms
 * - snapshot written, and restored, for 1,000,000 partitions: ≤ 10 s each; ≤ 500 B per partition
 */
import { performance } from 'node:perf_hooks';
import {
  encodeCommand,
  MetadataStateMachine,
  restoreCommandFromBackupRows,
  type Command,
  type PartitionRow,
} from '../src/index';

const T0 = 1_700_000_000_000;
const gc = (globalThis as { gc?: () => void }).gc;

interface Row {
  scenario: string;
  target: string;
  measured: string;
  ok: boolean | undefined;
}
const rows: Row[] = [];

function heapUsed(): number | undefined {
  if (gc === undefined) return undefined;
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

function time<T>(fn: () => T): [T, number] {
  const start = performance.now();
  const value = fn();
  return [value, performance.now() - start];
}

function registerBrokers(sm: MetadataStateMachine, count: number, index: number): number {
  for (let id = 1; id <= count; id++) {
    const result = sm.apply(++index, {
      type: 'RegisterBroker',
      timestampMs: T0,
      brokerId: id,
      host: `broker-${id}.dmq.local`,
      port: 9092,
      rack: `rack-${id % 5}`,
    });
    if (!result.ok) throw new Error(result.error.message);
  }
  return index;
}

function createTopicEntries(topics: number, partitions: number, prefix: string): Uint8Array[] {
  const entries: Uint8Array[] = [];
  for (let t = 0; t < topics; t++) {
    entries.push(
      encodeCommand({
        type: 'CreateTopic',
        timestampMs: T0 + t,
        name: `${prefix}-${t}`,
        partitions,
        replicationFactor: 3,
        config: { 'retention.ms': '604800000' },
      }),
    );
  }
  return entries;
}

function applyAll(sm: MetadataStateMachine, entries: readonly Uint8Array[], index: number): number {
  for (const entry of entries) {
    const result = sm.apply(++index, entry);
    if (!result.ok) throw new Error(result.error.message);
  }
  return index;
}

// 1. CreateTopic throughput.
{
  const sm = new MetadataStateMachine();
  const index = registerBrokers(sm, 50, 0);
  const entries = createTopicEntries(10_000, 10, 'topic');
  const [, ms] = time(() => applyAll(sm, entries, index));
  sm.assertInvariants();
  rows.push({
    scenario: 'apply CreateTopic: 10,000 topics × 10 partitions, RF 3, 50 brokers',
    target: '≤ 2000 ms',
    measured: `${ms.toFixed(0)} ms (${((10_000 / ms) * 1000).toFixed(0)} topics/s)`,
    ok: ms <= 2000,
  });
}

// 2. Fencing a broker that leads 100,000 partitions.
{
  const partitions: PartitionRow[] = [];
  for (let t = 0; t < 10_000; t++) {
    for (let p = 0; p < 10; p++) {
      partitions.push({
        topicName: `t-${t}`,
        partitionId: p,
        leaderId: 1,
        replicaIds: [1, 2, 3],
        isrIds: [1, 2, 3],
        startOffset: 0,
        endOffset: 100,
        leaderEpoch: 0,
        partitionEpoch: 0,
        lastUpdatedAtMs: T0,
      });
    }
  }
  const plan = restoreCommandFromBackupRows(
    {
      brokers: [1, 2, 3].map((id) => ({
        brokerId: id,
        host: `b${id}`,
        port: 9092,
        rack: null,
        brokerEpoch: id,
        status: 'ONLINE',
        pushEndpoint: null,
        lastHeartbeatAtMs: T0,
        registeredAtMs: T0,
      })),
      topics: Array.from({ length: 10_000 }, (_, t) => ({
        name: `t-${t}`,
        topicId: `00000000-0000-4000-8000-${t.toString(16).padStart(12, '0')}`,
        replicationFactor: 3,
        partitionCount: 10,
        config: {},
        createdAtMs: T0,
      })),
      partitions,
    },
    { timestampMs: T0, sourceVersion: 1 },
  );
  const sm = new MetadataStateMachine();
  let index = 0;
  const restored = sm.apply(++index, plan.command);
  if (!restored.ok) throw new Error(restored.error.message);
  // Broker 1 returns first and takes every leadership; 2 and 3 follow.
  index = registerBrokers(sm, 3, index);
  const led = sm.counts().partitions;
  if (sm.partitionsLedBy(1).length !== 100_000) throw new Error('broker 1 should lead all');
  const fence: Command = { type: 'FenceBroker', timestampMs: T0 + 1, brokerId: 1 };
  const [, ms] = time(() => sm.apply(++index, encodeCommand(fence)));
  if (sm.partitionsLedBy(2).length !== led) throw new Error('leadership should move to 2');
  sm.assertInvariants();
  rows.push({
    scenario: 'apply FenceBroker on a broker leading 100,000 partitions',
    target: '≤ 500 ms',
    measured: `${ms.toFixed(0)} ms`,
    ok: ms <= 500,
  });
}

// 3. Snapshot and restore of 1,000,000 partitions, and memory per partition.
{
  const before = heapUsed();
  let sm: MetadataStateMachine | undefined = new MetadataStateMachine();
  let index = registerBrokers(sm, 50, 0);
  for (let batch = 0; batch < 10; batch++) {
    index = applyAll(sm, createTopicEntries(10_000, 10, `b${batch}`), index);
  }
  const partitions = sm.counts().partitions;
  const built = heapUsed();
  const perPartition =
    before === undefined || built === undefined ? undefined : (built - before) / partitions;
  rows.push({
    scenario: `memory per partition (${partitions.toLocaleString('en')} partitions, 100,000 topics)`,
    target: '≤ 500 B',
    measured: perPartition === undefined ? 'run with --expose-gc' : `${perPartition.toFixed(0)} B`,
    ok: perPartition === undefined ? undefined : perPartition <= 500,
  });

  const machine = sm;
  const [chunks, writeMs] = time(() => [...machine.snapshot()]);
  const bytes = chunks.reduce((n, c) => n + c.length, 0);
  rows.push({
    scenario: `write snapshot of ${partitions.toLocaleString('en')} partitions (${(bytes / 2 ** 20).toFixed(0)} MiB NDJSON)`,
    target: '≤ 10000 ms',
    measured: `${writeMs.toFixed(0)} ms`,
    ok: writeMs <= 10_000,
  });
  const expected = machine.counts();
  sm = undefined;
  const baseline = heapUsed();
  const [restored, restoreMs] = time(() => MetadataStateMachine.restore(chunks));
  rows.push({
    scenario: `restore snapshot of ${partitions.toLocaleString('en')} partitions (invariants checked)`,
    target: '≤ 10000 ms',
    measured: `${restoreMs.toFixed(0)} ms`,
    ok: restoreMs <= 10_000 && JSON.stringify(restored.counts()) === JSON.stringify(expected),
  });
  chunks.length = 0;
  const after = heapUsed();
  if (after !== undefined && baseline !== undefined) {
    const restoredPer = (after - baseline + bytes) / partitions;
    rows.push({
      scenario: 'memory per partition after restore',
      target: '≤ 500 B',
      measured: `${restoredPer.toFixed(0)} B`,
      ok: restoredPer <= 500,
    });
  }
  if (restored.version !== index) throw new Error('restored version differs');
}

const mark = (ok: boolean | undefined) => (ok === undefined ? '–' : ok ? '✅' : '❌');
console.log(`node ${process.version}, ${new Date().toISOString()}\n`);
console.log('| scenario | target | measured | ok |');
console.log('|---|---|---|---|');
for (const row of rows) {
  console.log(`| ${row.scenario} | ${row.target} | ${row.measured} | ${mark(row.ok)} |`);
}
