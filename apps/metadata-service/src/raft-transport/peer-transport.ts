import http from 'node:http';
import { timingSafeEqual } from 'node:crypto';
import express, { type Request, type Response, type Router } from 'express';

/** Path of the node-to-node endpoint (not part of the public API). */
export const RAFT_PATH = '/raft/v1/messages';

const HEADER_CLUSTER = 'x-dmq-cluster-id';
const HEADER_FROM = 'x-dmq-node-id';
const HEADER_TO = 'x-dmq-to-node-id';
const HEADER_SECRET = 'x-dmq-cluster-secret';

export interface TransportLogger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface PeerTransportOptions {
  readonly nodeId: number;
  readonly clusterId: string;
  /** Every request carries it and every received request must carry it; unset = no check. */
  readonly clusterSecret: string | undefined;
  /** `host:port` of a peer, from this node's own `DMQ_PEERS` (or a membership change). */
  readonly addressOf: (nodeId: number) => string | undefined;
  readonly logger: TransportLogger;
  /** One batch request must finish within this (default 5 s). */
  readonly requestTimeoutMs?: number;
  /** Most payload bytes in one batch request (default 4 MiB). */
  readonly maxBatchBytes?: number;
  /**
   * Most payload bytes queued for one peer; beyond it new messages are dropped (default
   * 32 MiB) — except a message alone in an empty queue, whatever its size (one large Raft
   * entry, e.g. a disaster-recovery restore, must still get through).
   */
  readonly maxQueueBytes?: number;
  /** Backoff after a failed request: doubles from min to max (defaults 20 ms … 1 s). */
  readonly backoffMinMs?: number;
  readonly backoffMaxMs?: number;
  /**
   * Largest request body accepted from a peer (default {@link MAX_PEER_REQUEST_BYTES}): also
   * the largest Raft entry the cluster can replicate. Checked after the cluster id and secret,
   * so only peers that know the secret can make a node read that much.
   */
  readonly maxRequestBytes?: number;
  /** Told when messages to a peer were dropped because it is unreachable (Raft re-probes it). */
  readonly onUnreachable?: (nodeId: number) => void;
}

/** Default {@link PeerTransportOptions.maxRequestBytes}: 512 MiB. */
export const MAX_PEER_REQUEST_BYTES = 512 * 1024 * 1024;

/** Counters for `/metrics` and tests. */
export interface PeerStats {
  readonly requests: number;
  readonly messagesSent: number;
  readonly messagesDropped: number;
  readonly failures: number;
  readonly queuedBytes: number;
  readonly lastContactAt: number | undefined;
}

type Handler = (from: number, payload: Uint8Array) => void;

/**
 * Carries opaque Raft messages between nodes over HTTP/1.1 keep-alive.
 *
 * Each peer has its own queue and sender loop, so a slow or dead peer never delays the
 * others: while one batch request is in flight, new messages for that peer accumulate and
 * leave together in the next request (batching under load, one request per round trip when
 * idle). A failed request drops what was queued — Raft tolerates lost messages and
 * retransmits — and the sender backs off exponentially before it reconnects. A message is
 * also dropped when the peer's queue is full. Every request carries the cluster id and the
 * cluster secret; requests from another cluster or without the secret are refused and logged.
 *
 * Batch body: a sequence of frames `u32 big-endian length ‖ payload`.
 */
export class PeerTransport {
  private readonly options: Required<
    Omit<PeerTransportOptions, 'clusterSecret' | 'onUnreachable'>
  > &
    Pick<PeerTransportOptions, 'clusterSecret' | 'onUnreachable'>;
  private readonly peers = new Map<number, PeerQueue>();
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  private readonly secret: Buffer | undefined;
  private handler: Handler | undefined;
  private closed = false;

  constructor(options: PeerTransportOptions) {
    this.options = {
      requestTimeoutMs: 5_000,
      maxBatchBytes: 4 * 1024 * 1024,
      maxQueueBytes: 32 * 1024 * 1024,
      backoffMinMs: 20,
      backoffMaxMs: 1_000,
      maxRequestBytes: MAX_PEER_REQUEST_BYTES,
      ...options,
    };
    this.secret =
      options.clusterSecret === undefined ? undefined : Buffer.from(options.clusterSecret);
  }

  /** Installs the receiver of every message that arrives from a peer. */
  onMessage(handler: Handler): void {
    this.handler = handler;
  }

  /** Queues `payload` for `to`; never blocks and never throws. */
  send(to: number, payload: Uint8Array): void {
    if (this.closed) return;
    let peer = this.peers.get(to);
    if (peer === undefined) {
      peer = new PeerQueue(to, this);
      this.peers.set(to, peer);
    }
    peer.enqueue(payload);
  }

  /** Resolves once every queued message was sent or dropped (for graceful shutdown). */
  async flush(): Promise<void> {
    await Promise.all([...this.peers.values()].map((peer) => peer.idle()));
  }

  stats(nodeId: number): PeerStats | undefined {
    return this.peers.get(nodeId)?.stats();
  }

  /** The Express router of the receiving side; mount it on the node's HTTP server. */
  router(): Router {
    const router = express.Router();
    router.post(
      RAFT_PATH,
      // The headers are checked before the body is read.
      (req: Request, res: Response, next: () => void) => {
        if (this.admit(req, res)) next();
      },
      express.raw({ type: () => true, limit: this.options.maxRequestBytes }),
      (req: Request, res: Response) => this.receive(req, res),
    );
    return router;
  }

  /** Stops sending; in-flight requests are aborted. */
  close(): void {
    this.closed = true;
    for (const peer of this.peers.values()) peer.close();
    this.agent.destroy();
  }

  /** Checks a request's cluster id, secret and addressee; answers and returns false if refused. */
  private admit(req: Request, res: Response): boolean {
    const from = Number(req.get(HEADER_FROM));
    const cluster = req.get(HEADER_CLUSTER);
    if (cluster !== this.options.clusterId) {
      this.options.logger.warn(
        {
          from,
          remote: req.socket.remoteAddress,
          theirCluster: cluster,
          ourCluster: this.options.clusterId,
        },
        'refused a Raft request from a node of another cluster',
      );
      res.status(403).json({
        error: {
          code: 'CLUSTER_ID_MISMATCH',
          message: `this node belongs to cluster ${this.options.clusterId}`,
        },
      });
      return false;
    }
    if (this.secret !== undefined) {
      const given = Buffer.from(req.get(HEADER_SECRET) ?? '');
      if (given.length !== this.secret.length || !timingSafeEqual(given, this.secret)) {
        this.options.logger.warn(
          { from, remote: req.socket.remoteAddress },
          'refused a Raft request without the cluster secret',
        );
        res
          .status(401)
          .json({ error: { code: 'UNAUTHORIZED', message: 'missing or wrong cluster secret' } });
        return false;
      }
    }
    const to = Number(req.get(HEADER_TO));
    if (to !== this.options.nodeId) {
      this.options.logger.warn(
        { from, to, self: this.options.nodeId },
        'refused a Raft request meant for another node',
      );
      res
        .status(421)
        .json({ error: { code: 'MISDIRECTED', message: `this is node ${this.options.nodeId}` } });
      return false;
    }
    return true;
  }

  private receive(req: Request, res: Response): void {
    const from = Number(req.get(HEADER_FROM));
    if (!Number.isSafeInteger(from) || from <= 0 || !Buffer.isBuffer(req.body)) {
      res.status(400).json({ error: { code: 'INVALID_REQUEST', message: 'malformed Raft batch' } });
      return;
    }
    let frames: Uint8Array[];
    try {
      frames = decodeFrames(req.body);
    } catch (err) {
      res.status(400).json({ error: { code: 'INVALID_REQUEST', message: (err as Error).message } });
      return;
    }
    res.status(204).end();
    const handler = this.handler;
    if (handler === undefined) return;
    for (const frame of frames) handler(from, frame);
  }

  /** @internal used by PeerQueue */
  request(to: number, body: Buffer, signal: AbortSignal): Promise<void> {
    const address = this.options.addressOf(to);
    if (address === undefined) return Promise.reject(new Error(`no address for node ${to}`));
    const colon = address.lastIndexOf(':');
    const host = address.slice(0, colon).replace(/^\[(.*)\]$/, '$1');
    const port = Number(address.slice(colon + 1));
    const headers: Record<string, string> = {
      'content-type': 'application/octet-stream',
      'content-length': String(body.length),
      [HEADER_CLUSTER]: this.options.clusterId,
      [HEADER_FROM]: String(this.options.nodeId),
      [HEADER_TO]: String(to),
    };
    if (this.options.clusterSecret !== undefined)
      headers[HEADER_SECRET] = this.options.clusterSecret;
    return new Promise<void>((resolve, reject) => {
      const req = http.request(
        {
          host,
          port,
          method: 'POST',
          path: RAFT_PATH,
          headers,
          agent: this.agent,
          timeout: this.options.requestTimeoutMs,
          signal,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            if (res.statusCode === 204) return resolve();
            const text = Buffer.concat(chunks).toString('utf8').slice(0, 300);
            reject(new PeerRefusedError(res.statusCode ?? 0, text));
          });
          res.on('error', reject);
        },
      );
      req.on('timeout', () =>
        req.destroy(new Error(`no answer within ${this.options.requestTimeoutMs} ms`)),
      );
      req.on('error', reject);
      req.end(body);
    });
  }

  /** @internal */
  get settings() {
    return this.options;
  }
}

/** The peer answered, but refused the batch (wrong secret, other cluster…). */
export class PeerRefusedError extends Error {
  readonly code = 'transport/peer-refused';
  constructor(
    readonly status: number,
    body: string,
  ) {
    super(`peer refused the batch with ${status}: ${body}`);
    this.name = 'PeerRefusedError';
  }
}

class PeerQueue {
  private queue: Uint8Array[] = [];
  private queuedBytes = 0;
  private sending = false;
  private backoffMs = 0;
  private readonly abort = new AbortController();
  private counters = { requests: 0, messagesSent: 0, messagesDropped: 0, failures: 0 };
  private lastContactAt: number | undefined;
  private lastWarnAt = 0;
  private idleWaiters: Array<() => void> = [];

  constructor(
    private readonly nodeId: number,
    private readonly transport: PeerTransport,
  ) {}

  enqueue(payload: Uint8Array): void {
    const { maxQueueBytes } = this.transport.settings;
    if (this.queue.length > 0 && this.queuedBytes + payload.length > maxQueueBytes) {
      this.counters.messagesDropped += 1;
      return;
    }
    this.queue.push(payload);
    this.queuedBytes += payload.length;
    if (!this.sending) void this.drain();
  }

  stats(): PeerStats {
    return { ...this.counters, queuedBytes: this.queuedBytes, lastContactAt: this.lastContactAt };
  }

  close(): void {
    this.abort.abort();
    this.queue = [];
    this.queuedBytes = 0;
  }

  idle(): Promise<void> {
    if (!this.sending && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private async drain(): Promise<void> {
    this.sending = true;
    const { maxBatchBytes, backoffMinMs, backoffMaxMs, logger, onUnreachable } =
      this.transport.settings;
    try {
      while (this.queue.length > 0 && !this.abort.signal.aborted) {
        if (this.backoffMs > 0) {
          await delay(this.backoffMs, this.abort.signal);
          if (this.abort.signal.aborted) return;
        }
        const batch: Uint8Array[] = [];
        let bytes = 0;
        while (this.queue.length > 0) {
          const next = this.queue[0] as Uint8Array;
          if (batch.length > 0 && bytes + next.length > maxBatchBytes) break;
          batch.push(next);
          bytes += next.length;
          this.queue.shift();
        }
        this.queuedBytes -= bytes;
        this.counters.requests += 1;
        try {
          await this.transport.request(this.nodeId, encodeFrames(batch), this.abort.signal);
          this.counters.messagesSent += batch.length;
          this.lastContactAt = Date.now();
          if (this.backoffMs > 0) logger.info({ peer: this.nodeId }, 'peer reachable again');
          this.backoffMs = 0;
        } catch (err) {
          if (this.abort.signal.aborted) return;
          this.counters.failures += 1;
          // What was queued is stale by the time the peer is back: Raft resends what matters.
          const dropped = batch.length + this.queue.length;
          this.counters.messagesDropped += dropped;
          this.queue = [];
          this.queuedBytes = 0;
          this.backoffMs = Math.min(backoffMaxMs, Math.max(backoffMinMs, this.backoffMs * 2));
          const now = Date.now();
          if (err instanceof PeerRefusedError || now - this.lastWarnAt > 10_000) {
            this.lastWarnAt = now;
            logger.warn(
              {
                peer: this.nodeId,
                err: (err as Error).message,
                dropped,
                backoffMs: this.backoffMs,
              },
              'cannot reach peer',
            );
          } else {
            logger.debug(
              { peer: this.nodeId, err: (err as Error).message, dropped },
              'cannot reach peer',
            );
          }
          onUnreachable?.(this.nodeId);
        }
      }
    } finally {
      this.sending = false;
      if (this.queue.length > 0 && !this.abort.signal.aborted) {
        void this.drain();
      } else {
        const waiters = this.idleWaiters;
        this.idleWaiters = [];
        for (const resolve of waiters) resolve();
      }
    }
  }
}

/**
 * Resolves after `ms`, or at once when `signal` fires. `signal` is the queue's own, living as
 * long as the peer: the listener must go when the timer fires, or every backoff while a peer
 * is down leaves one behind (a leak, and Node's MaxListenersExceededWarning after ten).
 */
function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

/** Frames payloads as `u32 length ‖ bytes` each. */
export function encodeFrames(payloads: readonly Uint8Array[]): Buffer {
  let total = 0;
  for (const p of payloads) total += 4 + p.length;
  const out = Buffer.allocUnsafe(total);
  let offset = 0;
  for (const p of payloads) {
    out.writeUInt32BE(p.length, offset);
    out.set(p, offset + 4);
    offset += 4 + p.length;
  }
  return out;
}

/** Inverse of {@link encodeFrames}; throws on a truncated or trailing frame. */
export function decodeFrames(body: Buffer): Uint8Array[] {
  const frames: Uint8Array[] = [];
  let offset = 0;
  while (offset < body.length) {
    if (offset + 4 > body.length) throw new Error('truncated frame header');
    const length = body.readUInt32BE(offset);
    const end = offset + 4 + length;
    if (end > body.length) throw new Error('truncated frame');
    frames.push(new Uint8Array(body.buffer, body.byteOffset + offset + 4, length));
    offset = end;
  }
  return frames;
}
