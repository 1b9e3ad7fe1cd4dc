import fc from 'fast-check';
import type { TestDatabase } from '../../test/test-database';
import { createTestDatabase, queryOnce } from '../../test/test-database';
import type { BackupPrismaClient } from '../client/create-prisma-client';
import { createPrismaClient } from '../client/create-prisma-client';
import { PersistenceError } from '../errors';
import { migrate } from '../migrations/migrate';
import { BackupReader } from './backup-reader';
import { BackupWriter } from './backup-writer';
import type { BackupBatch, BrokerRow, PartitionRow, TopicRow } from './rows';

const ID_A = '00000000-0000-4000-8000-00000000000a';
const ID_B = '00000000-0000-4000-8000-00000000000b';
const ID_C = '00000000-0000-4000-8000-00000000000c';
const T0 = Date.UTC(2026, 0, 1);

const broker = (brokerId: number, overrides: Partial<BrokerRow> = {}): BrokerRow => ({
  brokerId,
  host: `10.0.0.${brokerId}`,
  port: 9192,
  rack: null,
  brokerEpoch: 1,
  status: 'ONLINE',
  pushEndpoint: null,
  lastHeartbeatAtMs: null,
  registeredAtMs: T0,
  ...overrides,
});

const topic = (name: string, topicId: string, overrides: Partial<TopicRow> = {}): TopicRow => ({
  name,
  topicId,
  replicationFactor: 1,
  partitionCount: 1,
  config: {},
  createdAtMs: T0,
  ...overrides,
});

const partition = (
  topicName: string,
  topicId: string,
  partitionId: number,
  overrides: Partial<PartitionRow> = {},
): PartitionRow => ({
  topicName,
  topicId,
  partitionId,
  leaderId: 1,
  replicaIds: [1],
  isrIds: [1],
  startOffset: 0,
  endOffset: 0,
  leaderEpoch: 0,
  partitionEpoch: 0,
  lastUpdatedAtMs: T0,
  ...overrides,
});

/** A topic creation as one Raft entry writes it: the topic and all its partitions. */
const createTopic = (
  raftIndex: number,
  name: string,
  topicId: string,
  count: number,
): BackupBatch => ({
  raftIndex,
  topics: [topic(name, topicId, { partitionCount: count })],
  partitions: Array.from({ length: count }, (_, p) => partition(name, topicId, p)),
});

describe('BackupWriter (real PostgreSQL)', () => {
  let db: TestDatabase;
  let prisma: BackupPrismaClient;
  let writer: BackupWriter;

  beforeAll(async () => {
    db = await createTestDatabase('backup_writer');
    await migrate({ databaseUrl: db.url });
    prisma = createPrismaClient({ databaseUrl: db.url });
    writer = new BackupWriter(prisma, { clusterId: 'cluster-1' });
  });

  afterAll(async () => {
    await prisma.$disconnect();
    await db.drop();
  });

  beforeEach(async () => {
    await queryOnce(
      db.url,
      'TRUNCATE brokers, broker_tombstones, topics, topic_tombstones, partitions, backup_state',
    );
  });

  const topics = async () =>
    (await prisma.topic.findMany({ orderBy: { name: 'asc' } })).map((t) => ({
      name: t.name,
      topicId: t.topicId,
      partitionCount: t.partitionCount,
      raftIndex: Number(t.raftIndex),
    }));
  const partitions = async () =>
    (
      await prisma.partition.findMany({ orderBy: [{ topicName: 'asc' }, { partitionId: 'asc' }] })
    ).map((p) => ({
      topicName: p.topicName,
      topicId: p.topicId,
      partitionId: p.partitionId,
      leaderId: p.leaderId,
      isrIds: p.isrIds,
      raftIndex: Number(p.raftIndex),
    }));

  it('writes every field of every table, readable through the Prisma client', async () => {
    const result = await writer.write([
      {
        raftIndex: 7,
        brokers: [
          broker(1, {
            rack: 'a',
            brokerEpoch: 2 ** 40,
            pushEndpoint: 'http://10.0.0.1:8080/notify',
            lastHeartbeatAtMs: T0 + 1234,
          }),
        ],
        topics: [
          topic('orders', ID_A, {
            partitionCount: 2,
            replicationFactor: 3,
            config: { 'retention.ms': '604800000' },
          }),
        ],
        partitions: [
          partition('orders', ID_A, 0, {
            leaderId: 1,
            replicaIds: [1, 2, 3],
            isrIds: [1, 3],
            startOffset: 5,
            endOffset: 2 ** 50,
            leaderEpoch: 4,
            partitionEpoch: 9,
            lastUpdatedAtMs: T0 + 987,
          }),
          partition('orders', ID_A, 1, { leaderId: -1, isrIds: [] }),
        ],
      },
    ]);

    expect(result).toEqual({
      backedUpIndex: 7,
      generation: 0,
      upserted: { brokers: 1, topics: 1, partitions: 2 },
      deleted: { brokers: 0, topics: 0, partitions: 0 },
      dropped: { olderGeneration: 0, newerGeneration: 0 },
    });
    const [storedBroker] = await prisma.broker.findMany();
    expect(storedBroker).toMatchObject({
      brokerId: 1,
      host: '10.0.0.1',
      port: 9192,
      rack: 'a',
      brokerEpoch: 2n ** 40n,
      status: 'ONLINE',
      pushEndpoint: 'http://10.0.0.1:8080/notify',
      lastHeartbeatAt: new Date(T0 + 1234),
      registeredAt: new Date(T0),
      raftIndex: 7n,
    });
    const [storedTopic] = await prisma.topic.findMany();
    expect(storedTopic).toMatchObject({
      name: 'orders',
      topicId: ID_A,
      partitionCount: 2,
      replicationFactor: 3,
      config: { 'retention.ms': '604800000' },
      createdAt: new Date(T0),
      raftIndex: 7n,
    });
    const stored = await prisma.partition.findMany({ orderBy: { partitionId: 'asc' } });
    expect(stored[0]).toMatchObject({
      topicName: 'orders',
      topicId: ID_A,
      partitionId: 0,
      leaderId: 1,
      replicaIds: [1, 2, 3],
      isrIds: [1, 3],
      startOffset: 5n,
      endOffset: 2n ** 50n,
      leaderEpoch: 4,
      partitionEpoch: 9,
      lastUpdatedAt: new Date(T0 + 987),
      raftIndex: 7n,
    });
    expect(stored[1]).toMatchObject({ leaderId: -1, isrIds: [] });
    expect(await writer.readState()).toMatchObject({ clusterId: 'cluster-1', backedUpIndex: 7 });
  });

  it('ignores a duplicate batch', async () => {
    const batch = createTopic(3, 'orders', ID_A, 2);
    await writer.write([batch]);
    const before = await partitions();

    const again = await writer.write([batch]);

    expect(again.upserted).toEqual({ brokers: 0, topics: 0, partitions: 0 });
    expect(await partitions()).toEqual(before);
  });

  it('never moves a row back: a late batch leaves the newer state', async () => {
    await writer.write([createTopic(3, 'orders', ID_A, 1)]);
    await writer.write([
      { raftIndex: 12, partitions: [partition('orders', ID_A, 0, { leaderId: 3, isrIds: [3] })] },
    ]);

    const late = await writer.write([
      { raftIndex: 10, partitions: [partition('orders', ID_A, 0, { leaderId: 2, isrIds: [2] })] },
      { raftIndex: 4, brokers: [broker(1)] },
    ]);

    expect(late.upserted.partitions).toBe(0);
    expect(await partitions()).toEqual([
      {
        topicName: 'orders',
        topicId: ID_A,
        partitionId: 0,
        leaderId: 3,
        isrIds: [3],
        raftIndex: 12,
      },
    ]);
    expect((await writer.readState())?.backedUpIndex).toBe(12);
  });

  it('coalesces batches that touch the same row, keeping the newest', async () => {
    const result = await writer.write([
      { raftIndex: 9, partitions: [partition('orders', ID_A, 0, { leaderId: 9 })] },
      createTopic(3, 'orders', ID_A, 1),
      { raftIndex: 5, partitions: [partition('orders', ID_A, 0, { leaderId: 5 })] },
    ]);

    expect(result.upserted).toEqual({ brokers: 0, topics: 1, partitions: 1 });
    expect((await partitions())[0]).toMatchObject({ leaderId: 9, raftIndex: 9 });
  });

  it('keeps a deleted topic deleted against late upserts of it and of its partitions', async () => {
    await writer.write([createTopic(3, 'orders', ID_A, 2)]);
    const del = await writer.write([
      { raftIndex: 8, deletedTopics: [{ name: 'orders', topicId: ID_A }] },
    ]);
    expect(del.deleted).toEqual({ brokers: 0, topics: 1, partitions: 2 });

    const late = await writer.write([
      { raftIndex: 5, topics: [topic('orders', ID_A, { config: { a: 'b' } })] },
      { raftIndex: 6, partitions: [partition('orders', ID_A, 1, { leaderId: 2 })] },
      // A partition the backup never saw before the delete: still refused.
      { raftIndex: 7, partitions: [partition('orders', ID_A, 5)] },
      createTopic(3, 'orders', ID_A, 2),
    ]);

    expect(late.upserted).toEqual({ brokers: 0, topics: 0, partitions: 0 });
    expect(await topics()).toEqual([]);
    expect(await partitions()).toEqual([]);
    expect(await prisma.topicTombstone.findMany()).toMatchObject([
      { topicName: 'orders', topicId: ID_A, deletedAtIndex: 8n },
    ]);
  });

  it('does not let a delete that arrives first be undone by the creation that preceded it', async () => {
    await writer.write([{ raftIndex: 8, deletedTopics: [{ name: 'orders', topicId: ID_A }] }]);
    await writer.write([createTopic(3, 'orders', ID_A, 2)]);

    expect(await topics()).toEqual([]);
    expect(await partitions()).toEqual([]);
  });

  it('accepts a topic re-created under the same name, and drops the old incarnation', async () => {
    await writer.write([createTopic(3, 'orders', ID_A, 3)]);
    // The delete (index 8) has not arrived yet, or was lost: the re-creation alone must still
    // leave only the new incarnation's partitions.
    await writer.write([createTopic(10, 'orders', ID_B, 1)]);

    expect(await topics()).toEqual([
      { name: 'orders', topicId: ID_B, partitionCount: 1, raftIndex: 10 },
    ]);
    expect(await partitions()).toEqual([
      {
        topicName: 'orders',
        topicId: ID_B,
        partitionId: 0,
        leaderId: 1,
        isrIds: [1],
        raftIndex: 10,
      },
    ]);

    // A late job of the old incarnation, while its delete is still missing, changes nothing...
    await writer.write([
      { raftIndex: 6, partitions: [partition('orders', ID_A, 2, { leaderId: 7 })] },
    ]);
    expect((await partitions()).map((p) => [p.topicId, p.partitionId])).toEqual([[ID_B, 0]]);
    // ...and neither does the old incarnation's delete when it finally arrives.
    await writer.write([{ raftIndex: 8, deletedTopics: [{ name: 'orders', topicId: ID_A }] }]);
    expect(await topics()).toEqual([
      { name: 'orders', topicId: ID_B, partitionCount: 1, raftIndex: 10 },
    ]);
    expect((await partitions()).map((p) => [p.topicId, p.partitionId])).toEqual([[ID_B, 0]]);

    // A later partition change of the new incarnation applies.
    await writer.write([
      { raftIndex: 11, partitions: [partition('orders', ID_B, 0, { leaderId: 2, isrIds: [2] })] },
    ]);
    expect((await partitions())[0]).toMatchObject({ leaderId: 2, raftIndex: 11 });
  });

  it('stores a topic deleted and re-created within one batch (one index) as its new incarnation', async () => {
    await writer.write([createTopic(3, 'orders', ID_A, 2)]);
    // The state at index 9: incarnation A deleted at some index ≤ 9, B created after it. The
    // job for index 9 carries both; A's tombstone gets index 9 and must not block B's rows.
    const recreated = createTopic(9, 'orders', ID_B, 1);
    await writer.write([{ ...recreated, deletedTopics: [{ name: 'orders', topicId: ID_A }] }]);
    expect(await topics()).toEqual([
      { name: 'orders', topicId: ID_B, partitionCount: 1, raftIndex: 9 },
    ]);
    expect((await partitions()).map((p) => [p.topicId, p.partitionId])).toEqual([[ID_B, 0]]);

    // A duplicate of the same job changes nothing; a late row of A at index 9 stays blocked.
    await writer.write([{ ...recreated, deletedTopics: [{ name: 'orders', topicId: ID_A }] }]);
    await writer.write([
      {
        raftIndex: 9,
        topics: [topic('orders', ID_A, { partitionCount: 2 })],
        partitions: [partition('orders', ID_A, 1)],
      },
    ]);
    expect(await topics()).toEqual([
      { name: 'orders', topicId: ID_B, partitionCount: 1, raftIndex: 9 },
    ]);
    expect((await partitions()).map((p) => [p.topicId, p.partitionId])).toEqual([[ID_B, 0]]);
  });

  it('keeps a removed broker removed, and accepts its later re-registration', async () => {
    await writer.write([{ raftIndex: 2, brokers: [broker(1)] }]);
    await writer.write([{ raftIndex: 5, deletedBrokerIds: [1] }]);
    await writer.write([{ raftIndex: 4, brokers: [broker(1, { status: 'FENCED' })] }]);
    expect(await prisma.broker.findMany()).toEqual([]);

    await writer.write([{ raftIndex: 9, brokers: [broker(1, { brokerEpoch: 9 })] }]);
    expect(await prisma.broker.findMany()).toMatchObject([{ brokerId: 1, brokerEpoch: 9n }]);
  });

  it('serialises concurrent writers: a delete racing late upserts still wins', async () => {
    for (let round = 0; round < 5; round += 1) {
      const name = `race-${round}`;
      await writer.write([createTopic(10, name, ID_C, 4)]);
      const others = Array.from(
        { length: 6 },
        () => new BackupWriter(prisma, { clusterId: 'cluster-1' }),
      );
      await Promise.all([
        others[0]?.write([{ raftIndex: 20, deletedTopics: [{ name, topicId: ID_C }] }]),
        ...others
          .slice(1)
          .map((w, i) =>
            w.write([
              { raftIndex: 11 + i, partitions: [partition(name, ID_C, i % 4, { leaderId: 2 })] },
            ]),
          ),
      ]);
      expect((await topics()).filter((t) => t.name === name)).toEqual([]);
      expect((await partitions()).filter((p) => p.topicName === name)).toEqual([]);
    }
  });

  it('advances backup_state monotonically and refuses another cluster', async () => {
    await writer.write([{ raftIndex: 10, brokers: [broker(1)] }]);
    await writer.write([{ raftIndex: 4, brokers: [broker(2)] }]);
    expect(await writer.readState()).toMatchObject({ clusterId: 'cluster-1', backedUpIndex: 10 });

    const stranger = new BackupWriter(prisma, { clusterId: 'cluster-2' });
    const error = await stranger
      .write([{ raftIndex: 50, brokers: [broker(3)] }])
      .catch((e: unknown) => e);

    expect(error).toBeInstanceOf(PersistenceError);
    expect((error as PersistenceError).code).toBe('persistence/backup-cluster-mismatch');
    expect((await prisma.broker.findMany()).map((b) => b.brokerId).sort()).toEqual([1, 2]);
    expect((await writer.readState())?.backedUpIndex).toBe(10);
  });

  it('repairs a backup that missed a deletion with a full resync', async () => {
    await writer.write([
      createTopic(3, 'kept', ID_A, 2),
      createTopic(4, 'lost-delete', ID_B, 1),
      { raftIndex: 5, brokers: [broker(1), broker(2)] },
    ]);

    const result = await writer.write([
      {
        raftIndex: 30,
        full: true,
        brokers: [broker(1)],
        topics: [topic('kept', ID_A, { partitionCount: 2 })],
        partitions: [partition('kept', ID_A, 0), partition('kept', ID_A, 1)],
      },
    ]);

    expect(result.deleted).toEqual({ brokers: 1, topics: 1, partitions: 1 });
    expect((await topics()).map((t) => [t.name, t.raftIndex])).toEqual([['kept', 30]]);
    expect((await prisma.broker.findMany()).map((b) => b.brokerId)).toEqual([1]);
    // ...and the removals are tombstoned against late jobs.
    await writer.write([
      createTopic(4, 'lost-delete', ID_B, 1),
      { raftIndex: 6, brokers: [broker(2)] },
    ]);
    expect((await topics()).map((t) => t.name)).toEqual(['kept']);
    expect((await prisma.broker.findMany()).map((b) => b.brokerId)).toEqual([1]);
  });

  it('reads back every row as the jobs carried it (BackupReader)', async () => {
    const b1 = broker(1, {
      rack: 'a',
      brokerEpoch: 7,
      status: 'FENCED',
      pushEndpoint: 'http://10.0.0.1:9300/notify',
      lastHeartbeatAtMs: T0 + 5,
    });
    const t = topic('orders', ID_A, { partitionCount: 2, config: { 'retention.ms': '1000' } });
    const p0 = partition('orders', ID_A, 0, { startOffset: 3, endOffset: 9, leaderEpoch: 2 });
    const p1 = partition('orders', ID_A, 1, { leaderId: -1, isrIds: [], partitionEpoch: 4 });
    await writer.write([{ raftIndex: 12, brokers: [b1], topics: [t], partitions: [p1, p0] }]);

    const read = await new BackupReader(prisma).readAll();
    expect(read.state).toMatchObject({ clusterId: 'cluster-1', backedUpIndex: 12 });
    expect(read.brokers).toEqual([b1]);
    expect(read.topics).toEqual([t]);
    expect(read.partitions).toEqual([p0, p1]);
  });

  it('upserts many partitions in several statements, in one transaction', async () => {
    const chunked = new BackupWriter(prisma, { clusterId: 'cluster-1', partitionsPerStatement: 3 });
    const result = await chunked.write([createTopic(4, 'wide', ID_A, 10)]);
    expect(result.upserted.partitions).toBe(10);
    expect((await partitions()).map((p) => p.partitionId)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    // A row the database refuses in the last statement (int4 overflow): the whole write is
    // rolled back, the statements before it included.
    const later = createTopic(5, 'wide', ID_A, 10);
    const rows = (later.partitions ?? []).map((row) => ({ ...row, leaderId: 2 }));
    rows[9] = { ...partition('wide', ID_A, 9), replicaIds: [3_000_000_000] };
    await expect(chunked.write([{ ...later, partitions: rows }])).rejects.toThrow();
    expect((await partitions()).map((p) => [p.partitionId, p.leaderId])).toEqual(
      Array.from({ length: 10 }, (_, i) => [i, 1]),
    );
    expect(() => new BackupWriter(prisma, { clusterId: 'c', partitionsPerStatement: 0 })).toThrow(
      /partitionsPerStatement/,
    );
  });

  it('rebases the backup on a restored cluster whose Raft indices start again', async () => {
    await writer.write([
      createTopic(500, 'old', ID_A, 2),
      { raftIndex: 501, brokers: [broker(1)] },
    ]);
    await writer.write([{ raftIndex: 502, deletedTopics: [{ name: 'gone', topicId: ID_B }] }]);
    // The restored cluster's state at its index 3: forward-only writes alone would ignore it.
    const full: BackupBatch = {
      ...createTopic(3, 'old', ID_A, 1),
      brokers: [broker(2)],
      full: true,
    };
    expect((await writer.write([full])).backedUpIndex).toBe(502);
    expect((await topics()).map((t) => t.raftIndex)).toEqual([500]);

    await expect(writer.rebase({ ...full, full: false })).rejects.toMatchObject({
      code: 'persistence/invalid-backup-row',
    });
    expect((await writer.rebase(full)).backedUpIndex).toBe(3);
    expect(await topics()).toEqual([
      { name: 'old', topicId: ID_A, partitionCount: 1, raftIndex: 3 },
    ]);
    expect((await partitions()).map((p) => p.partitionId)).toEqual([0]);
    expect((await prisma.broker.findMany()).map((b) => b.brokerId)).toEqual([2]);
    // The lost cluster's tombstones are gone: the restored cluster may create "gone" at index 4.
    await writer.write([createTopic(4, 'gone', ID_C, 1)]);
    expect((await topics()).map((t) => t.name)).toEqual(['gone', 'old']);
    expect((await writer.readState())?.backedUpIndex).toBe(4);
  });

  it('rebases on the first full batch of a newer generation and drops older generations for good', async () => {
    // The lost cluster (generation 0) backed up up to index 502.
    await writer.write([
      createTopic(500, 'old', ID_A, 2),
      { raftIndex: 502, brokers: [broker(1)] },
    ]);
    // The restored cluster (generation 1): its changes before its full resync are dropped...
    const early = await writer.write([
      { ...createTopic(4, 'early', ID_C, 1), generation: 1, sinceIndex: 2 },
    ]);
    expect(early.dropped).toEqual({ olderGeneration: 0, newerGeneration: 1 });
    expect(await writer.readState()).toMatchObject({ backedUpIndex: 502, generation: 0 });
    expect((await topics()).map((t) => t.name)).toEqual(['old']);

    // ...its full batch (a catch-up after a crash between the restore and its rebase, say)
    // replaces everything, even grouped with a late job of the lost cluster and a later change.
    const result = await writer.write([
      { raftIndex: 503, generation: 0, brokers: [broker(1, { brokerEpoch: 7 })] },
      { ...createTopic(3, 'old', ID_A, 1), brokers: [broker(2)], generation: 1, full: true },
      { ...createTopic(5, 'later', ID_B, 1), generation: 1 },
    ]);
    expect(result).toMatchObject({
      backedUpIndex: 5,
      generation: 1,
      dropped: { olderGeneration: 1, newerGeneration: 0 },
    });
    expect(await writer.readState()).toMatchObject({
      backedUpIndex: 5,
      generation: 1,
      fullBackupIndex: 3,
    });
    expect(await topics()).toEqual([
      { name: 'later', topicId: ID_B, partitionCount: 1, raftIndex: 5 },
      { name: 'old', topicId: ID_A, partitionCount: 1, raftIndex: 3 },
    ]);
    expect((await prisma.broker.findMany()).map((b) => b.brokerId)).toEqual([2]);

    // The lost cluster's jobs still queued in Redis arrive late: dropped, whatever their index.
    const late = await writer.write([
      { raftIndex: 900, brokers: [broker(9)], deletedTopics: [{ name: 'old', topicId: ID_A }] },
      { ...createTopic(901, 'zombie', ID_C, 1), generation: 0, full: true },
    ]);
    expect(late.dropped).toEqual({ olderGeneration: 2, newerGeneration: 0 });
    expect((await topics()).map((t) => t.name)).toEqual(['later', 'old']);
    expect((await prisma.broker.findMany()).map((b) => b.brokerId)).toEqual([2]);
    expect(await writer.readState()).toMatchObject({ backedUpIndex: 5, generation: 1 });

    // The restored cluster goes on as usual; a rebase back to an older generation is refused.
    await writer.write([{ raftIndex: 6, generation: 1, brokers: [broker(3)] }]);
    expect(await writer.readState()).toMatchObject({
      backedUpIndex: 6,
      generation: 1,
      fullBackupIndex: 3,
    });
    // A later full batch moves the full index; an older one does not move it back.
    const brokers = [broker(2), broker(3)];
    await writer.write([{ ...createTopic(8, 'old', ID_A, 1), brokers, generation: 1, full: true }]);
    await writer.write([{ ...createTopic(7, 'old', ID_A, 1), brokers, generation: 1, full: true }]);
    expect(await writer.readState()).toMatchObject({ backedUpIndex: 8, fullBackupIndex: 8 });
    await expect(
      writer.rebase({ ...createTopic(9, 'x', ID_C, 1), generation: 0, full: true }),
    ).rejects.toMatchObject({ code: 'persistence/stale-generation' });
    expect((await prisma.broker.findMany()).map((b) => b.brokerId)).toEqual([2, 3]);
  });

  it('rejects malformed rows without writing anything', async () => {
    const bad: BackupBatch[] = [
      { raftIndex: 0, brokers: [broker(1)] },
      { raftIndex: 3, topics: [topic('orders', 'not-a-uuid')] },
      { raftIndex: 3, partitions: [partition('orders', ID_A, 0, { endOffset: 1.5 })] },
      { raftIndex: 3, brokers: [broker(1, { registeredAtMs: Number.NaN })] },
    ];
    for (const batch of bad) {
      const error = await writer
        .write([createTopic(2, 'fine', ID_C, 1), batch])
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(PersistenceError);
      expect((error as PersistenceError).code).toBe('persistence/invalid-backup-row');
    }
    expect(await topics()).toEqual([]);
    expect(await writer.readState()).toBeNull();
  });

  it('converges to the newest state whatever the order and grouping of the batches (property)', async () => {
    // A history of one topic name: created, its partition changed, deleted, re-created under a
    // new id... Each Raft entry is one batch. Delivered shuffled and grouped at random, the
    // backup must end exactly at the state after the last entry.
    type Step =
      | { kind: 'create'; partitions: number }
      | { kind: 'alter'; leader: number }
      | { kind: 'delete' };
    const stepArb: fc.Arbitrary<Step> = fc.oneof(
      fc.record({
        kind: fc.constant('create' as const),
        partitions: fc.integer({ min: 1, max: 3 }),
      }),
      fc.record({ kind: fc.constant('alter' as const), leader: fc.integer({ min: 1, max: 5 }) }),
      fc.record({ kind: fc.constant('delete' as const) }),
    );
    const ids = [
      ID_A,
      ID_B,
      ID_C,
      '00000000-0000-4000-8000-00000000000d',
      '00000000-0000-4000-8000-00000000000e',
    ];

    await fc.assert(
      fc.asyncProperty(
        fc.array(stepArb, { minLength: 1, maxLength: 10 }),
        fc.infiniteStream(fc.nat()),
        async (steps, randomness) => {
          await queryOnce(db.url, 'TRUNCATE topics, topic_tombstones, partitions, backup_state');
          // The model: what the state machine holds after each entry.
          const batches: BackupBatch[] = [];
          let live: { id: string; count: number; leaders: number[] } | undefined;
          let incarnations = 0;
          steps.forEach((step, i) => {
            const raftIndex = i + 1;
            if (step.kind === 'create' && !live) {
              const id = ids[incarnations % ids.length] ?? ID_A;
              incarnations += 1;
              live = { id, count: step.partitions, leaders: Array(step.partitions).fill(1) };
              batches.push(createTopic(raftIndex, 't', id, step.partitions));
            } else if (step.kind === 'alter' && live) {
              const p = step.leader % live.count;
              live.leaders[p] = step.leader;
              batches.push({
                raftIndex,
                partitions: [partition('t', live.id, p, { leaderId: step.leader })],
              });
            } else if (step.kind === 'delete' && live) {
              batches.push({ raftIndex, deletedTopics: [{ name: 't', topicId: live.id }] });
              live = undefined;
            }
          });
          const expected = live
            ? live.leaders.map((leaderId, partitionId) => ({
                topicId: live?.id,
                partitionId,
                leaderId,
              }))
            : [];

          // Deliver in a random order, in random groups.
          const rng = randomness[Symbol.iterator]();
          const next = () => (rng.next().value as number) ?? 0;
          const shuffled = [...batches];
          for (let i = shuffled.length - 1; i > 0; i -= 1) {
            const j = next() % (i + 1);
            [shuffled[i], shuffled[j]] = [shuffled[j] as BackupBatch, shuffled[i] as BackupBatch];
          }
          while (shuffled.length > 0) {
            await writer.write(shuffled.splice(0, 1 + (next() % 3)));
          }

          const stored = (await partitions()).map(({ topicId, partitionId, leaderId }) => ({
            topicId,
            partitionId,
            leaderId,
          }));
          expect(stored).toEqual(expected);
          expect((await topics()).map((t) => t.topicId)).toEqual(live ? [live.id] : []);
        },
      ),
      { numRuns: 40 },
    );
  });
});
