import type { Reply } from './fake-node.test-util';
import {
  FakeNode,
  brokerFixture,
  memberFixture,
  metadataFixture,
  partitionFixture,
  topicFixture,
} from './fake-node.test-util';
import { MetadataClient } from './metadata-client';

const cluster = {
  clusterId: 'dmq-local',
  nodeId: 1,
  role: 'leader',
  term: 3,
  leaderId: 1,
  commitIndex: 10,
  appliedIndex: 10,
  snapshotIndex: 0,
  members: [memberFixture],
  backup: { enabled: true, status: 'idle', backedUpIndex: 10, lagEntries: 0, lagMs: 0 },
};

/** Answers of a healthy leader, by `METHOD path`. */
const routes: Record<string, Reply> = {
  'POST /api/v1/topics': { status: 201, body: topicFixture },
  'GET /api/v1/topics': { status: 200, body: { topics: [topicFixture] } },
  'GET /api/v1/topics/orders': { status: 200, body: topicFixture },
  'GET /api/v1/topics/a.b%2Fc': { status: 200, body: topicFixture },
  'DELETE /api/v1/topics/orders': { status: 204 },
  'PUT /api/v1/topics/orders/config': { status: 200, body: topicFixture },
  'GET /api/v1/topics/orders/partitions': { status: 200, body: { partitions: [partitionFixture] } },
  'POST /api/v1/topics/orders/partitions/0/state': { status: 200, body: partitionFixture },
  'POST /api/v1/brokers': { status: 201, body: { brokerId: 1, brokerEpoch: 13 } },
  'POST /api/v1/brokers/1/heartbeat': {
    status: 200,
    body: { status: 'ONLINE', metadataVersion: 9 },
  },
  'GET /api/v1/brokers': { status: 200, body: { brokers: [brokerFixture] } },
  'DELETE /api/v1/brokers/1': { status: 204 },
  'GET /api/v1/metadata': { status: 200, body: metadataFixture(9) },
  'GET /api/v1/cluster': { status: 200, body: cluster },
  'POST /api/v1/cluster/leadership-transfer': { status: 200, body: { leaderId: 2, term: 4 } },
  'POST /api/v1/cluster/snapshot': { status: 200, body: { index: 10, term: 3, bytes: 4096 } },
  'POST /api/v1/cluster/members': { status: 200, body: { members: [memberFixture] } },
  'DELETE /api/v1/cluster/members/2': { status: 200, body: { members: [memberFixture] } },
  'POST /api/v1/backup/resync': {
    status: 202,
    body: { index: 10, brokers: 1, topics: 1, partitions: 1 },
  },
  'GET /api/v1/backup/dead-letters': {
    status: 200,
    body: {
      count: 1,
      deadLetters: [
        {
          jobId: 'idx-7',
          raftIndex: 7,
          generation: 0,
          full: false,
          failedReason: 'persistence/invalid-backup-row: bad',
          attemptsMade: 1,
          failedAt: null,
        },
      ],
    },
  },
  'GET /healthz': { status: 200, body: { status: 'ok' } },
  'GET /readyz': { status: 503, body: { status: 'not-ready', reason: 'no leader' } },
};

describe('MetadataClient: one call per endpoint', () => {
  let node: FakeNode;
  let client: MetadataClient;

  beforeEach(async () => {
    node = await FakeNode.start((request) => {
      const reply = routes[`${request.method} ${request.path}`];
      if (reply === undefined)
        return { status: 404, body: { error: { code: 'NOT_FOUND', message: request.path } } };
      return {
        ...reply,
        headers: { 'x-dmq-leader': '1', 'x-dmq-metadata-version': '9', ...reply.headers },
      };
    });
    client = new MetadataClient({
      nodes: [{ id: 1, address: node.address }],
      token: 's3cret',
      generateIdempotencyKey: () => 'generated-key',
    });
  });

  afterEach(async () => {
    await client.close();
    await node.stop();
  });

  /** The one request the call sent. */
  function sent() {
    expect(node.requests).toHaveLength(1);
    return node.requests[0] as (typeof node.requests)[number];
  }

  it('createTopic posts the request with a generated Idempotency-Key and the token', async () => {
    const request = {
      name: 'orders',
      partitions: 3,
      replicationFactor: 3,
      config: { 'retention.ms': '1' },
    };
    await expect(client.createTopic(request)).resolves.toEqual(topicFixture);
    const { method, path, json, headers, query } = sent();
    expect({ method, path, json, query }).toEqual({
      method: 'POST',
      path: '/api/v1/topics',
      json: request,
      query: {},
    });
    expect(headers['idempotency-key']).toBe('generated-key');
    expect(headers['authorization']).toBe('Bearer s3cret');
    expect(headers['content-type']).toBe('application/json');
    expect(client.leaderId).toBe(1);
    expect(client.metadataVersion).toBe(9);
    expect(client.lastAnswer).toEqual({
      node: `http://${node.address}/api/v1`,
      status: 201,
      leaderId: 1,
      metadataVersion: 9,
    });
  });

  it('uses the caller’s Idempotency-Key when given', async () => {
    await client.createTopic(
      { name: 'orders', partitions: 1, replicationFactor: 1 },
      { idempotencyKey: 'mine-1' },
    );
    expect(sent().headers['idempotency-key']).toBe('mine-1');
  });

  it('listTopics passes read options as the query and unwraps the list', async () => {
    await expect(client.listTopics({ consistency: 'stale', minVersion: 7 })).resolves.toEqual([
      topicFixture,
    ]);
    const { method, path, query, headers, body } = sent();
    expect({ method, path, query, body }).toEqual({
      method: 'GET',
      path: '/api/v1/topics',
      query: { consistency: 'stale', minVersion: '7' },
      body: '',
    });
    expect(headers['idempotency-key']).toBeUndefined();
  });

  it('getTopic sends no query without read options', async () => {
    await expect(client.getTopic('orders')).resolves.toEqual(topicFixture);
    expect(sent()).toMatchObject({ method: 'GET', path: '/api/v1/topics/orders', query: {} });
  });

  it('getTopic encodes the name as one path segment', async () => {
    await client.getTopic('a.b/c');
    expect(sent().path).toBe('/api/v1/topics/a.b%2Fc');
  });

  it('deleteTopic accepts 204', async () => {
    await expect(client.deleteTopic('orders')).resolves.toBeUndefined();
    expect(sent()).toMatchObject({ method: 'DELETE', path: '/api/v1/topics/orders', body: '' });
    expect(sent().headers['idempotency-key']).toBe('generated-key');
  });

  it('updateTopicConfig puts the whole config', async () => {
    await expect(
      client.updateTopicConfig('orders', { 'retention.ms': '86400000' }),
    ).resolves.toEqual(topicFixture);
    expect(sent()).toMatchObject({
      method: 'PUT',
      path: '/api/v1/topics/orders/config',
      json: { config: { 'retention.ms': '86400000' } },
    });
  });

  it('getPartitions unwraps the partitions', async () => {
    await expect(client.getPartitions('orders', { consistency: 'linearizable' })).resolves.toEqual([
      partitionFixture,
    ]);
    expect(sent()).toMatchObject({
      path: '/api/v1/topics/orders/partitions',
      query: { consistency: 'linearizable' },
    });
  });

  it('alterPartition posts the new ISR', async () => {
    const request = { brokerId: 1, brokerEpoch: 12, leaderEpoch: 3, isr: [1, 2] };
    await expect(client.alterPartition('orders', 0, request)).resolves.toEqual(partitionFixture);
    expect(sent()).toMatchObject({
      method: 'POST',
      path: '/api/v1/topics/orders/partitions/0/state',
      json: request,
    });
  });

  it('registerBroker posts the endpoint and returns the epoch', async () => {
    const request = { brokerId: 1, host: '10.0.0.5', port: 9192, rack: 'a' };
    await expect(client.registerBroker(request)).resolves.toEqual({ brokerId: 1, brokerEpoch: 13 });
    expect(sent()).toMatchObject({ method: 'POST', path: '/api/v1/brokers', json: request });
  });

  it('heartbeat posts the epoch and offsets', async () => {
    const request = {
      brokerEpoch: 13,
      offsets: [{ topic: 'orders', partition: 0, startOffset: 0, endOffset: 5 }],
    };
    await expect(client.heartbeat(1, request)).resolves.toEqual({
      status: 'ONLINE',
      metadataVersion: 9,
    });
    expect(sent()).toMatchObject({ path: '/api/v1/brokers/1/heartbeat', json: request });
  });

  it('listBrokers unwraps the brokers', async () => {
    await expect(client.listBrokers()).resolves.toEqual([brokerFixture]);
    expect(sent()).toMatchObject({ method: 'GET', path: '/api/v1/brokers' });
  });

  it('unregisterBroker sends a DELETE', async () => {
    await expect(client.unregisterBroker(1)).resolves.toBeUndefined();
    expect(sent()).toMatchObject({ method: 'DELETE', path: '/api/v1/brokers/1' });
  });

  it('getMetadata passes sinceVersion and waitMs', async () => {
    await expect(client.getMetadata({ sinceVersion: 8, waitMs: 1000 })).resolves.toEqual(
      metadataFixture(9),
    );
    expect(sent()).toMatchObject({
      path: '/api/v1/metadata',
      query: { sinceVersion: '8', waitMs: '1000' },
    });
  });

  it('clusterStatus reads the cluster view', async () => {
    await expect(client.clusterStatus({ node: 1 })).resolves.toEqual(cluster);
    expect(sent()).toMatchObject({ method: 'GET', path: '/api/v1/cluster' });
  });

  it('transferLeadership posts the target, or an empty object', async () => {
    await expect(client.transferLeadership(2)).resolves.toEqual({ leaderId: 2, term: 4 });
    await client.transferLeadership();
    expect(node.requests.map((r) => r.json)).toEqual([{ targetId: 2 }, {}]);
    expect(node.requests[1]?.path).toBe('/api/v1/cluster/leadership-transfer');
  });

  it('takeSnapshot posts without a body to the node it is pinned to', async () => {
    await expect(client.takeSnapshot({ node: 1 })).resolves.toEqual({
      index: 10,
      term: 3,
      bytes: 4096,
    });
    expect(sent()).toMatchObject({ method: 'POST', path: '/api/v1/cluster/snapshot', body: '' });
    expect(sent().headers['content-type']).toBeUndefined();
  });

  it('addMember and removeMember change one voter', async () => {
    await expect(client.addMember({ id: 2, address: '127.0.0.1:9092' })).resolves.toEqual({
      members: [memberFixture],
    });
    await expect(client.removeMember(2)).resolves.toEqual({ members: [memberFixture] });
    expect(node.requests.map((r) => `${r.method} ${r.path} ${r.body}`)).toEqual([
      'POST /api/v1/cluster/members {"id":2,"address":"127.0.0.1:9092"}',
      'DELETE /api/v1/cluster/members/2 ',
    ]);
  });

  it('resyncBackup posts and returns what was enqueued', async () => {
    await expect(client.resyncBackup()).resolves.toEqual({
      index: 10,
      brokers: 1,
      topics: 1,
      partitions: 1,
    });
    expect(sent()).toMatchObject({ method: 'POST', path: '/api/v1/backup/resync' });
  });

  it('backupDeadLetters passes the limit and returns the dead letters', async () => {
    const answer = await client.backupDeadLetters({ limit: 5 });
    expect(answer.count).toBe(1);
    expect(answer.deadLetters[0]?.failedReason).toBe('persistence/invalid-backup-row: bad');
    expect(sent()).toMatchObject({
      method: 'GET',
      path: '/api/v1/backup/dead-letters',
      query: { limit: '5' },
    });
  });

  it('healthz reports ok; readyz turns a 503 into not-ready', async () => {
    await expect(client.healthz()).resolves.toEqual({ status: 'ok' });
    await expect(client.readyz({ node: node.address })).resolves.toEqual({
      status: 'not-ready',
      reason: 'no leader',
    });
    expect(node.requests.map((r) => r.path)).toEqual(['/healthz', '/readyz']);
  });

  it('accepts a base URL that already ends in /api/v1', async () => {
    const prefixed = new MetadataClient({ nodes: [`http://${node.address}/api/v1/`] });
    try {
      await prefixed.listBrokers();
      await prefixed.healthz();
      expect(node.requests.map((r) => r.path)).toEqual(['/api/v1/brokers', '/healthz']);
      expect(node.requests[0]?.headers['authorization']).toBeUndefined();
    } finally {
      await prefixed.close();
    }
  });

  it('rejects bad arguments before sending anything', async () => {
    await expect(client.getTopic('')).rejects.toMatchObject({ code: 'client/invalid-argument' });
    await expect(client.heartbeat(0, { brokerEpoch: 1 })).rejects.toMatchObject({
      code: 'client/invalid-argument',
      message: expect.stringContaining('brokerId'),
    });
    await expect(
      client.deleteTopic('orders', { idempotencyKey: 'has space' }),
    ).rejects.toMatchObject({ code: 'client/invalid-argument' });
    await expect(client.listTopics({ minVersion: -1 })).rejects.toMatchObject({
      code: 'client/invalid-argument',
    });
    await expect(client.clusterStatus({ node: 7 })).rejects.toMatchObject({
      code: 'client/invalid-argument',
    });
    expect(node.requests).toHaveLength(0);
  });
});
