import { getEventListeners } from 'node:events';
import {
  AbortError,
  ClientClosedError,
  DeadlineExceededError,
  MetadataApiError,
  NoLeaderError,
  ProtocolError,
  TransportError,
} from './errors';
import type { Reply } from './fake-node.test-util';
import {
  FakeNode,
  errorBody,
  recordingSleep,
  refusedAddress,
  stopAll,
  topicFixture,
} from './fake-node.test-util';
import { MetadataClient } from './metadata-client';
import type { MetadataClientOptions } from './options';

const createRequest = { name: 'orders', partitions: 1, replicationFactor: 1 };
const created: Reply = { status: 201, body: topicFixture, headers: { 'x-dmq-leader': '2' } };
const noLeader = (headers: Record<string, string> = {}): Reply => ({
  status: 503,
  body: errorBody('NO_LEADER', 'no leader elected'),
  headers,
});

/** Answers from a script, one per request; the last entry repeats. */
function script(...replies: (Reply | 'hang' | 'reset')[]) {
  let next = 0;
  return () => replies[Math.min(next++, replies.length - 1)] as Reply | 'hang' | 'reset';
}

describe('MetadataClient retries and leader following', () => {
  const nodes: FakeNode[] = [];
  const clients: MetadataClient[] = [];
  let sleeper: ReturnType<typeof recordingSleep>;

  async function node(...replies: (Reply | 'hang' | 'reset')[]): Promise<FakeNode> {
    const started = await FakeNode.start(script(...replies));
    nodes.push(started);
    return started;
  }
  function client(options: MetadataClientOptions): MetadataClient {
    const made = new MetadataClient({
      random: () => 0.5,
      sleep: sleeper.sleep,
      ...options,
    });
    clients.push(made);
    return made;
  }

  beforeEach(() => {
    sleeper = recordingSleep();
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    await stopAll(nodes.splice(0));
  });

  it('goes to the leader named by a 503 and stays with it', async () => {
    const one = await node(noLeader({ 'x-dmq-leader': '2' }));
    const two = await node(created);
    const c = client({
      nodes: [
        { id: 1, address: one.address },
        { id: 2, address: two.address },
      ],
    });
    await c.createTopic(createRequest);
    await c.createTopic(createRequest);
    expect(one.requests).toHaveLength(1);
    expect(two.requests).toHaveLength(2);
    expect(c.leaderId).toBe(2);
  });

  it('learns the leader from a forwarded answer and sends the next call there', async () => {
    const one = await node({ status: 200, body: { topics: [] }, headers: { 'x-dmq-leader': '3' } });
    const two = await node({ status: 200, body: { topics: [] } });
    const three = await node({
      status: 200,
      body: { topics: [] },
      headers: { 'x-dmq-leader': '3' },
    });
    const c = client({ nodes: `1=${one.address},2=${two.address},3=${three.address}` });
    await c.listTopics();
    await c.listTopics();
    expect([one, two, three].map((n) => n.requests.length)).toEqual([1, 0, 1]);
    expect(sleeper.delays).toEqual([]);
  });

  it('retries 503 with jittered backoff and the same Idempotency-Key every time', async () => {
    const one = await node(noLeader(), noLeader(), noLeader(), created);
    const c = client({ nodes: [one.address], initialBackoffMs: 100, maxBackoffMs: 300 });
    await expect(c.createTopic(createRequest)).resolves.toEqual(topicFixture);
    const keys = one.requests.map((r) => r.headers['idempotency-key']);
    expect(keys).toHaveLength(4);
    expect(new Set(keys).size).toBe(1);
    expect(keys[0]).toMatch(/^[0-9a-f-]{36}$/);
    // random() = 0.5 of the ceilings 100, 200, 300 (capped).
    expect(sleeper.delays).toEqual([50, 100, 150]);
  });

  it('keeps the caller’s key across retries on different nodes', async () => {
    const one = await node(noLeader());
    const two = await node(noLeader());
    const three = await node(created);
    const c = client({ nodes: [one.address, two.address, three.address] });
    await c.deleteTopic('orders', { idempotencyKey: 'delete-orders-1' });
    const seen = [one, two, three].flatMap((n) =>
      n.requests.map((r) => r.headers['idempotency-key']),
    );
    expect(seen).toEqual(['delete-orders-1', 'delete-orders-1', 'delete-orders-1']);
  });

  it('moves on from a node that refuses connections and remembers the one that works', async () => {
    const refused = await refusedAddress();
    const two = await node({ status: 200, body: { brokers: [] } });
    const c = client({ nodes: [refused, two.address] });
    await expect(c.listBrokers()).resolves.toEqual([]);
    await c.listBrokers();
    expect(two.requests).toHaveLength(2);
    expect(sleeper.delays).toHaveLength(1);
  });

  it('forgets a leader whose address refuses connections', async () => {
    const refused = await refusedAddress();
    const two = await node({ status: 200, body: { brokers: [] } });
    const one = await node({
      status: 200,
      body: { brokers: [] },
      headers: { 'x-dmq-leader': '3' },
    });
    const c = client({
      nodes: [
        { id: 1, address: one.address },
        { id: 2, address: two.address },
        { id: 3, address: refused },
      ],
    });
    await c.listBrokers(); // node 1 names node 3 as the leader
    expect(c.leaderId).toBe(3);
    await c.listBrokers(); // node 3 refuses → the node after it, node 1
    expect(c.leaderId).toBe(3);
    expect(one.requests).toHaveLength(2);
  });

  it('honours Retry-After over a shorter backoff', async () => {
    const one = await node(
      noLeader({ 'retry-after': '2' }),
      noLeader({ 'retry-after': '0' }),
      created,
    );
    const c = client({ nodes: [one.address] });
    await c.createTopic(createRequest);
    expect(sleeper.delays).toEqual([2000, 100]);
  });

  it('paces NO_LEADER by its own backoff while Retry-After is 0, and waits at least Retry-After: 1 after', async () => {
    // The server answers 0 while it expects a leader within an election, 1 once it has had
    // none for long (RetryAfterPolicy): full-jitter backoff first, then at least a second.
    const zero = noLeader({ 'retry-after': '0' });
    const one = noLeader({ 'retry-after': '1' });
    const n = await node(zero, zero, zero, one, one, created);
    const c = client({ nodes: [n.address], initialBackoffMs: 100, maxBackoffMs: 2_000 });
    await expect(c.createTopic(createRequest)).resolves.toEqual(topicFixture);
    // random() = 0.5 of the ceilings 100, 200, 400; then 800 and 1600 lose to 1000.
    expect(sleeper.delays).toEqual([50, 100, 200, 1000, 1000]);
    expect(n.requests).toHaveLength(6);
  });

  it('follows a failover without going back to the leader that refused connections', async () => {
    const dead = await refusedAddress(); // node 1: the leader, just killed
    // Node 2 has not noticed yet: it names node 1, whose address refused its forward too.
    const two = await node(noLeader({ 'x-dmq-leader': '1', 'retry-after': '0' }), {
      ...created,
      headers: { 'x-dmq-leader': '2' },
    });
    // Node 3 is holding the election.
    const three = await node(noLeader({ 'retry-after': '0' }));
    const c = client({
      nodes: [
        { id: 1, address: dead },
        { id: 2, address: two.address },
        { id: 3, address: three.address },
      ],
    });
    await expect(c.createTopic(createRequest)).resolves.toEqual(topicFixture);
    // 1 refused → 2 (503 naming 1: not followed) → 3 (503) → 2 (skips 1): three attempts
    // after the first, paced by the backoff alone.
    expect([two.requests.length, three.requests.length]).toEqual([2, 1]);
    expect(sleeper.delays).toEqual([50, 100, 200]);
    expect(c.leaderId).toBe(2);
    await c.createTopic(createRequest);
    expect(two.requests).toHaveLength(3);
  });

  it('skips a node that refused connections when rotating, while another node answers', async () => {
    const refused = await refusedAddress();
    const two = await node(noLeader(), created);
    const three = await node(noLeader());
    const c = client({ nodes: [refused, two.address, three.address], maxAttempts: 4 });
    await expect(c.createTopic(createRequest)).resolves.toEqual(topicFixture);
    expect([two.requests.length, three.requests.length]).toEqual([2, 1]);
  });

  it('goes back to a node that refused connections once an answer names it the leader', async () => {
    const one = await node({
      status: 200,
      body: { brokers: [] },
      headers: { 'x-dmq-leader': '1' },
    });
    const two = await node({
      status: 200,
      body: { brokers: [] },
      headers: { 'x-dmq-leader': '1' },
    });
    const c = client({
      nodes: [
        { id: 1, address: one.address },
        { id: 2, address: two.address },
      ],
    });
    await one.stop();
    await c.listBrokers(); // 1 refuses; 2 answers, relayed through leader 1
    expect(c.leaderId).toBe(1);
    await one.restart();
    await c.listBrokers();
    expect([one.requests.length, two.requests.length]).toEqual([1, 1]);
  });

  it('holds one abort listener per call, not one per retry', async () => {
    // A listener added per attempt or per backoff and never removed leaks, and Node warns
    // (MaxListenersExceededWarning) after ten: count them at every backoff, past ten retries.
    const n = await node(...Array.from({ length: 14 }, () => noLeader()), created);
    const caller = new AbortController();
    const seen: number[] = [];
    const c = client({
      nodes: [n.address],
      maxAttempts: 20,
      sleep: async (_ms, signal) => {
        seen.push(getEventListeners(signal, 'abort').length);
        expect(getEventListeners(caller.signal, 'abort')).toHaveLength(1);
      },
    });
    await c.createTopic(createRequest, { signal: caller.signal });
    expect(seen).toHaveLength(14);
    expect(new Set(seen)).toEqual(new Set([0]));
    expect(getEventListeners(caller.signal, 'abort')).toHaveLength(0);
  });

  it('retries 504 COMMIT_TIMEOUT when the call carries a key', async () => {
    const one = await node({ status: 504, body: errorBody('COMMIT_TIMEOUT') }, created);
    const c = client({ nodes: [one.address] });
    await expect(c.createTopic(createRequest, { idempotencyKey: 'k-504' })).resolves.toEqual(
      topicFixture,
    );
    expect(one.requests.map((r) => r.headers['idempotency-key'])).toEqual(['k-504', 'k-504']);
  });

  it('surfaces 504 COMMIT_TIMEOUT when the call carries no key', async () => {
    const one = await node(
      { status: 504, body: errorBody('COMMIT_TIMEOUT', 'outcome unknown') },
      created,
    );
    const c = client({ nodes: [one.address], autoIdempotencyKeys: false });
    const error = await c.createTopic(createRequest).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MetadataApiError);
    expect(error).toMatchObject({ code: 'COMMIT_TIMEOUT', status: 504, attempts: 1 });
    expect(one.requests).toHaveLength(1);
    expect(one.requests[0]?.headers['idempotency-key']).toBeUndefined();
  });

  it('turns an error body into a typed error with code, status and issues', async () => {
    const issues = [{ path: 'partitions', message: 'must be >= 1' }];
    const one = await node({
      status: 400,
      body: errorBody('INVALID_REQUEST', 'bad topic', issues),
      headers: { 'x-dmq-leader': '1' },
    });
    const c = client({ nodes: [one.address] });
    const error = await c
      .createTopic(createRequest, { idempotencyKey: 'k1' })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MetadataApiError);
    expect(error).toMatchObject({
      name: 'MetadataApiError',
      code: 'INVALID_REQUEST',
      status: 400,
      message: 'bad topic',
      issues,
      leaderId: 1,
      idempotencyKey: 'k1',
    });
    expect(one.requests).toHaveLength(1);
  });

  it('does not retry a 404', async () => {
    const one = await node({ status: 404, body: errorBody('TOPIC_NOT_FOUND', 'no topic "x"') });
    const c = client({ nodes: [one.address] });
    await expect(c.getTopic('x')).rejects.toMatchObject({ code: 'TOPIC_NOT_FOUND', status: 404 });
    expect(one.requests).toHaveLength(1);
  });

  it.each<[string, Reply]>([
    ['a body of the wrong shape', { status: 200, body: { ...topicFixture, topicId: 'nope' } }],
    ['a body that is not JSON', { status: 200, raw: '<html>oops</html>' }],
    ['an error status without a contract error body', { status: 502, raw: 'Bad Gateway' }],
    ['an unknown error code', { status: 418, body: errorBody('TEAPOT') }],
  ])('turns %s into a ProtocolError', async (_, reply) => {
    const one = await node(reply);
    const c = client({ nodes: [one.address] });
    const error = await c.getTopic('orders').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ProtocolError);
    expect(error).toMatchObject({ code: 'client/protocol-error', status: reply.status });
  });

  it('names the mismatching field of a malformed answer', async () => {
    const one = await node({ status: 200, body: { ...topicFixture, topicId: 'nope' } });
    const c = client({ nodes: [one.address] });
    await expect(c.getTopic('orders')).rejects.toMatchObject({
      issues: [{ path: 'topicId', message: expect.any(String) }],
      message: expect.stringContaining('topicId'),
    });
  });

  it('gives up with NoLeaderError after maxAttempts of 503', async () => {
    const one = await node(noLeader());
    const c = client({ nodes: [one.address], maxAttempts: 3 });
    const error = await c.createTopic(createRequest).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NoLeaderError);
    expect(error).toMatchObject({ code: 'client/no-leader', attempts: 3 });
    expect((error as NoLeaderError).cause).toBeInstanceOf(MetadataApiError);
    expect((error as NoLeaderError).idempotencyKey).toBe(
      one.requests[0]?.headers['idempotency-key'],
    );
    expect(one.requests).toHaveLength(3);
    expect(sleeper.delays).toHaveLength(2);
  });

  it('gives up with TransportError when no node accepts connections', async () => {
    const c = client({ nodes: [await refusedAddress(), await refusedAddress()], maxAttempts: 4 });
    const error = await c.listTopics().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TransportError);
    expect(error).toMatchObject({ causeCode: 'ECONNREFUSED', attempts: 4 });
  });

  it('retries a write whose connection was reset when it carries a key', async () => {
    const one = await node('reset', created);
    const c = client({ nodes: [one.address] });
    await expect(c.createTopic(createRequest)).resolves.toEqual(topicFixture);
    expect(one.requests).toHaveLength(2);
  });

  it('does not retry a keyless write whose connection was reset: its outcome is unknown', async () => {
    const one = await node('reset', created);
    const c = client({ nodes: [one.address], autoIdempotencyKeys: false });
    await expect(c.createTopic(createRequest)).rejects.toMatchObject({
      code: 'client/transport-error',
      causeCode: 'ECONNRESET',
    });
    expect(one.requests).toHaveLength(1);
  });

  it('times out an attempt that gets no answer and retries it', async () => {
    const one = await node('hang', { status: 200, body: { topics: [] } });
    const c = client({ nodes: [one.address], requestTimeoutMs: 30 });
    await expect(c.listTopics()).resolves.toEqual([]);
    expect(one.requests).toHaveLength(2);
  });

  it('reports ETIMEDOUT when every attempt times out', async () => {
    const one = await node('hang');
    const c = client({ nodes: [one.address], requestTimeoutMs: 20, maxAttempts: 2 });
    await expect(c.listTopics()).rejects.toMatchObject({
      code: 'client/transport-error',
      causeCode: 'ETIMEDOUT',
      attempts: 2,
    });
  });

  it('stops at the overall deadline with DeadlineExceededError', async () => {
    const one = await node('hang');
    const c = client({ nodes: [one.address] });
    const error = await c.listTopics({ deadlineMs: 30 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DeadlineExceededError);
    expect(error).toMatchObject({ code: 'client/deadline-exceeded', attempts: 1 });
  });

  it('does not wait for a Retry-After that ends past the deadline', async () => {
    const one = await node(noLeader({ 'retry-after': '60' }));
    const c = client({ nodes: [one.address], deadlineMs: 5_000 });
    const error = await c.listTopics().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DeadlineExceededError);
    expect((error as DeadlineExceededError).cause).toBeInstanceOf(MetadataApiError);
    expect(sleeper.delays).toEqual([]);
  });

  it('aborts a call in flight when the caller’s signal fires', async () => {
    const one = await node('hang');
    const c = client({ nodes: [one.address] });
    const controller = new AbortController();
    const call = c.listTopics({ signal: controller.signal });
    await one.nextRequest();
    controller.abort(new Error('user gave up'));
    const error = await call.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AbortError);
    expect((error as AbortError).cause).toEqual(new Error('user gave up'));
  });

  it('aborts a backoff sleep when the caller’s signal fires', async () => {
    const one = await node(noLeader());
    const controller = new AbortController();
    const c = client({
      nodes: [one.address],
      sleep: (_ms, signal) =>
        new Promise((_, reject) => {
          signal.addEventListener('abort', () => reject(signal.reason));
          controller.abort();
        }),
    });
    await expect(c.listTopics({ signal: controller.signal })).rejects.toBeInstanceOf(AbortError);
    expect(one.requests).toHaveLength(1);
  });

  it('rejects calls in flight and later calls once closed', async () => {
    const one = await node('hang');
    const c = client({ nodes: [one.address] });
    const call = c.listTopics();
    await one.nextRequest();
    await c.close();
    await expect(call).rejects.toBeInstanceOf(ClientClosedError);
    await expect(c.listTopics()).rejects.toMatchObject({ code: 'client/closed' });
    expect(c.closed).toBe(true);
  });
});
