import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import type { Job } from 'bullmq';
import type { TestDatabase } from '../../test/test-database';
import { TEST_REDIS_URL, createTestDatabase } from '../../test/test-database';
import { BackupWriter } from '../backup/backup-writer';
import type { BackupBatch } from '../backup/rows';
import { createPrismaClient } from '../client/create-prisma-client';
import { migrate } from '../migrations/migrate';
import type { BackupQueueHealth, BackupQueueOptions } from './backup-queue';
import { BackupQueue } from './backup-queue';
import type { BackupBatchWriter, BackupWorkerOptions } from './backup-worker';
import { BackupWorker } from './backup-worker';

const TOPIC_ID = '00000000-0000-4000-8000-0000000000aa';

const change = (raftIndex: number): BackupBatch => ({
  raftIndex,
  brokers: [
    {
      brokerId: raftIndex,
      host: 'h',
      port: 1,
      rack: null,
      brokerEpoch: raftIndex,
      status: 'ONLINE',
      pushEndpoint: null,
      lastHeartbeatAtMs: null,
      registeredAtMs: 0,
    },
  ],
});

/** A promise and its resolver, for gates and event waits. */
function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/** A writer double that records every call and answers with `behaviour`. */
class RecordingWriter implements BackupBatchWriter {
  readonly calls: number[][] = [];
  constructor(
    private readonly behaviour: (indexes: number[], call: number) => Promise<void> = async () =>
      undefined,
  ) {}
  async write(batches: readonly BackupBatch[]): Promise<void> {
    const indexes = batches.map((batch) => batch.raftIndex);
    this.calls.push(indexes);
    await this.behaviour(indexes, this.calls.length);
  }
}

describe('BackupQueue and BackupWorker (real Redis)', () => {
  const closers: (() => Promise<void>)[] = [];
  let queueName: string;

  beforeEach(() => {
    queueName = `dmq-test-backup-${randomBytes(6).toString('hex')}`;
  });

  afterEach(async () => {
    // Workers before queues (the shutdown order), then the test's keys go.
    for (const close of closers.splice(0).reverse()) await close();
  });

  function startQueue(options: Partial<BackupQueueOptions> = {}): BackupQueue {
    const queue = new BackupQueue({
      redisUrl: TEST_REDIS_URL,
      queueName,
      backoffDelayMs: 10,
      ...options,
    });
    closers.push(async () => {
      await queue.queue.obliterate({ force: true });
      await queue.close();
    });
    return queue;
  }

  function startWorker(
    writer: BackupBatchWriter,
    options: Partial<BackupWorkerOptions> = {},
  ): BackupWorker {
    const worker = new BackupWorker(writer, { redisUrl: TEST_REDIS_URL, queueName, ...options });
    closers.push(() => worker.close());
    return worker;
  }

  /** Resolves when `count` jobs have finished (completed, or failed for good). */
  function settled(worker: BackupWorker, count: number) {
    const done = deferred<{ completed: Job<BackupBatch>[]; failed: Job<BackupBatch>[] }>();
    const completed: Job<BackupBatch>[] = [];
    const failed: Job<BackupBatch>[] = [];
    const check = () => {
      if (completed.length + failed.length >= count) done.resolve({ completed, failed });
    };
    worker.worker.on('completed', (job) => {
      completed.push(job);
      check();
    });
    worker.worker.on('failed', (job, error) => {
      const final = error.name === 'UnrecoverableError' || job?.attemptsMade === job?.opts.attempts;
      if (job && final) failed.push(job);
      check();
    });
    return done.promise;
  }

  it('carries changes from the leader to PostgreSQL', async () => {
    const db: TestDatabase = await createTestDatabase('queue_e2e');
    const prisma = createPrismaClient({ databaseUrl: db.url });
    closers.push(async () => {
      await prisma.$disconnect();
      await db.drop();
    });
    await migrate({ databaseUrl: db.url });
    const queue = startQueue();
    const worker = startWorker(new BackupWriter(prisma, { clusterId: 'c1' }), { concurrency: 4 });
    const done = settled(worker, 3);

    queue.enqueue({
      raftIndex: 5,
      topics: [
        {
          name: 'orders',
          topicId: TOPIC_ID,
          replicationFactor: 1,
          partitionCount: 1,
          config: {},
          createdAtMs: 0,
        },
      ],
      partitions: [
        {
          topicName: 'orders',
          topicId: TOPIC_ID,
          partitionId: 0,
          leaderId: 1,
          replicaIds: [1],
          isrIds: [1],
          startOffset: 0,
          endOffset: 0,
          leaderEpoch: 0,
          partitionEpoch: 0,
          lastUpdatedAtMs: 0,
        },
      ],
    });
    queue.enqueue(change(6));
    queue.enqueue({ raftIndex: 9, deletedTopics: [{ name: 'orders', topicId: TOPIC_ID }] });

    const { completed } = await done;
    expect(completed).toHaveLength(3);
    expect(await prisma.topic.count()).toBe(0);
    expect(await prisma.partition.count()).toBe(0);
    expect(await prisma.broker.findMany()).toMatchObject([{ brokerId: 6 }]);
    expect(await prisma.topicTombstone.findMany()).toMatchObject([{ topicName: 'orders' }]);
    expect((await prisma.backupState.findUnique({ where: { id: 1 } }))?.backedUpIndex).toBe(9n);
  });

  it('coalesces the jobs that wait for a running write into one write', async () => {
    const queue = startQueue();
    for (let i = 1; i <= 30; i += 1) queue.enqueue(change(i));
    await queue.flushed();

    // The first write is held until the worker holds every job it may: the others then wait
    // together for the next write.
    const gate = deferred();
    const writer = new RecordingWriter(async (_indexes, call) => {
      if (call === 1) await gate.promise;
    });
    const worker = startWorker(writer, {
      concurrency: 8,
      autorun: false,
      onHeld: (held) => {
        if (held === 8) gate.resolve();
      },
    });
    const done = settled(worker, 30);
    worker.run();

    const { completed } = await done;
    expect(completed).toHaveLength(30);
    expect(writer.calls.flat().sort((a, b) => a - b)).toEqual(
      Array.from({ length: 30 }, (_, i) => i + 1),
    );
    expect(Math.max(...writer.calls.map((call) => call.length))).toBe(7);
    expect(writer.calls.length).toBeLessThan(30);
  });

  it('isolates a failing job from the jobs coalesced with it', async () => {
    const queue = startQueue({ attempts: 2 });
    for (let i = 11; i <= 16; i += 1) queue.enqueue(change(i));
    await queue.flushed();
    const gate = deferred();
    const writer = new RecordingWriter(async (indexes, call) => {
      if (call === 1) await gate.promise;
      if (indexes.includes(13)) throw new Error('poison row 13');
    });
    const worker = startWorker(writer, {
      concurrency: 6,
      autorun: false,
      onHeld: (held) => {
        if (held === 6) gate.resolve();
      },
    });
    const done = settled(worker, 6);
    worker.run();

    const { completed, failed } = await done;
    expect(completed.map((job) => job.data.raftIndex).sort()).toEqual([11, 12, 14, 15, 16]);
    expect(failed.map((job) => job.data.raftIndex)).toEqual([13]);
    expect(writer.calls.some((call) => call.length > 1 && call.includes(13))).toBe(true);
  });

  it('retries a failed write with backoff until it succeeds', async () => {
    const queue = startQueue({ attempts: 5, backoffDelayMs: 20 });
    const writer = new RecordingWriter(async (_indexes, call) => {
      if (call <= 2) throw new Error('database unreachable');
    });
    const worker = startWorker(writer);
    const done = settled(worker, 1);

    queue.enqueue(change(3));

    const { completed } = await done;
    // BullMQ counts the successful attempt too.
    expect(completed.map((job) => job.attemptsMade)).toEqual([3]);
    expect(writer.calls).toEqual([[3], [3], [3]]);
    // Exponential: 20 ms, then 40 ms between the attempts (at least).
    const job = completed[0];
    expect((job?.finishedOn ?? 0) - (job?.timestamp ?? 0)).toBeGreaterThanOrEqual(60);
  });

  it('dead-letters a job after its last attempt, keeping the reason', async () => {
    const queue = startQueue({ attempts: 3 });
    const worker = startWorker(
      new RecordingWriter(async () => {
        throw new Error('connection refused by 127.0.0.1:5432');
      }),
    );
    const done = settled(worker, 1);

    queue.enqueue(change(42));
    await done;

    expect(await queue.deadLetters()).toEqual([
      {
        jobId: 'idx-42',
        raftIndex: 42,
        generation: 0,
        full: false,
        failedReason: 'connection refused by 127.0.0.1:5432',
        attemptsMade: 3,
        failedAt: expect.any(Date),
      },
    ]);
    expect(await queue.deadLetterCount()).toBe(1);
  });

  it('dead-letters a malformed change at once, without retrying or writing it', async () => {
    const queue = startQueue({ attempts: 5 });
    const writer = new RecordingWriter();
    const worker = startWorker(writer);
    const done = settled(worker, 1);

    queue.enqueue({ raftIndex: 7, deletedTopics: [{ name: 'x', topicId: 'not-a-uuid' }] });
    await done;

    const [letter] = await queue.deadLetters();
    expect(letter?.attemptsMade).toBe(1);
    expect(letter?.failedReason).toContain('persistence/invalid-backup-row');
    expect(writer.calls).toEqual([]);
  });

  it('queues a change handed over twice only once', async () => {
    const queue = startQueue();
    queue.enqueue(change(8));
    queue.enqueue(change(8));
    queue.enqueue({ ...change(8), full: true });
    await queue.flushed();

    const counts = await queue.queue.getJobCounts('waiting');
    expect(counts['waiting']).toBe(2);
  });

  it("queues a restored cluster's jobs even when the lost cluster's jobs of the same indices are held", async () => {
    const queue = startQueue();
    for (const batch of [
      change(8),
      { ...change(8), full: true },
      { ...change(8), generation: 1 },
      { ...change(8), generation: 1, sinceIndex: 2 },
      { ...change(8), generation: 1, full: true },
    ]) {
      queue.enqueue(batch);
      await queue.flushed();
    }

    const jobs = await queue.queue.getJobs(['waiting']);
    expect(jobs.map((job) => job.id).sort()).toEqual([
      'full-8',
      'g1-full-8',
      'g1-idx-2-8',
      'g1-idx-8',
      'idx-8',
    ]);
  });

  it('queues a catch-up batch even when the one-entry job of its index exists', async () => {
    const queue = startQueue();
    queue.enqueue(change(8));
    queue.enqueue({ ...change(8), sinceIndex: 3 });
    queue.enqueue({ ...change(8), sinceIndex: 3 });
    await queue.flushed();

    const jobs = await queue.queue.getJobs(['waiting']);
    expect(jobs.map((job) => job.id).sort()).toEqual(['idx-3-8', 'idx-8']);
  });

  it('notices Redis coming back with nothing to hand over (probe), and turns ok', async () => {
    const port = await new Promise<number>((resolve) => {
      const server = net.createServer();
      server.listen(0, '127.0.0.1', () => {
        const { port: free } = server.address() as net.AddressInfo;
        server.close(() => resolve(free));
      });
    });
    let redis: ChildProcess | undefined;
    const startRedis = async () => {
      redis = spawn(
        'redis-server',
        ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
        { stdio: ['ignore', 'pipe', 'ignore'] },
      );
      await new Promise<void>((resolve) => {
        redis?.stdout?.on('data', (chunk: Buffer) => {
          if (chunk.toString().includes('Ready to accept connections')) resolve();
        });
      });
    };
    const stopRedis = async () => {
      const exited = new Promise((resolve) => redis?.once('exit', resolve));
      redis?.kill('SIGKILL');
      await exited;
    };
    await startRedis();
    closers.push(stopRedis);
    const healths: BackupQueueHealth[] = [];
    let notify = (): void => undefined;
    const queue = startQueue({
      redisUrl: `redis://127.0.0.1:${port}`,
      retryDelayMs: 20,
      addTimeoutMs: 500,
      onHealthChange: (health) => {
        healths.push(health);
        notify();
      },
    });
    const until = (predicate: () => boolean) =>
      new Promise<void>((resolve) => {
        notify = () => {
          if (predicate()) resolve();
        };
        notify();
      });
    queue.enqueue(change(1));
    await queue.flushed();
    expect(queue.health()).toMatchObject({ status: 'ok', buffered: 0 });

    await stopRedis();
    await until(() => healths.at(-1)?.status === 'degraded');
    expect(queue.health().buffered).toBe(0);
    await startRedis();
    await until(() => healths.at(-1)?.status === 'ok');
    expect(queue.health()).toMatchObject({ status: 'ok', lastError: null, buffered: 0 });
  }, 30_000);

  it('never throws nor waits while Redis is unreachable; bounds its buffer and asks for a resync', async () => {
    const degraded = deferred<BackupQueueHealth>();
    const queue = new BackupQueue({
      redisUrl: 'redis://127.0.0.1:1',
      queueName,
      bufferCapacity: 5,
      retryDelayMs: 50,
      addTimeoutMs: 200,
      onHealthChange: (health) => {
        if (health.lastError !== null) degraded.resolve(health);
      },
    });
    closers.push(() => queue.close());

    const started = process.hrtime.bigint();
    const accepted = Array.from({ length: 8 }, (_, i) => queue.enqueue(change(i + 1)));
    const elapsedMs = Number(process.hrtime.bigint() - started) / 1e6;

    expect(accepted).toEqual(Array(8).fill(true));
    expect(elapsedMs).toBeLessThan(50);
    expect(queue.health()).toMatchObject({
      status: 'degraded',
      buffered: 5,
      dropped: 3,
      needsResync: true,
    });
    const health = await degraded.promise;
    expect(health).toMatchObject({ status: 'degraded', buffered: 5 });
    expect(health.lastError).toEqual(expect.any(String));

    // A full resync supersedes what was dropped, and what still waits in the buffer.
    queue.enqueue({ ...change(9), full: true });
    const afterResync = queue.health();
    expect(afterResync).toMatchObject({ dropped: 0, needsResync: false });
    // The resync, plus at most the group being offered to Redis right now (change 1).
    expect(afterResync.buffered).toBeLessThanOrEqual(2);

    await queue.close();
    expect(queue.enqueue(change(10))).toBe(false);
  });
});
