/**
 * The leader-only asynchronous backup (issue #6) as users run it: three real node processes,
 * the real PostgreSQL (a database of this file's own) and a redis-server of this file's own
 * (killed and restarted here; the shared one is never touched), a unique BullMQ queue.
 *
 * Duplicated, late and reordered jobs leaving the newest state is proved where it is decided,
 * in the writer: libs/persistence-prisma/src/backup/backup-writer.spec.ts ("converges to the
 * newest state whatever the order and grouping of the batches (property)", "ignores a
 * duplicate batch", "keeps a deleted topic deleted against late upserts …").
 */
import type { BackupStatus } from '@dmq/api-contracts';
import type { MetadataClient } from '@dmq/metadata-client';
import { BackupQueue } from '@dmq/persistence-prisma';
import { Client } from 'pg';
import { LocalCluster, pollUntil } from './harness/local-cluster';
import {
  OwnRedis,
  apiView,
  createTestDatabase,
  readBackup,
  scrapeMetric,
  uniqueQueueName,
  type TestDatabase,
} from './harness/backup-fixtures';

jest.setTimeout(180_000);

describe('backup to PostgreSQL through BullMQ (3 nodes)', () => {
  let db: TestDatabase;
  let redis: OwnRedis;
  let cluster: LocalCluster;
  let client: MetadataClient;
  const queueName = uniqueQueueName('backup');

  beforeAll(async () => {
    db = await createTestDatabase('backup');
    redis = await OwnRedis.start();
    cluster = await LocalCluster.start({
      env: {
        DMQ_BACKUP: 'on',
        DATABASE_URL: db.url,
        REDIS_URL: redis.url,
        DMQ_BACKUP_QUEUE: queueName,
        DMQ_BROKER_SESSION_TIMEOUT_MS: '600000',
      },
    });
    client = cluster.client();
    await cluster.waitForLeader();
    // Storage brokers the topics are placed on (their sessions outlive the test).
    for (const brokerId of [1, 2, 3])
      await client.registerBroker({ brokerId, host: '127.0.0.1', port: 9190 + brokerId });
  });

  afterAll(async () => {
    await client?.close();
    await cluster?.stop();
    await redis?.kill();
    await db?.drop();
  });

  /** Waits until the backup tables show exactly what the API shows (with a deadline). */
  async function converged(timeoutMs = 60_000): Promise<void> {
    let last = '';
    try {
      await pollUntil(
        'backup tables equal to the API',
        async () => {
          const [topics, brokers] = await Promise.all([client.listTopics(), client.listBrokers()]);
          const expected = apiView(topics, brokers);
          const stored = await readBackup(db);
          const actual = { brokers: stored.brokers, topics: stored.topics };
          last = JSON.stringify({ expected, actual });
          return JSON.stringify(actual) === JSON.stringify(expected) ? true : undefined;
        },
        timeoutMs,
        100,
      );
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${last}`);
    }
  }

  async function leaderBackup(): Promise<BackupStatus> {
    const leader = await cluster.waitForLeader();
    return (await client.clusterStatus({ node: leader })).backup;
  }

  async function counter(id: number, name: string): Promise<number> {
    return (await scrapeMetric(cluster.node(id).url, name)) ?? Number.NaN;
  }

  /** The leader compared backup_state with its applied index (and enqueued what was missing). */
  async function catchUpLogged(id: number, reason: string, fromIndex: number): Promise<void> {
    await cluster
      .node(id)
      .waitForLog(
        (l) =>
          l['reason'] === reason &&
          typeof l.msg === 'string' &&
          /^backup (is up to date|catch-up)/.test(l.msg),
        20_000,
        fromIndex,
      );
  }

  async function enqueued(): Promise<Map<number, number>> {
    const running = cluster.nodes.filter((n) => n.running);
    const values = await Promise.all(
      running.map((n) => counter(n.id, 'dmq_backup_jobs_enqueued_total')),
    );
    return new Map(running.map((n, i) => [n.id, values[i] as number]));
  }

  it('backs up brokers and topics created and deleted on the cluster; only the leader enqueues', async () => {
    const leader = await cluster.waitForLeader();
    const before = await enqueued();

    await client.registerBroker({ brokerId: 3, host: '127.0.0.1', port: 9293 });
    await client.createTopic({
      name: 'orders',
      partitions: 3,
      replicationFactor: 3,
      config: { 'retention.ms': '86400000' },
    });
    await client.createTopic({ name: 'payments', partitions: 2, replicationFactor: 2 });
    await client.createTopic({ name: 'gone', partitions: 4, replicationFactor: 1 });
    await client.deleteTopic('gone');
    await converged();

    const after = await enqueued();
    for (const node of cluster.nodes) {
      if (node.id === leader) {
        expect(after.get(node.id)).toBeGreaterThan(before.get(node.id) as number);
      } else {
        expect(after.get(node.id)).toBe(before.get(node.id));
      }
    }
    const status = await pollUntil('backup idle on the leader', async () => {
      const s = await leaderBackup();
      return s.status === 'idle' ? s : undefined;
    });
    expect(status).toMatchObject({ enabled: true, lagEntries: 0, lagMs: 0 });
    const followerStatus = await client.clusterStatus({
      node: cluster.nodes.find((n) => n.id !== leader)?.id ?? 0,
    });
    expect(followerStatus.backup.status).toBe('follower');
    const lag = await scrapeMetric(cluster.node(leader).url, 'dmq_backup_lag_entries');
    expect(lag).toBe(0);

    // A deleted topic stays deleted, also through a full resync.
    const tombstones = await db.query<{ topic_name: string }>(
      'SELECT topic_name FROM topic_tombstones',
    );
    expect(tombstones.map((t) => t.topic_name)).toEqual(['gone']);
    const resync = await client.resyncBackup();
    expect(resync).toMatchObject({ brokers: 3, topics: 2, partitions: 5 });
    await pollUntil('resync written', async () =>
      ((await readBackup(db)).backedUpIndex ?? 0) >= resync.index ? true : undefined,
    );
    await converged();
    expect((await readBackup(db)).topics.map((t) => t.name)).toEqual(['orders', 'payments']);
  });

  it('continues under a new leader after the leader is killed', async () => {
    await client.createTopic({ name: 'before-failover', partitions: 1, replicationFactor: 1 });
    const oldLeader = await cluster.waitForLeader();
    await cluster.node(oldLeader).kill('SIGKILL');
    const newLeader = await cluster.waitForLeader(20_000, [oldLeader]);
    expect(newLeader).not.toBe(oldLeader);

    await client.createTopic({ name: 'after-failover', partitions: 2, replicationFactor: 2 });
    await client.deleteTopic('before-failover');
    await client.registerBroker({ brokerId: 4, host: '127.0.0.1', port: 9194 });
    await converged();
    // The new leader compared backup_state with its applied index when it took over.
    const check = await cluster
      .node(newLeader)
      .waitForLog(
        (l) =>
          l['reason'] === 'leader' &&
          typeof l.msg === 'string' &&
          /^backup (is up to date|catch-up)/.test(l.msg),
      );
    expect(check['backedUpIndex']).toEqual(expect.any(Number));

    await cluster.node(oldLeader).start();
    await cluster.waitForLeader();
    await converged();
  });

  it('catches up with nothing missing after Redis was down during writes', async () => {
    const leader = await cluster.waitForLeader();
    await client.createTopic({ name: 'before-redis-outage', partitions: 1, replicationFactor: 1 });
    const logsBefore = cluster.node(leader).lines.length;
    await redis.kill();
    // Writes still commit while the backup cannot reach Redis.
    await client.createTopic({ name: 'during-redis-outage', partitions: 3, replicationFactor: 2 });
    await client.deleteTopic('before-redis-outage');
    await client.createTopic({ name: 'short-lived', partitions: 1, replicationFactor: 1 });
    await client.deleteTopic('short-lived');
    await pollUntil('backup degraded', async () =>
      (await leaderBackup()).status === 'degraded' ? true : undefined,
    );
    expect((await leaderBackup()).lagEntries).toBeGreaterThan(0);

    // Back, empty (no persistence): what it held is gone; the leader catches up.
    await redis.restart();
    await converged();
    await catchUpLogged(leader, 'redis-back', logsBefore);
    await pollUntil('backup healthy again', async () =>
      (await leaderBackup()).status === 'idle' ? true : undefined,
    );
  });

  it('catches up with nothing missing after PostgreSQL was unreachable during writes', async () => {
    const leader = await cluster.waitForLeader();
    await client.createTopic({ name: 'before-pg-outage', partitions: 1, replicationFactor: 1 });
    const logsBefore = cluster.node(leader).lines.length;
    // This file's database refuses connections for a while (the server stays up for others).
    await db.allowConnections(false);
    try {
      await pollUntil('backup degraded', async () =>
        (await leaderBackup()).status === 'degraded' ? true : undefined,
      );
      await client.createTopic({ name: 'during-pg-outage', partitions: 2, replicationFactor: 3 });
      await client.deleteTopic('before-pg-outage');
      await client.registerBroker({ brokerId: 5, host: '127.0.0.1', port: 9195 });
    } finally {
      await db.allowConnections(true);
    }
    await converged();
    await catchUpLogged(leader, 'database-back', logsBefore);
  });
  it('keeps committing while Redis hangs and the backup tables are locked, then catches up', async () => {
    const leader = await cluster.waitForLeader();
    // PostgreSQL answers nothing on the backup tables (a long lock), and Redis answers nothing
    // at all (SIGSTOP): connections stay open, so every backup call hangs instead of failing.
    const locker = new Client({ connectionString: db.url });
    await locker.connect();
    let frozen = false;
    try {
      await locker.query('BEGIN');
      await locker.query(
        'LOCK TABLE topics, partitions, brokers, backup_state IN ACCESS EXCLUSIVE MODE',
      );
      redis.freeze();
      frozen = true;
      // Writes commit on the majority and are acknowledged as usual: Raft never waits for
      // the backup (each call below would fail if it did: the client's deadline is 30 s,
      // and nothing of the backup moves until the end of the test).
      for (let i = 0; i < 20; i++) {
        await client.createTopic({
          name: `while-frozen-${i}`,
          partitions: 1,
          replicationFactor: 1,
        });
      }
      await client.deleteTopic('while-frozen-0');
      expect(
        (await client.listTopics()).filter((t) => t.name.startsWith('while-frozen-')),
      ).toHaveLength(19);
      // Nothing of it reached the backup meanwhile (the lock holder can still read).
      const { rows } = await locker.query<{ n: string }>(
        "SELECT count(*) AS n FROM topics WHERE name LIKE 'while-frozen-%'",
      );
      expect(rows[0]?.n).toBe('0');
      expect((await client.clusterStatus({ node: leader })).leaderId).toBe(leader);
    } finally {
      if (frozen) redis.thaw();
      await locker.query('ROLLBACK').catch(() => undefined);
      await locker.end();
    }
    await converged();
  });

  it('repairs the gap a dead-lettered job left with a full resync, and shows the dead letter', async () => {
    await client.createTopic({ name: 'lost-in-a-gap', partitions: 2, replicationFactor: 2 });
    await converged();
    const leader = await cluster.waitForLeader();
    const repairsBefore = await counter(leader, 'dmq_backup_dead_letter_repairs_total');
    // A change the backup lost: the rows of "lost-in-a-gap" are gone from PostgreSQL...
    await db.query("DELETE FROM partitions WHERE topic_name = 'lost-in-a-gap'");
    await db.query("DELETE FROM topics WHERE name = 'lost-in-a-gap'");
    // ...because its job failed on every attempt (a malformed job fails at once), after the
    // newest full backup; later jobs moved backed_up_index past it, hiding the gap.
    await client.createTopic({ name: 'after-the-gap', partitions: 1, replicationFactor: 1 });
    const { commitIndex } = await client.clusterStatus({ node: leader });
    const queue = new BackupQueue({ redisUrl: redis.url, queueName });
    try {
      // (As a catch-up job: its id must differ from the leader's job of the same index.)
      queue.enqueue({
        raftIndex: commitIndex,
        sinceIndex: 1,
        deletedTopics: [{ name: 'lost-in-a-gap', topicId: 'not-a-uuid' }],
      });
      await queue.flushed();
    } finally {
      await queue.close();
    }

    const shown = await pollUntil('the dead letter is shown', async () => {
      const answer = await client.backupDeadLetters({ node: leader });
      return answer.deadLetters.find((d) => d.raftIndex === commitIndex);
    });
    expect(shown).toMatchObject({ full: false, generation: 0, attemptsMade: 1 });
    expect(shown.failedReason).toContain('persistence/invalid-backup-row');
    // Every node shows it (it lives in Redis) and counts it in /metrics.
    const follower = cluster.nodes.find((n) => n.id !== leader && n.running)?.id ?? leader;
    expect((await client.backupDeadLetters({ node: follower })).count).toBeGreaterThan(0);
    await pollUntil('dead letters counted', async () =>
      (await counter(follower, 'dmq_backup_dead_letters')) > 0 ? true : undefined,
    );

    // The leader repaired the gap: "lost-in-a-gap" is back in the backup.
    await converged();
    expect(await counter(leader, 'dmq_backup_dead_letter_repairs_total')).toBe(repairsBefore + 1);
    await cluster
      .node(leader)
      .waitForLog(
        (l) => typeof l.msg === 'string' && l.msg.startsWith('a backup job was dead-lettered'),
      );
  });
});

describe('a node whose PostgreSQL and Redis are unreachable at start', () => {
  let db: TestDatabase;
  let redis: OwnRedis;
  let cluster: LocalCluster;

  afterAll(async () => {
    await cluster?.stop();
    await redis?.kill();
    await db?.drop();
  });

  it('starts, serves, warns, and backs up once they appear', async () => {
    db = await createTestDatabase('backup_late');
    redis = await OwnRedis.start();
    await redis.kill();
    await db.allowConnections(false);
    cluster = await LocalCluster.start({
      size: 1,
      env: {
        DMQ_BACKUP: 'on',
        DATABASE_URL: db.url,
        REDIS_URL: redis.url,
        DMQ_BACKUP_QUEUE: uniqueQueueName('late'),
      },
    });
    const client = cluster.client();
    try {
      await cluster.waitForLeader();
      await client.registerBroker({ brokerId: 1, host: '127.0.0.1', port: 9191 });
      await client.createTopic({ name: 'early', partitions: 2, replicationFactor: 1 });
      const node = cluster.node(1);
      await node.waitForLog((l) => l.msg === 'backup database not ready; will retry');
      expect((await client.clusterStatus()).backup.status).toBe('degraded');

      await db.allowConnections(true);
      await redis.restart();
      await pollUntil(
        'backup written',
        async () => {
          const stored = await readBackup(db); // (pollUntil retries on errors: no tables yet)
          return stored?.topics.map((t) => t.name).join() === 'early' && stored.brokers.length === 1
            ? true
            : undefined;
        },
        90_000,
        200,
      );
    } finally {
      await client.close();
    }
  });
});
