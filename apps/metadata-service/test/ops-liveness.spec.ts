/**
 * Broker sessions and change notices on a real 3-node cluster (issue #5): the leader fences a
 * broker whose session expires (it leaves every ISR and loses its partition leaderships), a
 * heartbeat unfences it, a new leader gives every broker a fresh grace period, and ONLINE
 * brokers with a push endpoint hear about changes.
 */
import http from 'node:http';
import type net from 'node:net';
import type { MetadataChangeNotice, PartitionInfo } from '@dmq/api-contracts';
import { MetadataClientError, type MetadataClient } from '@dmq/metadata-client';
import { LocalCluster, pollUntil } from './harness/local-cluster';

jest.setTimeout(60_000);

const SESSION_TIMEOUT_MS = 1_500;
const HEARTBEAT_INTERVAL_MS = 300;

/** A storage broker that heartbeats every HEARTBEAT_INTERVAL_MS until stopped. */
class HeartbeatingBroker {
  private running = true;
  private readonly done: Promise<void>;
  readonly statuses: string[] = [];
  failures = 0;

  constructor(
    client: MetadataClient,
    readonly brokerId: number,
    readonly brokerEpoch: number,
  ) {
    this.done = (async () => {
      while (this.running) {
        try {
          const answer = await client.heartbeat(brokerId, { brokerEpoch });
          this.statuses.push(answer.status);
        } catch (err) {
          // A heartbeat lost in a failover: the next one retries (as a broker does).
          if (!(err instanceof MetadataClientError)) throw err;
          this.failures += 1;
        }
        if (this.running) await new Promise((r) => setTimeout(r, HEARTBEAT_INTERVAL_MS));
      }
    })();
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.done;
  }
}

describe('broker liveness and change notices on a 3-node cluster', () => {
  let cluster: LocalCluster;
  let client: MetadataClient;
  const heartbeating: HeartbeatingBroker[] = [];
  const epochs = new Map<number, number>();

  beforeAll(async () => {
    cluster = await LocalCluster.start({
      env: {
        DMQ_BROKER_SESSION_TIMEOUT_MS: String(SESSION_TIMEOUT_MS),
        DMQ_BROKER_HEARTBEAT_INTERVAL_MS: String(HEARTBEAT_INTERVAL_MS),
      },
    });
    client = cluster.client();
    await cluster.waitForLeader();
  });
  afterAll(async () => {
    await Promise.all(heartbeating.map((b) => b.stop()));
    await client.close();
    await cluster.stop();
  });

  const partitionsOf = (name: string): Promise<PartitionInfo[]> => client.getPartitions(name);

  it('fences a silent broker (it leaves every ISR and its leaderships move) and keeps heartbeating ones ONLINE', async () => {
    for (const brokerId of [1, 2, 3]) {
      const { brokerEpoch } = await client.registerBroker({
        brokerId,
        host: '127.0.0.1',
        port: 9190 + brokerId,
      });
      epochs.set(brokerId, brokerEpoch);
      if (brokerId !== 3) heartbeating.push(new HeartbeatingBroker(client, brokerId, brokerEpoch));
    }
    const created = await client.createTopic({
      name: 'liveness',
      partitions: 3,
      replicationFactor: 3,
    });
    const ledBy3 = created.partitions.filter((p) => p.leader === 3);
    expect(ledBy3).toHaveLength(1); // one leadership per broker with 3 partitions on 3 brokers
    for (const p of created.partitions) expect(p.isr).toContain(3);

    const brokers = await pollUntil(
      'broker 3 fenced',
      async () => {
        const list = await client.listBrokers();
        return list.find((b) => b.brokerId === 3)?.status === 'FENCED' ? list : undefined;
      },
      SESSION_TIMEOUT_MS * 6,
    );
    expect(brokers.filter((b) => b.brokerId !== 3).map((b) => b.status)).toEqual([
      'ONLINE',
      'ONLINE',
    ]);
    const leader = await cluster.waitForLeader();
    const fencedLog = await cluster
      .node(leader)
      .waitForLog((l) => l.msg === 'broker session expired: fencing it' && l['brokerId'] === 3);
    expect(fencedLog['silentMs']).toBeGreaterThan(SESSION_TIMEOUT_MS);

    const after = await partitionsOf('liveness');
    for (const p of after) {
      expect(p.isr).not.toContain(3);
      expect(p.leader).not.toBe(3);
      expect(p.replicas).toContain(3); // fencing does not reassign replicas
    }
    const moved = after.find((p) => p.partition === ledBy3[0]?.partition);
    expect(moved?.leader).toEqual(expect.any(Number));
    expect([1, 2]).toContain(moved?.leader);
    expect(moved?.leaderEpoch).toBe((ledBy3[0]?.leaderEpoch ?? 0) + 1);
    // Never fenced: the heartbeating brokers' answers were ONLINE all along.
    for (const b of heartbeating) expect(new Set(b.statuses)).toEqual(new Set(['ONLINE']));
  });

  it('unfences a fenced broker when it heartbeats again', async () => {
    const answer = await client.heartbeat(3, { brokerEpoch: epochs.get(3) ?? 0 });
    expect(answer.status).toBe('ONLINE');
    const listed = (await client.listBrokers()).find((b) => b.brokerId === 3);
    expect(listed?.status).toBe('ONLINE');
    heartbeating.push(new HeartbeatingBroker(client, 3, epochs.get(3) ?? 0));
  });

  it('gives every broker a fresh session after a leader change instead of fencing them', async () => {
    const leader = await cluster.waitForLeader();
    const logFrom = new Map(cluster.nodes.map((n) => [n.id, n.lines.length]));
    await cluster.node(leader).kill('SIGKILL');
    const newLeader = await cluster.waitForLeader(20_000, [leader]);
    const elected = await cluster
      .node(newLeader)
      .waitForLog(
        (l) => l.msg === 'Raft role changed' && l['role'] === 'leader',
        10_000,
        logFrom.get(newLeader),
      );
    // Observe for two session timeouts past the election: brokers that kept heartbeating
    // (some of their heartbeats were lost in the failover) are never fenced.
    const watchUntil = Date.now() + 2 * SESSION_TIMEOUT_MS;
    while (Date.now() < watchUntil) {
      const brokers = await client.listBrokers({ consistency: 'stale' });
      expect(brokers.map((b) => [b.brokerId, b.status])).toEqual([
        [1, 'ONLINE'],
        [2, 'ONLINE'],
        [3, 'ONLINE'],
      ]);
      await new Promise((r) => setTimeout(r, 100));
    }
    const leaderLines = cluster.node(newLeader).lines;
    const sinceElected = leaderLines.slice(leaderLines.indexOf(elected));
    expect(sinceElected.filter((l) => l.msg === 'broker session expired: fencing it')).toEqual([]);
    for (const b of heartbeating) expect(b.statuses.at(-1)).toBe('ONLINE');
    // The killed node comes back (for the next test's quorum headroom).
    await cluster.node(leader).start();
  });

  it('pushes {clusterId, version} to an ONLINE broker that registered an endpoint', async () => {
    const notices: MetadataChangeNotice[] = [];
    const server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        notices.push(JSON.parse(body) as MetadataChangeNotice);
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as net.AddressInfo).port;
    try {
      const { brokerEpoch } = await client.registerBroker({
        brokerId: 4,
        host: '127.0.0.1',
        port: 9194,
        pushEndpoint: `http://127.0.0.1:${port}/notify`,
      });
      heartbeating.push(new HeartbeatingBroker(client, 4, brokerEpoch));
      await client.createTopic({ name: 'pushed', partitions: 1, replicationFactor: 1 });
      const version = client.metadataVersion ?? Number.MAX_SAFE_INTEGER;
      const notice = await pollUntil(
        'a change notice for the topic',
        () => notices.find((n) => n.version >= version),
        10_000,
      );
      expect(notice).toEqual({ clusterId: 'dmq-local', version: expect.any(Number) });
      // Versions only grow, and a notice never runs ahead of the cluster's state.
      const versions = notices.map((n) => n.version);
      expect([...versions].sort((a, b) => a - b)).toEqual(versions);
      expect(Math.max(...versions)).toBeLessThanOrEqual((await client.getMetadata()).version);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
