/**
 * Disaster recovery (issue #6): a cluster whose Raft logs are all gone is rebuilt from the
 * PostgreSQL backup by `DMQ_RESTORE_FROM_BACKUP=on`, as one committed command; a node that
 * still has a log refuses, and says why.
 */
import type { BrokerInfo, TopicMetadata } from '@dmq/api-contracts';
import { BackupQueue } from '@dmq/persistence-prisma';
import { LocalCluster, pollUntil, type LogLine } from './harness/local-cluster';
import {
  apiView,
  createTestDatabase,
  readBackup,
  uniqueQueueName,
  waitForBackup,
  type TestDatabase,
} from './harness/backup-fixtures';

jest.setTimeout(180_000);

interface Snapshot {
  topics: TopicMetadata[];
  brokers: BrokerInfo[];
}

const REDIS_URL = process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379';

describe('restore from backup (DMQ_RESTORE_FROM_BACKUP=on)', () => {
  let db: TestDatabase;
  const databases: TestDatabase[] = [];
  const clusters: LocalCluster[] = [];

  beforeAll(async () => {
    db = await createTestDatabase('backup_restore');
  });
  afterAll(async () => {
    for (const cluster of clusters) await cluster.stop();
    await db?.drop();
    for (const database of databases) await database.drop();
  });

  const env = (queue: string, extra: Record<string, string> = {}) => ({
    DMQ_BACKUP: 'on',
    DATABASE_URL: db.url,
    REDIS_URL,
    DMQ_BACKUP_QUEUE: queue,
    DMQ_CLUSTER_ID: 'restore-test',
    DMQ_BROKER_SESSION_TIMEOUT_MS: '600000',
    ...extra,
  });

  async function startCluster(
    queue: string,
    extra: Record<string, string> = {},
  ): Promise<LocalCluster> {
    const cluster = await LocalCluster.start({ env: env(queue, extra) });
    clusters.push(cluster);
    return cluster;
  }

  async function snapshotOf(cluster: LocalCluster): Promise<Snapshot> {
    const client = cluster.client();
    try {
      return { topics: await client.listTopics(), brokers: await client.listBrokers() };
    } finally {
      await client.close();
    }
  }

  it('rebuilds an equal state on a brand-new cluster, which then backs up on its own', async () => {
    // The cluster that will be lost.
    const lost = await startCluster(uniqueQueueName('lost'));
    const client = lost.client();
    for (const brokerId of [1, 2, 3])
      await client.registerBroker({ brokerId, host: '127.0.0.1', port: 9190 + brokerId });
    await client.createTopic({
      name: 'orders',
      partitions: 4,
      replicationFactor: 3,
      config: { 'retention.ms': '3600000' },
    });
    await client.createTopic({ name: 'payments', partitions: 2, replicationFactor: 2 });
    await client.createTopic({ name: 'deleted', partitions: 1, replicationFactor: 1 });
    await client.deleteTopic('deleted');
    await client.close();
    const before = await snapshotOf(lost);
    await waitForBackup(db, before, 'the lost cluster backed up');
    // Every Raft log is gone.
    await lost.stop();

    const restored = await startCluster(uniqueQueueName('restored'), {
      DMQ_RESTORE_FROM_BACKUP: 'on',
      // In parts: "orders" (4 partitions) alone, then "payments" (2).
      DMQ_RESTORE_PARTITIONS_PER_PART: '2',
    });
    await restored.waitForLeader();
    // Whichever node led first with an empty state restored (leadership may move meanwhile).
    const restoredLines = () =>
      restored.nodes.flatMap((n) =>
        n.lines
          .filter((l) => typeof l.msg === 'string' && l.msg.startsWith('Restored from backup'))
          .map((line) => ({ node: n, line })),
      );
    const [done] = await pollUntil(
      'a node restored from the backup',
      () => (restoredLines().length > 0 ? restoredLines() : undefined),
      30_000,
      50,
    );
    if (done === undefined) throw new Error('no restore');
    expect(done.line).toMatchObject({ brokers: 3, topics: 2, partitions: 6, repairs: 0, parts: 2 });
    expect(
      done.node.lines
        .filter((l) => typeof l.msg === 'string' && l.msg.startsWith('restore part '))
        .map((l) => l.msg),
    ).toEqual(['restore part 1 of 2 committed', 'restore part 2 of 2 committed']);
    const restorer = done.node;

    // Equal, with the documented semantics: brokers FENCED, partitions leaderless (ISR kept,
    // epochs bumped) until the brokers register again.
    const after = await snapshotOf(restored);
    expect(after.brokers.map((b) => [b.brokerId, b.host, b.port, b.status])).toEqual(
      before.brokers.map((b) => [b.brokerId, b.host, b.port, 'FENCED']),
    );
    expect(after.topics.map((t) => t.name)).toEqual(['orders', 'payments']);
    for (const topic of after.topics) {
      const original = before.topics.find((t) => t.name === topic.name);
      expect(topic).toMatchObject({
        topicId: original?.topicId,
        replicationFactor: original?.replicationFactor,
        config: original?.config,
        createdAt: original?.createdAt,
      });
      expect(topic.partitions.map((p) => [p.partition, p.leader, p.replicas, p.isr])).toEqual(
        original?.partitions.map((p) => [p.partition, -1, p.replicas, p.isr]),
      );
    }

    // Brokers come back: partitions get leaders again.
    const restoredClient = restored.client();
    try {
      for (const brokerId of [1, 2, 3]) {
        const { brokerEpoch } = await restoredClient.registerBroker({
          brokerId,
          host: '127.0.0.1',
          port: 9190 + brokerId,
        });
        await restoredClient.heartbeat(brokerId, { brokerEpoch });
      }
      await pollUntil('partitions led again', async () => {
        const topics = await restoredClient.listTopics();
        return topics.every((t) => t.partitions.every((p) => p.leader !== -1)) ? true : undefined;
      });

      // The backup was rebased on the restored cluster (its Raft indices start again), so
      // its new changes land, and a name the lost cluster deleted may be used again.
      await restoredClient.createTopic({ name: 'deleted', partitions: 1, replicationFactor: 1 });
      await restoredClient.deleteTopic('payments');
      const expected = await snapshotOf(restored);
      await waitForBackup(db, expected, 'the restored cluster backed up');
    } finally {
      await restoredClient.close();
    }

    // A node that still has a log refuses (the opt-in left on across a restart), saying why.
    // Exactly one command restored the state.
    expect(restoredLines()).toHaveLength(1);
    const node = restorer;
    await node.kill('SIGKILL');
    await node.start();
    const refusal = await node.waitForLog((l) =>
      String(l.msg).startsWith('Restore from backup refused'),
    );
    expect(refusal['code']).toBe('restore/node-has-log');
    expect(String(refusal.msg)).toMatch(/started with a Raft log/);
  });

  it('finishes a restore whose leader died between two parts: the next leader aborts and starts over', async () => {
    const queueName = uniqueQueueName('parts');
    const partsDb = await createTestDatabase('restore_parts');
    databases.push(partsDb);
    const partsEnv = { DMQ_CLUSTER_ID: 'parts-test', DATABASE_URL: partsDb.url };
    const lost = await startCluster(queueName, partsEnv);
    const client = lost.client();
    for (const brokerId of [1, 2])
      await client.registerBroker({ brokerId, host: '127.0.0.1', port: 9390 + brokerId });
    const TOPICS = 120;
    for (let i = 0; i < TOPICS; i++) {
      await client.createTopic({ name: `t-${i}`, partitions: 1, replicationFactor: 2 });
    }
    await client.close();
    const before = await snapshotOf(lost);
    await waitForBackup(partsDb, before, 'the lost cluster backed up');
    await lost.stop();

    // One topic per part: 120 parts. The node that starts them dies after the first.
    const restored = await startCluster(queueName, {
      ...partsEnv,
      DMQ_RESTORE_FROM_BACKUP: 'on',
      DMQ_RESTORE_PARTITIONS_PER_PART: '1',
    });
    const isFirstPart = (l: LogLine) => l.msg === `restore part 1 of ${TOPICS} committed`;
    const first = await Promise.any(
      restored.nodes.map((n) => n.waitForLog(isFirstPart, 60_000).then(() => n)),
    );
    await first.kill('SIGKILL');
    const isDone = (l: LogLine) =>
      typeof l.msg === 'string' && l.msg.startsWith('Restored from backup');
    const others = restored.nodes.filter((n) => n !== first);
    const finisher = await Promise.any(
      others.map((n) => n.waitForLog(isDone, 120_000).then(() => n)),
    );
    // It found the partial restore (at least one part committed, not all) and did it over.
    const aborted = await finisher.waitForLog(
      (l) => typeof l.msg === 'string' && l.msg.startsWith('aborted a restore left unfinished'),
    );
    expect(aborted['parts']).toBe(TOPICS);
    expect(aborted['nextPart']).toBeGreaterThanOrEqual(1);
    expect(aborted['nextPart']).toBeLessThan(TOPICS);

    // Equal to what was backed up (ids, replicas), on the surviving nodes.
    const after = await snapshotOf(restored);
    expect(after.topics.map((t) => [t.name, t.topicId])).toEqual(
      before.topics.map((t) => [t.name, t.topicId]),
    );
    expect(after.topics.map((t) => t.partitions.map((p) => p.replicas))).toEqual(
      before.topics.map((t) => t.partitions.map((p) => p.replicas)),
    );
    // No backup job was made of the partial restore (the new leader's catch-up would have
    // rebased the backup on it, and the restore read it back): no full backup of generation 1
    // below the index the restore completed at.
    const doneLine = await finisher.waitForLog(isDone);
    const queue = new BackupQueue({ redisUrl: REDIS_URL, queueName });
    try {
      const jobs = await queue.queue.getJobs([
        'completed',
        'failed',
        'waiting',
        'active',
        'delayed',
      ]);
      const partialFulls = jobs.filter(
        (job) =>
          String(job.id).startsWith('g1-full-') && job.data.raftIndex < Number(doneLine['index']),
      );
      expect(partialFulls.map((job) => job.id)).toEqual([]);
    } finally {
      await queue.close();
    }
    // The backup is rebased on the finished restore only (generation 1, every topic).
    await pollUntil('the backup rebased', async () => {
      const [row] = await partsDb.query<{ generation: number }>(
        'SELECT generation FROM backup_state',
      );
      return row?.generation === 1 ? true : undefined;
    });
    await waitForBackup(partsDb, after, 'the restored cluster backed up');
  });

  it("survives a crash between the restore and its rebase, and drops the lost cluster's queued jobs", async () => {
    // Both clusters use the same queue, as they do with the default DMQ_BACKUP_QUEUE.
    const queueName = uniqueQueueName('shared');
    const crashDb = await createTestDatabase('restore_crash');
    databases.push(crashDb);
    const crashEnv = { DMQ_CLUSTER_ID: 'crash-test', DATABASE_URL: crashDb.url };
    const backedUp = (state: Snapshot) => waitForBackup(crashDb, state);
    const lost = await startCluster(queueName, crashEnv);
    const client = lost.client();
    for (const brokerId of [1, 2])
      await client.registerBroker({ brokerId, host: '127.0.0.1', port: 9290 + brokerId });
    await client.createTopic({ name: 'orders', partitions: 3, replicationFactor: 2 });
    await client.createTopic({ name: 'audit', partitions: 1, replicationFactor: 1 });
    await client.close();
    const before = await snapshotOf(lost);
    await backedUp(before);
    await lost.stop();
    // The database as the lost cluster left it (the restore reads it, then rebases it).
    const tables = [
      'brokers',
      'broker_tombstones',
      'topics',
      'topic_tombstones',
      'partitions',
      'backup_state',
    ];
    for (const table of tables) {
      await crashDb.query(`DROP TABLE IF EXISTS saved_${table}`);
      await crashDb.query(`CREATE TABLE saved_${table} AS TABLE ${table}`);
    }
    const [lostState] = await crashDb.query<{ backed_up_index: string; generation: number }>(
      'SELECT backed_up_index, generation FROM backup_state',
    );
    expect(lostState?.generation).toBe(0);

    const restored = await startCluster(queueName, {
      ...crashEnv,
      DMQ_RESTORE_FROM_BACKUP: 'on',
    });
    await pollUntil(
      'the restore rebased the backup on generation 1',
      async () => {
        const [row] = await crashDb.query<{ generation: number }>(
          'SELECT generation FROM backup_state',
        );
        return row?.generation === 1 ? true : undefined;
      },
      60_000,
      100,
    );

    // The crash: every node dies, and the backup is as it was before the rebase.
    for (const node of restored.nodes) await node.kill('SIGKILL');
    for (const table of tables) {
      await crashDb.query(`TRUNCATE ${table}`);
      await crashDb.query(`INSERT INTO ${table} SELECT * FROM saved_${table}`);
    }
    for (const node of restored.nodes) await node.start();
    await restored.waitForLeader();

    // The next leader's catch-up sees a backup of an older generation and rebases it: the
    // tables show the restored state (brokers FENCED until they register again), not the
    // lost cluster's (ONLINE), although the lost cluster's indices are larger.
    const expected = await snapshotOf(restored);
    expect(expected.brokers.every((b) => b.status === 'FENCED')).toBe(true);
    await backedUp(expected);
    const [rebased] = await crashDb.query<{ backed_up_index: string; generation: number }>(
      'SELECT backed_up_index, generation FROM backup_state',
    );
    expect(rebased?.generation).toBe(1);
    expect(Number(rebased?.backed_up_index)).toBeLessThan(Number(lostState?.backed_up_index));

    // A job of the lost cluster, retried late from Redis with a larger index: dropped.
    const queue = new BackupQueue({ redisUrl: REDIS_URL, queueName });
    try {
      const lateIndex = Number(lostState?.backed_up_index) + 1_000;
      queue.enqueue({
        raftIndex: lateIndex,
        brokers: [
          {
            brokerId: 99,
            host: '127.0.0.1',
            port: 9399,
            rack: null,
            brokerEpoch: 1,
            status: 'ONLINE',
            pushEndpoint: null,
            lastHeartbeatAtMs: null,
            registeredAtMs: Date.now(),
          },
        ],
        deletedTopics: [
          {
            name: 'orders',
            topicId: before.topics.find((t) => t.name === 'orders')?.topicId ?? '',
          },
        ],
      });
      await queue.flushed();
      await pollUntil(
        "the lost cluster's late job was processed",
        async () =>
          (await queue.queue.getJobState(`idx-${lateIndex}`)) === 'completed' ? true : undefined,
        30_000,
        50,
      );
    } finally {
      await queue.close();
    }
    const stored = await readBackup(crashDb);
    expect({ brokers: stored.brokers, topics: stored.topics }).toEqual(
      apiView(expected.topics, expected.brokers),
    );

    // The restored cluster's own changes keep landing.
    const restoredClient = restored.client();
    try {
      await restoredClient.deleteTopic('audit');
    } finally {
      await restoredClient.close();
    }
    await backedUp(await snapshotOf(restored));
  });
});
