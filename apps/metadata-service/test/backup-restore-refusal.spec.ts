/**
 * Disaster recovery refuses while any node still has its Raft log (issue #6): an operator
 * wipes the data directories of nodes 1 and 2 of a cluster that has data and a backup, while
 * node 3 keeps its log, and starts every node with `DMQ_RESTORE_FROM_BACKUP=on`. Nothing is
 * read back from the backup, every node says why (with a stable code), and the cluster ends
 * up with node 3's data: the log is the source of truth.
 *
 * Deterministic by construction, without sleeps: node 1 has the only short election timeout,
 * so it is the only node that campaigns on its own. The lost cluster is therefore built in
 * term 1 with node 1 leading, and the two wiped nodes elect node 1 in term 1 again; node 3
 * comes back in that same term, follows node 1 and shows its log (the case where Raft alone
 * would let a restore command be "matched" against node 3's own entries). Node 1, the
 * restoring leader, refuses with `restore/peer-has-log` and hands leadership to node 3;
 * node 2, waiting to lead, refuses with `restore/state-not-empty` as node 3's entries reach
 * it; node 3 refuses with `restore/node-has-log`. Every wait is on a log line or a polled
 * HTTP state.
 */
import { rmSync } from 'node:fs';
import type { BrokerInfo, TopicMetadata } from '@dmq/api-contracts';
import { LocalCluster, pollUntil, type LogLine, type NodeProcess } from './harness/local-cluster';
import {
  apiView,
  createTestDatabase,
  readBackup,
  uniqueQueueName,
  waitForBackup,
  type TestDatabase,
} from './harness/backup-fixtures';

jest.setTimeout(180_000);

const REDIS_URL = process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379';
const RESTORE = { DMQ_RESTORE_FROM_BACKUP: 'on' };
/** Nodes 2 and 3 never campaign on their own within the test: node 1 always wins term 1. */
const SLOW_ELECTION = { DMQ_RAFT_ELECTION_TIMEOUT_MS: '30000' };

const msgOf = (line: LogLine): string => String(line.msg);
const isRefusal = (line: LogLine): boolean => msgOf(line).startsWith('Restore from backup refused');
const isRestored = (line: LogLine): boolean => msgOf(line).startsWith('Restored from backup');
/** The line that ends a node's restore attempt: refused, restored, or restored by another. */
const isOutcome = (line: LogLine): boolean =>
  isRefusal(line) || isRestored(line) || msgOf(line).startsWith('Restore from backup done');

async function getJson<T>(url: string): Promise<T> {
  const response = await fetch(url, { signal: AbortSignal.timeout(5_000) });
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return (await response.json()) as T;
}

describe('restore from backup while a node still has its log', () => {
  let db: TestDatabase;
  let cluster: LocalCluster | undefined;

  beforeAll(async () => {
    db = await createTestDatabase('restore_refusal');
  });
  afterAll(async () => {
    await cluster?.stop();
    await db?.drop();
  });

  it('refuses on every node, says why, and keeps node 3 and its data', async () => {
    cluster = await LocalCluster.start({
      env: {
        DMQ_BACKUP: 'on',
        DATABASE_URL: db.url,
        REDIS_URL,
        DMQ_BACKUP_QUEUE: uniqueQueueName('refusal'),
        DMQ_CLUSTER_ID: 'restore-refusal-test',
        DMQ_BROKER_SESSION_TIMEOUT_MS: '600000',
      },
      nodeEnv: { 2: SLOW_ELECTION, 3: SLOW_ELECTION },
    });
    const node = (id: number): NodeProcess => (cluster as LocalCluster).node(id);

    // A cluster with data and a converged backup.
    const client = cluster.client();
    let before: { topics: TopicMetadata[]; brokers: BrokerInfo[] };
    try {
      for (const brokerId of [1, 2, 3])
        await client.registerBroker({ brokerId, host: '127.0.0.1', port: 9190 + brokerId });
      await client.createTopic({
        name: 'orders',
        partitions: 4,
        replicationFactor: 3,
        config: { 'retention.ms': '3600000' },
      });
      await client.createTopic({ name: 'payments', partitions: 2, replicationFactor: 2 });
      before = { topics: await client.listTopics(), brokers: await client.listBrokers() };
      expect(before.topics.map((t) => t.name)).toEqual(['orders', 'payments']);
      await waitForBackup(db, before, 'the cluster backed up');
      // The premise of the scenario: one term, led by node 1, node 3 holding every entry.
      await pollUntil('node 3 holds the whole log in term 1', async () => {
        const statuses = await Promise.all(
          [1, 2, 3].map((id) => client.clusterStatus({ node: id, deadlineMs: 2_000 })),
        );
        for (const status of statuses) expect([status.term, status.leaderId]).toEqual([1, 1]);
        const [leader, , third] = statuses;
        return leader !== undefined &&
          third !== undefined &&
          third.appliedIndex >= leader.commitIndex
          ? true
          : undefined;
      });
    } finally {
      await client.close();
    }

    // Crash, and the operator wipes nodes 1 and 2 only.
    await Promise.all(cluster.nodes.map((n) => n.kill('SIGKILL')));
    for (const id of [1, 2]) rmSync(node(id).dataDir, { recursive: true, force: true });
    const from = new Map(cluster.nodes.map((n) => [n.id, n.lines.length]));
    const since = (n: NodeProcess): LogLine[] => n.lines.slice(from.get(n.id));
    const waitFor = (id: number, predicate: (line: LogLine) => boolean): Promise<LogLine> =>
      node(id).waitForLog(predicate, 30_000, from.get(id));

    // Nodes 1 and 2 come back empty with the opt-in; node 1 leads and waits for node 3.
    await Promise.all([node(1).start(RESTORE), node(2).start(RESTORE)]);
    const waits = await waitFor(1, (l) => msgOf(l).startsWith('restore waits'));
    expect(waits['unreachable']).toEqual([3]);

    // Node 3 comes back with its log (and the opt-in, as the operator set it everywhere).
    await node(3).start(RESTORE);
    // How each node's restore attempt ended (a restore would fail this at once, too).
    const outcomes = await Promise.all([1, 2, 3].map((id) => waitFor(id, isOutcome)));
    expect(outcomes.map((l) => ({ code: l['code'], msg: msgOf(l) }))).toEqual([
      {
        code: 'restore/peer-has-log',
        msg: expect.stringMatching(
          /^Restore from backup refused: node 3 still has a Raft log .*the cluster keeps node 3's log/,
        ),
      },
      {
        code: 'restore/state-not-empty',
        msg: expect.stringMatching(
          /^Restore from backup refused: .*entries of node 3's Raft log .* were applied here/,
        ),
      },
      {
        code: 'restore/node-has-log',
        msg: expect.stringMatching(/^Restore from backup refused: node 3 started with a Raft log/),
      },
    ]);
    await waitFor(1, (l) => msgOf(l).startsWith('Handed leadership to node 3'));

    // Node 3 leads, and every node serves node 3's data: the original topics and brokers.
    expect(await cluster.waitForLeader()).toBe(3);
    const original = JSON.stringify(before);
    for (const n of cluster.nodes) {
      await pollUntil(`node ${n.id} serves the original metadata`, async () => {
        const [{ topics }, { brokers }] = await Promise.all([
          getJson<{ topics: TopicMetadata[] }>(`${n.url}/api/v1/topics`),
          getJson<{ brokers: BrokerInfo[] }>(`${n.url}/api/v1/brokers`),
        ]);
        return JSON.stringify({ topics, brokers }) === original ? true : undefined;
      });
    }
    // Nothing was restored, on any node, and each node refused exactly once.
    for (const n of cluster.nodes) {
      expect(since(n).filter(isRestored)).toEqual([]);
      expect(since(n).filter(isRefusal)).toHaveLength(1);
    }
    // The backup was not rebased: it still holds the original rows.
    const stored = await readBackup(db);
    expect({ brokers: stored.brokers, topics: stored.topics }).toEqual(
      apiView(before.topics, before.brokers),
    );
  });
});
