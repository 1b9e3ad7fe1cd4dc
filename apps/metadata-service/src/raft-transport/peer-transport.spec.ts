import { getEventListeners } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import {
  decodeFrames,
  encodeFrames,
  PeerTransport,
  type PeerTransportOptions,
} from './peer-transport';

interface LogLine {
  level: string;
  obj: object;
  msg: string;
}

function recordingLogger() {
  const lines: LogLine[] = [];
  const waiters: Array<{ match: RegExp; resolve: (line: LogLine) => void }> = [];
  const log = (level: string) => (obj: object, msg: string) => {
    const line = { level, obj, msg };
    lines.push(line);
    for (const w of [...waiters]) {
      if (w.match.test(msg)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(line);
      }
    }
  };
  return {
    lines,
    logger: { debug: log('debug'), info: log('info'), warn: log('warn') },
    /** Resolves at the first log line (past or future) whose message matches. */
    waitFor(match: RegExp): Promise<LogLine> {
      const seen = lines.find((l) => match.test(l.msg));
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((resolve) => waiters.push({ match, resolve }));
    },
  };
}

interface Node {
  transport: PeerTransport;
  server: http.Server;
  port: number;
  received: Array<{ from: number; text: string }>;
  log: ReturnType<typeof recordingLogger>;
  /** Resolves once `count` messages have arrived in total. */
  receivedCount(count: number): Promise<void>;
  close(): Promise<void>;
}

const addresses = new Map<number, string>();

async function startNode(
  nodeId: number,
  overrides: Partial<PeerTransportOptions> = {},
  port = 0,
): Promise<Node> {
  const log = recordingLogger();
  const transport = new PeerTransport({
    nodeId,
    clusterId: 'test-cluster',
    clusterSecret: 'secret',
    addressOf: (id) => addresses.get(id),
    logger: log.logger,
    backoffMinMs: 5,
    backoffMaxMs: 50,
    ...overrides,
  });
  const received: Array<{ from: number; text: string }> = [];
  const countWaiters: Array<{ count: number; resolve: () => void }> = [];
  transport.onMessage((from, payload) => {
    received.push({ from, text: Buffer.from(payload).toString('utf8') });
    for (const w of [...countWaiters]) {
      if (received.length >= w.count) {
        countWaiters.splice(countWaiters.indexOf(w), 1);
        w.resolve();
      }
    }
  });
  const app = express();
  app.use(transport.router());
  const server = http.createServer(app);
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const bound = (server.address() as AddressInfo).port;
  addresses.set(nodeId, `127.0.0.1:${bound}`);
  return {
    transport,
    server,
    port: bound,
    received,
    log,
    receivedCount: (count) =>
      received.length >= count
        ? Promise.resolve()
        : new Promise((resolve) => countWaiters.push({ count, resolve })),
    close: () =>
      new Promise<void>((resolve) => {
        transport.close();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const text = (s: string) => new TextEncoder().encode(s);

describe('PeerTransport', () => {
  const nodes: Node[] = [];
  afterEach(async () => {
    await Promise.all(nodes.splice(0).map((n) => n.close()));
    addresses.clear();
  });
  async function node(id: number, overrides: Partial<PeerTransportOptions> = {}, port = 0) {
    const n = await startNode(id, overrides, port);
    nodes.push(n);
    return n;
  }

  it('delivers messages in order, batched when many are queued', async () => {
    const a = await node(1);
    const b = await node(2);
    for (let i = 0; i < 500; i++) a.transport.send(2, text(`m${i}`));
    await b.receivedCount(500);
    expect(b.received.map((r) => r.text)).toEqual(Array.from({ length: 500 }, (_, i) => `m${i}`));
    expect(b.received.every((r) => r.from === 1)).toBe(true);
    await a.transport.flush();
    const stats = a.transport.stats(2);
    expect(stats?.messagesSent).toBe(500);
    expect(stats?.requests).toBeLessThan(500);
  });

  it('refuses and logs a request with the wrong cluster secret', async () => {
    const a = await node(1, { clusterSecret: 'wrong' });
    const b = await node(2);
    a.transport.send(2, text('hello'));
    await b.log.waitFor(/without the cluster secret/);
    await a.log.waitFor(/cannot reach peer/);
    expect(b.received).toEqual([]);
  });

  it('refuses and logs a node of another cluster', async () => {
    const a = await node(1, { clusterId: 'other-cluster' });
    const b = await node(2);
    a.transport.send(2, text('hello'));
    const line = await b.log.waitFor(/another cluster/);
    expect(line.obj).toMatchObject({ theirCluster: 'other-cluster', ourCluster: 'test-cluster' });
    expect(b.received).toEqual([]);
  });

  it('queues one message larger than the queue limit when it is alone, drops what overflows', async () => {
    const a = await node(1, { maxQueueBytes: 1_000, maxBatchBytes: 100 });
    const b = await node(2);
    // The first leaves at once (in flight, not queued); the next waits alone in the queue,
    // beyond the limit but accepted; the one after would overflow the queue: dropped.
    a.transport.send(2, text('x'.repeat(50_000)));
    a.transport.send(2, text('y'.repeat(5_000)));
    a.transport.send(2, text('z'.repeat(10)));
    await b.receivedCount(2);
    await a.transport.flush();
    expect(b.received.map((r) => r.text.length)).toEqual([50_000, 5_000]);
    expect(a.transport.stats(2)).toMatchObject({ messagesSent: 2, messagesDropped: 1 });
  });

  it('checks the cluster secret before reading a request body', async () => {
    const b = await node(2, { maxRequestBytes: 1_000 });
    const body = encodeFrames([text('z'.repeat(5_000))]);
    const post = (secret: string) =>
      fetch(`http://127.0.0.1:${b.port}/raft/v1/messages`, {
        method: 'POST',
        headers: {
          'content-type': 'application/octet-stream',
          'x-dmq-cluster-id': 'test-cluster',
          'x-dmq-node-id': '1',
          'x-dmq-to-node-id': '2',
          'x-dmq-cluster-secret': secret,
        },
        body,
      });
    // Without the secret: refused on its headers (not "too large": the body is never read).
    expect((await post('wrong')).status).toBe(401);
    // With it: the body is read, and this one is beyond the limit.
    expect((await post('secret')).status).toBe(413);
    expect(b.received).toEqual([]);
  });

  it('does not let a peer that never answers stall the others', async () => {
    // Node 3 accepts connections and never answers.
    const hung = http.createServer(() => undefined);
    await new Promise<void>((resolve) => hung.listen(0, '127.0.0.1', resolve));
    addresses.set(3, `127.0.0.1:${(hung.address() as AddressInfo).port}`);
    try {
      const a = await node(1, { requestTimeoutMs: 60_000 });
      const b = await node(2);
      for (let i = 0; i < 100; i++) {
        a.transport.send(3, text(`to-3-${i}`));
        a.transport.send(2, text(`to-2-${i}`));
      }
      await b.receivedCount(100);
      expect(b.received).toHaveLength(100);
      expect(a.transport.stats(3)?.messagesSent).toBe(0);
    } finally {
      hung.closeAllConnections();
      await new Promise<void>((resolve) => hung.close(() => resolve()));
    }
  });

  it('drops messages to an unreachable peer, reports it, and reconnects when it is back', async () => {
    const unreachable: number[] = [];
    const a = await node(1, { onUnreachable: (id) => unreachable.push(id) });
    // Reserve a port, then free it: node 2 is down.
    const probe = http.createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    addresses.set(2, `127.0.0.1:${port}`);

    a.transport.send(2, text('lost'));
    await a.log.waitFor(/cannot reach peer/);
    expect(unreachable).toContain(2);
    expect(a.transport.stats(2)?.messagesDropped).toBeGreaterThanOrEqual(1);

    const b = await node(2, {}, port);
    // Keep sending until one gets through after the backoff (Raft would resend too).
    let delivered = false;
    void b.receivedCount(1).then(() => (delivered = true));
    while (!delivered) {
      a.transport.send(2, text('again'));
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(b.received[0]).toEqual({ from: 1, text: 'again' });
    await a.log.waitFor(/reachable again/);
  });

  it('leaves no abort listener behind for each backoff while a peer is down', async () => {
    // Each backoff used to add a listener to the queue's own abort signal (it lives as long
    // as the peer) and never remove it: one more per failed request, and Node's
    // MaxListenersExceededWarning after ten, i.e. a few seconds into a failover.
    const a = await node(1, { backoffMinMs: 1, backoffMaxMs: 2 });
    const probe = http.createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    addresses.set(2, `127.0.0.1:${port}`);

    while ((a.transport.stats(2)?.failures ?? 0) < 25) {
      a.transport.send(2, text('lost'));
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    // White-box: the queue's signal is private; nothing else observes its listeners.
    const queue = (
      a.transport as unknown as { peers: Map<number, { abort: AbortController }> }
    ).peers.get(2);
    const signal = queue?.abort.signal as AbortSignal;
    // At most the request in flight holds one (Node removes it when the request ends).
    expect(getEventListeners(signal, 'abort').length).toBeLessThanOrEqual(1);
  });
});

describe('frames', () => {
  it('round-trips payloads, including empty ones', () => {
    const payloads = [text('a'), new Uint8Array(0), text('x'.repeat(1000))];
    const decoded = decodeFrames(encodeFrames(payloads));
    expect(decoded.map((d) => Buffer.from(d).toString())).toEqual(
      payloads.map((p) => Buffer.from(p).toString()),
    );
  });
  it('refuses a truncated batch', () => {
    const body = encodeFrames([text('hello')]);
    expect(() => decodeFrames(body.subarray(0, body.length - 1))).toThrow(/truncated/);
    expect(() => decodeFrames(body.subarray(0, 2))).toThrow(/truncated/);
  });
});
