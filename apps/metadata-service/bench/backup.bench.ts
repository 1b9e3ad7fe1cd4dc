/**
 * `npm run bench -- backup`: the backup pipeline of a leader — state machine → change log →
 * one job per event-loop turn (as start-backup.ts does) → BullMQ (Redis) → BackupWorker →
 * BackupWriter (PostgreSQL) — on the real PostgreSQL and Redis (`DATABASE_URL`, `REDIS_URL`),
 * in a database and queue of its own. Prints a Markdown section.
 *
 * 1. 1,000 committed metadata changes/s for 10 s — config updates of 1-partition topics, of
 *    100-partition topics, and broker offset reports (10 partitions each): lag p50/p99/max from
 *    apply to the row being in PostgreSQL.
 * 2. Changes applied as fast as the state machine goes: backup throughput (entries/s).
 * 3. A full resync of 100,000 partitions (1,000 topics × 100) through the queue.
 */
import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import {
  BackupQueue,
  BackupWorker,
  BackupWriter,
  createPrismaClient,
  migrate,
  type BackupBatch,
} from '@dmq/persistence-prisma';
import { MetadataStateMachine, encodeCommand, type Command } from '@dmq/state-machine';
import { toBatch } from '../src/backup/backup-batch';

const ADMIN_URL =
  process.env['DATABASE_URL'] ?? 'postgresql://dmq_user:dmq_password@127.0.0.1:5432/dmq_metadata';
const REDIS_URL = process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379';

async function admin(sql: string): Promise<void> {
  const client = new Client({ connectionString: ADMIN_URL });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

async function main(): Promise<void> {
  const dbName = `dmq_bench_backup_${randomBytes(4).toString('hex')}`;
  await admin(`CREATE DATABASE "${dbName}"`);
  const url = new URL(ADMIN_URL);
  url.pathname = `/${dbName}`;
  const databaseUrl = url.toString();
  const queueName = `dmq-bench-backup-${randomBytes(4).toString('hex')}`;
  await migrate({ databaseUrl });
  const prisma = createPrismaClient({ databaseUrl });
  const writer = new BackupWriter(prisma, { clusterId: 'bench' });

  /** Raft index → when it was applied; resolved as writes covering it commit. */
  const appliedAt = new Map<number, number>();
  let lags: number[] = [];
  let backedUp = 0;
  let onProgress: () => void = () => undefined;
  const measuring = {
    async write(batches: readonly BackupBatch[]): Promise<unknown> {
      const result = await writer.write(batches);
      const top = Math.max(...batches.map((b) => b.raftIndex));
      const now = performance.now();
      for (let i = backedUp + 1; i <= top; i++) {
        const at = appliedAt.get(i);
        if (at !== undefined) {
          lags.push(now - at);
          appliedAt.delete(i);
        }
      }
      backedUp = Math.max(backedUp, top);
      onProgress();
      return result;
    },
  };
  const queue = new BackupQueue({ redisUrl: REDIS_URL, queueName, keepCompleted: 0 });
  const worker = new BackupWorker(measuring, { redisUrl: REDIS_URL, queueName, concurrency: 16 });
  const waitBackedUp = (index: number) =>
    new Promise<void>((resolve) => {
      onProgress = () => {
        if (backedUp >= index) resolve();
      };
      onProgress();
    });

  // The leader: applies commands; one job per event-loop turn with the changes since the last.
  const machine = new MetadataStateMachine();
  let index = 0;
  let lastEnqueued = 0;
  let flushScheduled = false;
  let jobs = 0;
  const apply = (command: Command) => {
    index += 1;
    const result = machine.apply(index, encodeCommand(command));
    if (!result.ok) throw new Error(`${command.type}: ${result.error.message}`);
    appliedAt.set(index, performance.now());
    if (!flushScheduled) {
      flushScheduled = true;
      setImmediate(() => {
        flushScheduled = false;
        const changes = machine.backupChangesSince(lastEnqueued);
        lastEnqueued = changes.version;
        queue.enqueue(toBatch(changes));
        jobs += 1;
      });
    }
  };
  const now = Date.UTC(2026, 0, 1);
  for (const brokerId of [1, 2, 3]) {
    apply({
      type: 'RegisterBroker',
      timestampMs: now,
      brokerId,
      host: '127.0.0.1',
      port: 9190 + brokerId,
    });
    const epoch = machine.brokers().find((b) => b.brokerId === brokerId)?.brokerEpoch ?? 0;
    apply({ type: 'BrokerHeartbeat', timestampMs: now, brokerId, brokerEpoch: epoch });
  }
  const TOPICS = 1_000;
  for (let t = 0; t < TOPICS; t++) {
    apply({
      type: 'CreateTopic',
      timestampMs: now,
      name: `t-${t}`,
      partitions: 100,
      replicationFactor: 3,
      config: {},
    });
    if (t % 50 === 49) await new Promise((resolve) => setImmediate(resolve));
  }
  // Small topics for the first change stream, as in the first measurement of this bench.
  const SMALL = 1_000;
  for (let t = 0; t < SMALL; t++) {
    apply({
      type: 'CreateTopic',
      timestampMs: now,
      name: `s-${t}`,
      partitions: 1,
      replicationFactor: 3,
      config: {},
    });
    if (t % 50 === 49) await new Promise((resolve) => setImmediate(resolve));
  }
  await waitBackedUp(index);
  lags = [];

  // 1. Steady 1,000 changes/s for 10 s, three kinds of change.
  const RATE = 1_000;
  const SECONDS = 10;
  const steadyRun = async (
    change: (i: number) => Command,
  ): Promise<{ lags: number[]; jobs: number }> => {
    const start = performance.now();
    let sent = 0;
    const jobsBefore = jobs;
    while (sent < RATE * SECONDS) {
      const due = Math.floor(((performance.now() - start) / 1000) * RATE);
      while (sent < Math.min(due, RATE * SECONDS)) {
        apply(change(sent));
        sent += 1;
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    await waitBackedUp(index);
    const measured = [...lags].sort((a, b) => a - b);
    lags = [];
    return { lags: measured, jobs: jobs - jobsBefore };
  };
  let retention = 1_000;
  const steadySmall = await steadyRun((i) => ({
    type: 'UpdateTopicConfig',
    timestampMs: now,
    name: `s-${i % SMALL}`,
    config: { 'retention.ms': String((retention += 1)) },
  }));
  const steadyWide = await steadyRun((i) => ({
    type: 'UpdateTopicConfig',
    timestampMs: now,
    name: `t-${i % TOPICS}`,
    config: { 'retention.ms': String((retention += 1)) },
  }));
  // Offset reports of the brokers: each heartbeat moves the end offsets of 10 partitions of a
  // 100-partition topic that it leads (10,000 partition rows/s).
  const ledBy = new Map<number, { topic: string; partition: number }[]>();
  for (const brokerId of [1, 2, 3]) {
    ledBy.set(
      brokerId,
      machine.partitionsLedBy(brokerId).map((p) => ({ topic: p.topic, partition: p.partition })),
    );
  }
  let endOffset = 0;
  const steadyOffsets = await steadyRun((i) => {
    const brokerId = 1 + (i % 3);
    const led = ledBy.get(brokerId) ?? [];
    endOffset += 1;
    const offsets = Array.from({ length: 10 }, (_, k) => {
      const p = led[(i * 10 + k) % led.length] as { topic: string; partition: number };
      return { topic: p.topic, partition: p.partition, startOffset: 0, endOffset };
    });
    const epoch = machine.broker(brokerId)?.brokerEpoch ?? 0;
    return { type: 'BrokerHeartbeat', timestampMs: now, brokerId, brokerEpoch: epoch, offsets };
  });

  // 2. As fast as the state machine applies: 10,000 changes in bursts of 500 per turn.
  const BURST_TOTAL = 10_000;
  const burstStart = performance.now();
  for (let i = 0; i < BURST_TOTAL; i++) {
    apply({
      type: 'UpdateTopicConfig',
      timestampMs: now,
      name: `s-${i % SMALL}`,
      config: { 'retention.ms': String(50_000 + i) },
    });
    if (i % 500 === 499) await new Promise((resolve) => setImmediate(resolve));
  }
  const appliedMs = performance.now() - burstStart;
  await waitBackedUp(index);
  const burstMs = performance.now() - burstStart;

  // 3. Full resync of 100,000 partitions through the queue.
  const resyncStart = performance.now();
  const rows = machine.toBackupRows();
  const full = toBatch({ ...rows, full: true });
  const builtMs = performance.now() - resyncStart;
  // A resync at the current index: the writer takes it (rows are older), and we wait for it.
  index += 1;
  machine.apply(
    index,
    encodeCommand({ type: 'UpdateTopicConfig', timestampMs: now, name: 't-0', config: {} }),
  );
  const resyncIndex = index;
  queue.enqueue({ ...toBatch({ ...machine.toBackupRows(), full: true }) });
  await waitBackedUp(resyncIndex);
  const resyncMs = performance.now() - resyncStart;

  const f = (ms: number) => `${ms.toFixed(0)} ms`;
  const lagText = (run: { lags: number[]; jobs: number }) =>
    `lag p50 ${f(percentile(run.lags, 50))}, p99 ${f(percentile(run.lags, 99))}, ` +
    `max ${f(run.lags.at(-1) ?? 0)}; ${run.jobs} jobs`;
  console.log(`## Backup pipeline (state machine → BullMQ → PostgreSQL)

Node ${process.version}, ${process.platform}; PostgreSQL and Redis on loopback; worker concurrency 16.

| scenario | result |
|---|---|
| steady ${RATE} config changes/s for ${SECONDS} s over ${SMALL} 1-partition topics (state: ${TOPICS} × 100 partitions more) | ${lagText(steadySmall)} |
| steady ${RATE} config changes/s for ${SECONDS} s over ${TOPICS} 100-partition topics | ${lagText(steadyWide)} |
| steady ${RATE} offset reports/s for ${SECONDS} s, 10 partitions each (10,000 partition changes/s) | ${lagText(steadyOffsets)} |
| ${BURST_TOTAL} changes as fast as applied | applied in ${f(appliedMs)} (${Math.round(BURST_TOTAL / (appliedMs / 1000))}/s); backed up in ${f(burstMs)} → ${Math.round(BURST_TOTAL / (burstMs / 1000))} entries/s |
| full resync of ${full.partitions?.length ?? 0} partitions, ${full.topics?.length ?? 0} topics | rows built in ${f(builtMs)}; enqueued → written in ${f(resyncMs)} |
`);

  await worker.close();
  await queue.queue.obliterate({ force: true });
  await queue.close();
  await prisma.$disconnect();
  await admin(`DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
