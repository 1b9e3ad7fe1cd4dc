/**
 * The metadata service as users run it: real node processes on loopback, real files, the
 * real HTTP transport between them, started and killed by the test itself.
 */
import { rmSync } from 'node:fs';
import { MetadataClientError, type MetadataClient } from '@dmq/metadata-client';
import { LocalCluster } from './harness/local-cluster';

jest.setTimeout(120_000);

const topic = (name: string) => ({ name, partitions: 3, replicationFactor: 1 });

describe('a 3-node metadata cluster', () => {
  let cluster: LocalCluster;
  let client: MetadataClient;

  beforeAll(async () => {
    cluster = await LocalCluster.start({
      env: { DMQ_SNAPSHOT_EVERY_ENTRIES: '20', DMQ_BROKER_SESSION_TIMEOUT_MS: '600000' },
    });
    client = cluster.client();
    // Storage brokers the topics are placed on (their sessions outlive the test).
    for (const brokerId of [1, 2, 3])
      await client.registerBroker({ brokerId, host: '127.0.0.1', port: 9190 + brokerId });
  });
  afterAll(async () => {
    await client.close();
    await cluster.stop();
  });

  it('elects one leader that every node agrees on', async () => {
    const leader = await cluster.waitForLeader();
    const statuses = await Promise.all(
      cluster.nodes.map((n) => client.clusterStatus({ node: n.id })),
    );
    expect(statuses.map((s) => s.leaderId)).toEqual([leader, leader, leader]);
    expect(statuses.filter((s) => s.role === 'leader').map((s) => s.nodeId)).toEqual([leader]);
    expect(statuses[0]?.members.map((m) => m.id)).toEqual([1, 2, 3]);
  });

  it('creates, reads and deletes topics through a follower', async () => {
    const leader = await cluster.waitForLeader();
    const follower = cluster.nodes.find((n) => n.id !== leader);
    if (follower === undefined) throw new Error('no follower');
    const viaFollower = cluster.client([follower.id]);
    try {
      const created = await viaFollower.createTopic(topic('orders'));
      expect(created.partitions).toHaveLength(3);
      expect(created.partitions.map((p) => p.leader).sort()).toEqual([1, 2, 3]);
      expect(viaFollower.leaderId).toBe(leader);
      const read = await viaFollower.getTopic('orders');
      expect(read.topicId).toBe(created.topicId);
      // A stale read on the follower at the version of our write sees it too.
      const stale = await viaFollower.getTopic('orders', {
        consistency: 'stale',
        minVersion: viaFollower.metadataVersion ?? 0,
      });
      expect(stale.name).toBe('orders');
      await viaFollower.deleteTopic('orders');
      await expect(viaFollower.getTopic('orders')).rejects.toMatchObject({
        code: 'TOPIC_NOT_FOUND',
      });
    } finally {
      await viaFollower.close();
    }
  });

  it('answers bad input with the documented 4xx and changes nothing', async () => {
    const node = cluster.nodes[0];
    if (node === undefined) throw new Error('no node');
    const before = await client.listTopics();
    const post = (body: string) =>
      fetch(`${node.url}/api/v1/topics`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
      });
    expect((await post('{"name":')).status).toBe(400);
    expect((await post(JSON.stringify({ ...topic('x'), extra: 1 }))).status).toBe(400);
    expect((await post(JSON.stringify({ ...topic('x'), partitions: 0 }))).status).toBe(400);
    expect((await post(JSON.stringify({ ...topic('y'.repeat(250)) }))).status).toBe(400);
    expect((await post(JSON.stringify({ ...topic('x'), pad: 'p'.repeat(1_100_000) }))).status).toBe(
      413,
    );
    const tooMany = await post(JSON.stringify({ name: 'x', partitions: 1, replicationFactor: 4 }));
    expect(tooMany.status).toBe(422);
    expect(await client.listTopics()).toEqual(before);
  });

  it('refuses Raft traffic without the cluster secret', async () => {
    const node = cluster.nodes[0];
    if (node === undefined) throw new Error('no node');
    const answer = await fetch(`${node.url}/raft/v1/messages`, {
      method: 'POST',
      headers: {
        'x-dmq-cluster-id': 'dmq-local',
        'x-dmq-node-id': '9',
        'x-dmq-to-node-id': '1',
        'x-dmq-cluster-secret': 'wrong',
      },
      body: new Uint8Array([0, 0, 0, 0]),
    });
    expect(answer.status).toBe(401);
    await node.waitForLog((l) => l.msg === 'refused a Raft request without the cluster secret');
  });

  it('wakes a metadata long-poll on a change', async () => {
    const { version } = await client.getMetadata();
    const polling = client.getMetadata({ sinceVersion: version, waitMs: 30_000 });
    await client.createTopic(topic('wake-up'));
    const answer = await polling;
    expect(answer.version).toBeGreaterThan(version);
    expect(answer.topics.map((t) => t.name)).toContain('wake-up');
  });

  it('keeps every acknowledged write when the leader is killed, and a new leader serves', async () => {
    const leader = await cluster.waitForLeader();
    const acknowledged: string[] = [];
    let writing = true;
    const writer = (async () => {
      for (let i = 0; writing && i < 10_000; i++) {
        const name = `survivor-${i}`;
        try {
          await client.createTopic(topic(name), { idempotencyKey: `k-${name}` });
          acknowledged.push(name);
        } catch (err) {
          // Unknown outcome (the leader died mid-write): not acknowledged, not counted.
          if (!(err instanceof MetadataClientError)) throw err;
        }
      }
    })();
    while (acknowledged.length < 10) await new Promise((resolve) => setTimeout(resolve, 5));
    const killedAt = Date.now();
    await cluster.node(leader).kill('SIGKILL');
    const countAtKill = acknowledged.length;
    const newLeader = await cluster.waitForLeader(20_000, [leader]);
    expect(newLeader).not.toBe(leader);
    while (acknowledged.length < countAtKill + 5)
      await new Promise((resolve) => setTimeout(resolve, 5));
    writing = false;
    await writer;
    const failoverMs = Date.now() - killedAt;
    expect(failoverMs).toBeLessThan(20_000);
    const names = new Set((await client.listTopics()).map((t) => t.name));
    for (const name of acknowledged) expect(names.has(name)).toBe(true);

    // The killed node restarts, replays its log and catches up.
    const restarted = cluster.node(leader);
    const from = restarted.lines.length;
    await restarted.start();
    const replay = await restarted.waitForLog(
      (l) => /^Replayed \d+ Raft log entries$/.test(l.msg ?? ''),
      20_000,
      from,
    );
    expect(replay['entries']).toEqual(expect.any(Number));
    const latest = (await client.getMetadata()).version;
    const local = cluster.client([restarted.id]);
    try {
      const topics = await local.listTopics({ consistency: 'stale', minVersion: latest });
      expect(new Set(topics.map((t) => t.name))).toEqual(names);
    } finally {
      await local.close();
    }
  });

  it('catches a node with a wiped data directory up by snapshot', async () => {
    const leader = await cluster.waitForLeader();
    const victim = cluster.nodes.find((n) => n.id !== leader);
    if (victim === undefined) throw new Error('no follower');
    for (let i = 0; i < 30; i++) await client.createTopic(topic(`snap-${i}`));
    await client.takeSnapshot({ node: leader });
    await victim.kill('SIGKILL');
    rmSync(victim.dataDir, { recursive: true, force: true });
    const from = victim.lines.length;
    await victim.start();
    const latest = (await client.getMetadata()).version;
    const local = cluster.client([victim.id]);
    try {
      const topics = await local.listTopics({ consistency: 'stale', minVersion: latest });
      expect(topics.map((t) => t.name)).toEqual(expect.arrayContaining(['snap-0', 'snap-29']));
    } finally {
      await local.close();
    }
    // It was caught up by InstallSnapshot, not by replaying the (compacted) log.
    await victim.waitForLog(
      (l) => l.msg === 'Installed the snapshot received from the leader',
      10_000,
      from,
    );
  });

  it('returns the original outcome for an idempotent retry across a leader change', async () => {
    const leader = await cluster.waitForLeader();
    const first = await client.createTopic(topic('once'), { idempotencyKey: 'same-key' });
    const target = cluster.nodes.find((n) => n.id !== leader && n.running);
    if (target === undefined) throw new Error('no target');
    await client.transferLeadership(target.id);
    const newLeader = await cluster.waitForLeader(20_000, [leader]);
    expect(newLeader).toBe(target.id);
    const retry = await client.createTopic(topic('once'), { idempotencyKey: 'same-key' });
    expect(retry).toEqual(first);
    await expect(
      client.createTopic(topic('once'), { idempotencyKey: 'other-key' }),
    ).rejects.toMatchObject({
      code: 'TOPIC_ALREADY_EXISTS',
    });
    await expect(
      client.createTopic({ ...topic('once'), partitions: 5 }, { idempotencyKey: 'same-key' }),
    ).rejects.toMatchObject({ code: 'IDEMPOTENCY_KEY_REUSED' });
  });
});
