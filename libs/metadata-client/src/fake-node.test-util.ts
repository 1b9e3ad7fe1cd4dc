/**
 * A real HTTP server on 127.0.0.1 (port 0) that plays one metadata node in tests: it records
 * every request and answers with a scriptable handler. Tests wait on `nextRequest()` instead
 * of sleeping.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RecordedRequest {
  readonly method: string;
  /** Path without the query string. */
  readonly path: string;
  readonly query: Record<string, string>;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
  /** The body parsed as JSON, or undefined when empty / not JSON. */
  readonly json: unknown;
}

export interface Reply {
  readonly status: number;
  /** JSON-encoded unless `raw` is set. */
  readonly body?: unknown;
  /** Sent as is (for malformed answers). */
  readonly raw?: string;
  readonly headers?: Record<string, string>;
}

/** `'hang'` never answers; `'reset'` destroys the connection. */
export type Handler = (
  request: RecordedRequest,
) => Reply | 'hang' | 'reset' | Promise<Reply | 'hang' | 'reset'>;

export class FakeNode {
  readonly requests: RecordedRequest[] = [];
  handler: Handler;
  private server: http.Server;
  private readonly waiters = new Map<number, (request: RecordedRequest) => void>();
  private awaited = 0;
  private port = 0;

  private constructor(handler: Handler) {
    this.handler = handler;
    this.server = this.createServer();
  }

  /** Starts a node on an ephemeral port. */
  static async start(
    handler: Handler = () => ({ status: 404, body: notFound() }),
  ): Promise<FakeNode> {
    const node = new FakeNode(handler);
    await node.listen();
    return node;
  }

  /** `127.0.0.1:<port>` */
  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /**
   * Resolves with the oldest request not yet returned by this method, as soon as it has
   * arrived (before it is answered).
   */
  nextRequest(): Promise<RecordedRequest> {
    const index = this.awaited++;
    const arrived = this.requests[index];
    if (arrived !== undefined) return Promise.resolve(arrived);
    return new Promise((resolve) => this.waiters.set(index, resolve));
  }

  /** Stops listening and cuts every open connection (a crashed node). */
  async stop(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    await closed;
  }

  /** Listens again on the same port (a restarted node). */
  async restart(): Promise<void> {
    this.server = this.createServer();
    await this.listen();
  }

  private async listen(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.port = (this.server.address() as AddressInfo).port;
  }

  private createServer(): http.Server {
    return http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const url = new URL(req.url ?? '/', 'http://localhost');
        const body = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try {
          json = body === '' ? undefined : JSON.parse(body);
        } catch {
          json = undefined;
        }
        const recorded: RecordedRequest = {
          method: req.method ?? '',
          path: url.pathname,
          query: Object.fromEntries(url.searchParams),
          headers: req.headers,
          body,
          json,
        };
        const index = this.requests.push(recorded) - 1;
        this.waiters.get(index)?.(recorded);
        this.waiters.delete(index);
        void Promise.resolve(this.handler(recorded)).then((reply) => {
          if (reply === 'hang') return;
          if (reply === 'reset') {
            req.socket.destroy();
            return;
          }
          const text = reply.raw ?? (reply.body === undefined ? '' : JSON.stringify(reply.body));
          res.writeHead(reply.status, {
            ...(text === '' ? {} : { 'content-type': 'application/json' }),
            ...reply.headers,
          });
          res.end(text);
        });
      });
    });
  }
}

/** Stops every given node (ignores ones already stopped). */
export async function stopAll(nodes: readonly FakeNode[]): Promise<void> {
  await Promise.all(nodes.map((n) => n.stop().catch(() => undefined)));
}

/** A port nothing listens on (connections to it are refused). */
export async function refusedAddress(): Promise<string> {
  const node = await FakeNode.start();
  const address = node.address;
  await node.stop();
  return address;
}

export function errorBody(code: string, message = code.toLowerCase(), issues?: unknown[]) {
  return { error: { code, message, ...(issues === undefined ? {} : { issues }) } };
}

function notFound() {
  return errorBody('NOT_FOUND', 'no such route');
}

export const partitionFixture = {
  topic: 'orders',
  partition: 0,
  leader: 1,
  replicas: [1, 2, 3],
  isr: [1, 2],
  leaderEpoch: 3,
  partitionEpoch: 7,
  startOffset: 0,
  endOffset: 42,
};

export const topicFixture = {
  name: 'orders',
  topicId: '0b7f3c2e-9c1a-4d2b-8e1f-3a4b5c6d7e8f',
  replicationFactor: 3,
  config: { 'retention.ms': '604800000' },
  partitions: [partitionFixture],
  createdAt: '2026-11-27T10:00:00.000Z',
};

export const brokerFixture = {
  brokerId: 1,
  host: '10.0.0.5',
  port: 9192,
  rack: 'a',
  brokerEpoch: 12,
  status: 'ONLINE',
  lastHeartbeatAt: '2026-11-27T10:00:01.000Z',
  pushEndpoint: null,
};

export const memberFixture = {
  id: 1,
  address: '127.0.0.1:9091',
  voter: true,
  matchIndex: 10,
  lastContactMs: 3,
};

export function metadataFixture(version: number) {
  return { version, brokers: [brokerFixture], topics: [topicFixture] };
}

/** A sleep that records the delays asked for and returns at once (unless aborted). */
export function recordingSleep(): {
  delays: number[];
  sleep: (ms: number, signal: AbortSignal) => Promise<void>;
} {
  const delays: number[] = [];
  return {
    delays,
    sleep: async (ms, signal) => {
      delays.push(ms);
      if (signal.aborted) throw signal.reason;
    },
  };
}
