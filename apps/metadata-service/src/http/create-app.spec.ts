import type { AddressInfo } from 'node:net';
import http from 'node:http';
import { EventEmitter } from 'node:events';
import {
  ErrorCode,
  backupDeadLettersResponseSchema,
  type BrokerInfo,
  type CreateTopicCommandInput,
  type TopicMetadata,
} from '@dmq/api-contracts';
import { ApiError } from './api-error';
import { createApp, type AppDeps } from './create-app';
import { LeaderForwarder } from './leader-forwarder';
import { RetryAfterPolicy } from '../node/retry-after-policy';
import type { MetadataApi, ReadOptions, WriteOptions } from './ports';

const silent = { warn: () => undefined, error: () => undefined, debug: () => undefined };

/**
 * An in-memory MetadataApi: enough behaviour (versions, idempotency, leadership) to check
 * the HTTP layer's contract without Raft.
 */
class FakeApi implements MetadataApi {
  readonly topics = new Map<string, TopicMetadata>();
  readonly brokers = new Map<number, BrokerInfo>();
  readonly idempotency = new Map<string, { hash: string; outcome: Promise<TopicMetadata> }>();
  readonly reads: ReadOptions[] = [];
  readonly writes: WriteOptions[] = [];
  readonly changes = new EventEmitter();
  version = 10;
  leader: number | undefined;
  failNext: Error | undefined;

  /** `leader`: the known leader's id; `null` for none; the node itself by default. */
  constructor(
    readonly nodeId: number,
    leader?: number | null,
  ) {
    this.leader = leader === null ? undefined : (leader ?? nodeId);
  }
  leaderId() {
    return this.leader;
  }
  isLeader() {
    return this.leader === this.nodeId;
  }
  metadataVersion() {
    return this.version;
  }
  async readBarrier(options: ReadOptions) {
    this.reads.push(options);
  }
  waitForVersionAbove(version: number, waitMs: number, signal: AbortSignal) {
    return new Promise<void>((resolve) => {
      if (this.version > version) return resolve();
      const timer = setTimeout(done, waitMs);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.changes.once('change', done);
      signal.addEventListener('abort', done);
    });
  }
  private bump() {
    this.version += 1;
    this.changes.emit('change');
  }
  listTopics() {
    return [...this.topics.values()];
  }
  getTopic(name: string) {
    return this.topics.get(name);
  }
  listBrokers() {
    return [...this.brokers.values()];
  }
  metadata() {
    return { version: this.version, brokers: this.listBrokers(), topics: this.listTopics() };
  }
  metadataDelta(sinceVersion: number) {
    return {
      version: this.version,
      sinceVersion,
      full: true,
      brokers: this.listBrokers(),
      topics: this.listTopics(),
      deletedTopics: [],
      deletedBrokers: [],
    };
  }
  createTopic(request: CreateTopicCommandInput, options: WriteOptions) {
    this.writes.push(options);
    if (this.failNext !== undefined) {
      const err = this.failNext;
      this.failNext = undefined;
      return Promise.reject(err);
    }
    const key = options.idempotencyKey;
    if (key !== undefined) {
      const seen = this.idempotency.get(key);
      if (seen !== undefined) {
        if (seen.hash !== options.requestHash) {
          return Promise.reject(new ApiError(ErrorCode.IDEMPOTENCY_KEY_REUSED, 'key reused'));
        }
        return seen.outcome;
      }
    }
    const outcome = this.doCreate(request);
    if (key !== undefined) this.idempotency.set(key, { hash: options.requestHash, outcome });
    return outcome;
  }
  private async doCreate(request: CreateTopicCommandInput): Promise<TopicMetadata> {
    if (this.topics.has(request.name)) {
      throw new ApiError(ErrorCode.TOPIC_ALREADY_EXISTS, `topic "${request.name}" exists`);
    }
    if (request.replicationFactor > 3) {
      throw new ApiError(ErrorCode.INVALID_REPLICATION_FACTOR, 'only 3 brokers');
    }
    this.bump();
    const topic: TopicMetadata = {
      name: request.name,
      topicId: `00000000-0000-4000-8000-${String(this.version).padStart(12, '0')}`,
      replicationFactor: request.replicationFactor,
      config: request.config,
      partitions: [],
      createdAt: '2026-11-27T00:00:00.000Z',
    };
    this.topics.set(request.name, topic);
    return topic;
  }
  async deleteTopic(name: string) {
    if (!this.topics.delete(name))
      throw new ApiError(ErrorCode.TOPIC_NOT_FOUND, `no topic "${name}"`);
    this.bump();
  }
  async updateTopicConfig(name: string, config: Record<string, string>) {
    const topic = this.topics.get(name);
    if (topic === undefined) throw new ApiError(ErrorCode.TOPIC_NOT_FOUND, `no topic "${name}"`);
    const updated = { ...topic, config };
    this.topics.set(name, updated);
    this.bump();
    return updated;
  }
  async registerBroker(request: { brokerId: number; host: string; port: number }) {
    this.bump();
    return { brokerId: request.brokerId, brokerEpoch: this.version };
  }
  async heartbeat() {
    return { status: 'ONLINE' as const, metadataVersion: this.version };
  }
  async alterPartition(): Promise<never> {
    throw new ApiError(ErrorCode.STALE_LEADER_EPOCH, 'stale leader epoch');
  }
  async unregisterBroker(id: number) {
    if (!this.brokers.delete(id)) throw new ApiError(ErrorCode.BROKER_NOT_FOUND, `no broker ${id}`);
  }
  clusterStatus() {
    return {
      clusterId: 'test',
      nodeId: this.nodeId,
      role: this.isLeader() ? ('leader' as const) : ('follower' as const),
      term: 1,
      leaderId: this.leader ?? null,
      commitIndex: this.version,
      appliedIndex: this.version,
      snapshotIndex: 0,
      members: [],
      backup: {
        enabled: false,
        status: 'off' as const,
        backedUpIndex: null,
        lagEntries: null,
        lagMs: null,
      },
    };
  }
  async transferLeadership(targetId: number | undefined) {
    return { leaderId: targetId ?? 2, term: 2 };
  }
  async snapshot() {
    return { index: this.version, term: 1, bytes: 100 };
  }
  async addMember() {
    return { members: [] };
  }
  async removeMember() {
    return { members: [] };
  }
  async backupResync() {
    return { index: this.version, brokers: 0, topics: this.topics.size, partitions: 0 };
  }
  async backupDeadLetters(limit: number) {
    const deadLetters = [
      {
        jobId: 'idx-7',
        raftIndex: 7,
        generation: 0,
        full: false,
        failedReason: 'persistence/invalid-backup-row: bad',
        attemptsMade: 1,
        failedAt: null,
      },
    ];
    return { count: deadLetters.length, deadLetters: deadLetters.slice(0, limit) };
  }
  readiness() {
    return this.leader === undefined
      ? { ready: false, reason: 'no leader known' }
      : { ready: true };
  }
}

interface Running {
  url: string;
  close(): Promise<void>;
}

async function serve(deps: AppDeps): Promise<Running> {
  const server = http.createServer(createApp(deps));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const topicBody = { name: 'orders', partitions: 3, replicationFactor: 3 };

function post(url: string, body: unknown, headers: Record<string, string> = {}) {
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

describe('HTTP API', () => {
  let api: FakeApi;
  let server: Running;

  beforeEach(async () => {
    api = new FakeApi(1);
    server = await serve({ api, logger: silent });
  });
  afterEach(() => server.close());

  it('creates a topic (201) and reads it back, with the contract headers on every answer', async () => {
    const created = await post(`${server.url}/api/v1/topics`, topicBody);
    expect(created.status).toBe(201);
    expect(created.headers.get('x-dmq-leader')).toBe('1');
    expect(created.headers.get('x-dmq-metadata-version')).toBe('11');
    expect(await created.json()).toMatchObject({
      name: 'orders',
      replicationFactor: 3,
      config: {},
    });

    const got = await fetch(`${server.url}/api/v1/topics/orders`);
    expect(got.status).toBe(200);
    expect(got.headers.get('x-dmq-metadata-version')).toBe('11');
    expect(api.reads.at(-1)?.consistency).toBe('linearizable');

    const missing = await fetch(`${server.url}/api/v1/topics/nope`);
    expect(missing.status).toBe(404);
    expect(missing.headers.get('x-dmq-metadata-version')).toBe('11');
    expect(await missing.json()).toEqual({
      error: { code: 'TOPIC_NOT_FOUND', message: 'topic "nope" does not exist' },
    });
  });

  it('passes read consistency and minVersion to the read barrier', async () => {
    await fetch(`${server.url}/api/v1/topics?consistency=stale&minVersion=7`);
    expect(api.reads.at(-1)).toMatchObject({ consistency: 'stale', minVersion: 7 });
    const bad = await fetch(`${server.url}/api/v1/topics?consistency=eventual`);
    expect(bad.status).toBe(400);
  });

  it.each([
    ['bad JSON', '{"name": "orders",', /not valid JSON/],
    ['unknown field', { ...topicBody, colour: 'red' }, /colour/],
    ['wrong type', { ...topicBody, partitions: '3' }, /partitions/],
    ['out-of-range number', { ...topicBody, replicationFactor: 0 }, /replicationFactor/],
    ['over-long name', { ...topicBody, name: 'x'.repeat(250) }, /name/],
    ['bad name', { ...topicBody, name: '..' }, /name/],
    ['not an object', [1, 2], /body/],
  ])('answers 400 INVALID_REQUEST for %s, with nothing changed', async (_what, body, message) => {
    const before = api.version;
    const answer = await post(`${server.url}/api/v1/topics`, body);
    expect(answer.status).toBe(400);
    const json = (await answer.json()) as { error: { code: string; message: string } };
    expect(json.error.code).toBe('INVALID_REQUEST');
    expect(json.error.message).toMatch(message);
    expect(api.version).toBe(before);
    expect(api.topics.size).toBe(0);
  });

  it('answers 413 for a body over the limit', async () => {
    const answer = await post(`${server.url}/api/v1/topics`, {
      ...topicBody,
      pad: 'x'.repeat(1_100_000),
    });
    expect(answer.status).toBe(413);
    expect(((await answer.json()) as { error: { code: string } }).error.code).toBe(
      'PAYLOAD_TOO_LARGE',
    );
  });

  it('maps domain errors to their statuses (409, 422)', async () => {
    expect((await post(`${server.url}/api/v1/topics`, topicBody)).status).toBe(201);
    const again = await post(`${server.url}/api/v1/topics`, topicBody);
    expect(again.status).toBe(409);
    const tooMany = await post(`${server.url}/api/v1/topics`, {
      ...topicBody,
      name: 'b',
      replicationFactor: 5,
    });
    expect(tooMany.status).toBe(422);
    expect(((await tooMany.json()) as { error: { code: string } }).error.code).toBe(
      'INVALID_REPLICATION_FACTOR',
    );
  });

  it('hashes the request and passes the Idempotency-Key; a replay returns the original outcome', async () => {
    const first = await post(`${server.url}/api/v1/topics`, topicBody, {
      'idempotency-key': 'k-1',
    });
    const replay = await post(
      `${server.url}/api/v1/topics`,
      { replicationFactor: 3, partitions: 3, name: 'orders' },
      { 'idempotency-key': 'k-1' },
    );
    expect(first.status).toBe(201);
    expect(replay.status).toBe(201);
    expect(await replay.json()).toEqual(await first.json());
    expect(api.writes[0]?.requestHash).toBe(api.writes[1]?.requestHash);
    const reused = await post(
      `${server.url}/api/v1/topics`,
      { ...topicBody, partitions: 4 },
      { 'idempotency-key': 'k-1' },
    );
    expect(reused.status).toBe(422);
    const badKey = await post(`${server.url}/api/v1/topics`, topicBody, {
      'idempotency-key': 'x'.repeat(129),
    });
    expect(badKey.status).toBe(400);
  });

  it('deletes (204), replaces config (200) and answers 404/405 where due', async () => {
    await post(`${server.url}/api/v1/topics`, topicBody);
    const put = await fetch(`${server.url}/api/v1/topics/orders/config`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ config: { 'retention.ms': '1000' } }),
    });
    expect(put.status).toBe(200);
    expect(((await put.json()) as TopicMetadata).config).toEqual({ 'retention.ms': '1000' });
    expect((await fetch(`${server.url}/api/v1/topics/orders`, { method: 'DELETE' })).status).toBe(
      204,
    );
    expect((await fetch(`${server.url}/api/v1/topics/orders`, { method: 'DELETE' })).status).toBe(
      404,
    );
    expect((await fetch(`${server.url}/api/v1/topics/orders`, { method: 'PATCH' })).status).toBe(
      405,
    );
    const unknown = await fetch(`${server.url}/api/v1/nothing-here`);
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { error: { code: string } }).error.code).toBe('NOT_FOUND');
  });

  it('lists the backup dead letters, validating the limit', async () => {
    const answer = await fetch(`${server.url}/api/v1/backup/dead-letters?limit=5`);
    expect(answer.status).toBe(200);
    const body = backupDeadLettersResponseSchema.parse(await answer.json());
    expect(body.deadLetters.map((d) => [d.jobId, d.failedReason])).toEqual([
      ['idx-7', 'persistence/invalid-backup-row: bad'],
    ]);
    for (const limit of ['0', '1001', 'x']) {
      const bad = await fetch(`${server.url}/api/v1/backup/dead-letters?limit=${limit}`);
      expect(bad.status).toBe(400);
    }
    const post = await fetch(`${server.url}/api/v1/backup/dead-letters`, { method: 'POST' });
    expect(post.status).toBe(405);
  });

  it('answers 409 STALE_LEADER_EPOCH from AlterPartition and validates its path', async () => {
    const body = { brokerId: 1, brokerEpoch: 1, leaderEpoch: 0, isr: [1] };
    expect((await post(`${server.url}/api/v1/topics/orders/partitions/0/state`, body)).status).toBe(
      409,
    );
    expect((await post(`${server.url}/api/v1/topics/orders/partitions/x/state`, body)).status).toBe(
      400,
    );
  });

  it('hides internal errors behind 500 INTERNAL_ERROR', async () => {
    api.failNext = new Error('disk on fire');
    const answer = await post(`${server.url}/api/v1/topics`, topicBody);
    expect(answer.status).toBe(500);
    expect(await answer.json()).toEqual({
      error: { code: 'INTERNAL_ERROR', message: 'internal error' },
    });
  });

  it('serves health and readiness', async () => {
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
    expect((await fetch(`${server.url}/api/v1/healthz`)).status).toBe(200);
    expect((await fetch(`${server.url}/api/v1/readyz`)).status).toBe(200);
    api.leader = undefined;
    const notReady = await fetch(`${server.url}/readyz`);
    expect(notReady.status).toBe(503);
    expect(notReady.headers.get('x-dmq-leader')).toBeNull();
  });

  it('wakes a metadata long-poll on change and times out with the same version', async () => {
    const started = Date.now();
    const timedOut = await fetch(`${server.url}/api/v1/metadata?sinceVersion=10&waitMs=50`);
    expect(((await timedOut.json()) as { version: number }).version).toBe(10);
    expect(Date.now() - started).toBeGreaterThanOrEqual(45);

    const waiting = fetch(`${server.url}/api/v1/metadata?sinceVersion=10&waitMs=30000`);
    // The poll is parked until a change: make one once the server holds the request.
    await new Promise<void>((resolve) => {
      const check = () =>
        api.changes.listenerCount('change') > 0 ? resolve() : setImmediate(check);
      check();
    });
    await post(`${server.url}/api/v1/topics`, topicBody);
    const answer = (await (await waiting).json()) as { version: number; topics: TopicMetadata[] };
    expect(answer.version).toBe(11);
    expect(answer.topics.map((t) => t.name)).toEqual(['orders']);
  });
});

describe('HTTP API auth', () => {
  it('needs the bearer token for mutating calls only', async () => {
    const api = new FakeApi(1);
    const server = await serve({ api, logger: silent, apiToken: 's3cret' });
    try {
      const denied = await post(`${server.url}/api/v1/topics`, topicBody);
      expect(denied.status).toBe(401);
      expect(((await denied.json()) as { error: { code: string } }).error.code).toBe(
        'UNAUTHORIZED',
      );
      expect(api.topics.size).toBe(0);
      expect(
        (await post(`${server.url}/api/v1/topics`, topicBody, { authorization: 'Bearer wrong' }))
          .status,
      ).toBe(401);
      expect(
        (await post(`${server.url}/api/v1/topics`, topicBody, { authorization: 'Bearer s3cret' }))
          .status,
      ).toBe(201);
      expect((await fetch(`${server.url}/api/v1/topics`)).status).toBe(200);
    } finally {
      await server.close();
    }
  });
});

describe('forwarding to the leader', () => {
  it('relays a write from a follower to the leader and returns the leader answer', async () => {
    const leaderApi = new FakeApi(1);
    const leader = await serve({ api: leaderApi, logger: silent });
    const followerApi = new FakeApi(2, 1);
    const forwarder = new LeaderForwarder({
      nodeId: 2,
      addressOf: (id) => (id === 1 ? leader.url.replace('http://', '') : undefined),
      timeoutMs: 5_000,
    });
    const follower = await serve({ api: followerApi, logger: silent, forwarder });
    try {
      const answer = await post(`${follower.url}/api/v1/topics`, topicBody, {
        'idempotency-key': 'fwd-1',
      });
      expect(answer.status).toBe(201);
      expect(answer.headers.get('x-dmq-leader')).toBe('1');
      expect(answer.headers.get('x-dmq-metadata-version')).toBe('11');
      expect(leaderApi.topics.has('orders')).toBe(true);
      expect(followerApi.writes).toHaveLength(0);
      expect(leaderApi.writes[0]?.idempotencyKey).toBe('fwd-1');
      // Invalid input is judged by the leader with the same 400.
      expect((await post(`${follower.url}/api/v1/topics`, { name: 'x' })).status).toBe(400);
    } finally {
      forwarder.close();
      await follower.close();
      await leader.close();
    }
  });

  it('answers 503 NO_LEADER with Retry-After when no leader is known or it is unreachable', async () => {
    const noLeader = new FakeApi(2, null);
    const forwarder = new LeaderForwarder({
      nodeId: 2,
      addressOf: () => '127.0.0.1:1',
      timeoutMs: 1_000,
    });
    const server = await serve({ api: noLeader, logger: silent, forwarder });
    try {
      const answer = await post(`${server.url}/api/v1/topics`, topicBody);
      expect(answer.status).toBe(503);
      expect(answer.headers.get('retry-after')).toBe('1');
      expect(((await answer.json()) as { error: { code: string } }).error.code).toBe('NO_LEADER');
      noLeader.leader = 1; // known, but nothing listens on its address
      const refused = await post(`${server.url}/api/v1/topics`, topicBody);
      expect(refused.status).toBe(503);
    } finally {
      forwarder.close();
      await server.close();
    }
  });

  it("takes the Retry-After of every 503 from the node's RetryAfterPolicy", async () => {
    let clock = 0;
    const policy = new RetryAfterPolicy({ electionTimeoutMs: 250, now: () => clock });
    const follower = new FakeApi(2, null);
    const forwarder = new LeaderForwarder({
      nodeId: 2,
      addressOf: () => '127.0.0.1:1',
      timeoutMs: 1_000,
    });
    const server = await serve({
      api: follower,
      logger: silent,
      forwarder,
      retryAfterSeconds: (code, retryLater) => policy.seconds(code, retryLater),
    });
    const answer503 = async () => {
      const answer = await post(`${server.url}/api/v1/topics`, topicBody);
      const { error } = (await answer.json()) as { error: { code: string } };
      return {
        status: answer.status,
        code: error.code,
        retryAfter: answer.headers.get('retry-after'),
      };
    };
    try {
      // No leader yet, for less than settleMs: an election is under way, retry now.
      expect(await answer503()).toEqual({ status: 503, code: 'NO_LEADER', retryAfter: '0' });
      // No leader for settleMs: most likely no quorum, so clients wait at least 1 s.
      clock += policy.settleMs;
      expect(await answer503()).toEqual({ status: 503, code: 'NO_LEADER', retryAfter: '1' });
      // A leader is known but refuses connections: it just died, and this node's election
      // timer has not fired yet.
      follower.leader = 1;
      policy.leaderChanged(1);
      expect(await answer503()).toEqual({ status: 503, code: 'NO_LEADER', retryAfter: '0' });
      // The node itself refuses (it lost leadership before the entry entered the log).
      follower.leader = 2;
      follower.failNext = new ApiError(ErrorCode.NO_LEADER, 'not committed: not the leader');
      expect(await answer503()).toEqual({ status: 503, code: 'NO_LEADER', retryAfter: '0' });
      // Back-pressure: no leader change will end it.
      follower.failNext = new ApiError(ErrorCode.NO_LEADER, 'too many uncommitted entries', {
        retryLater: true,
      });
      expect(await answer503()).toEqual({ status: 503, code: 'NO_LEADER', retryAfter: '1' });
      // NOT_READY: the node already waited the commit timeout for minVersion.
      follower.failNext = new ApiError(ErrorCode.NOT_READY, 'behind');
      expect(await answer503()).toEqual({ status: 503, code: 'NOT_READY', retryAfter: '1' });
    } finally {
      forwarder.close();
      await server.close();
    }
  });
});
