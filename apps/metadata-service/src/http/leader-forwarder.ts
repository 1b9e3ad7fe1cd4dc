import http from 'node:http';
import type { Request, Response } from 'express';
import { ErrorCode, Headers } from '@dmq/api-contracts';
import { ApiError } from './api-error';

export interface LeaderForwarderOptions {
  /** This node's id (sent as `X-DMQ-Forwarded-By`). */
  readonly nodeId: number;
  /** The HTTP `host:port` of a node, from this node's own `DMQ_PEERS` only. */
  readonly addressOf: (nodeId: number) => string | undefined;
  /** Give up on the leader after this long (then 504: the outcome is unknown). */
  readonly timeoutMs: number;
}

/**
 * Serves a request that needs the leader by relaying it, unparsed, to the leader's HTTP
 * address and relaying the answer back (status, headers, body), so a client never has to
 * hunt for the leader. A connection refused means nothing reached the leader (503
 * NO_LEADER); any failure after the request was sent leaves the outcome unknown (504
 * COMMIT_TIMEOUT: retry with the same Idempotency-Key).
 */
export class LeaderForwarder {
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

  constructor(private readonly options: LeaderForwarderOptions) {}

  forward(req: Request, res: Response, leaderId: number): Promise<void> {
    const address = this.options.addressOf(leaderId);
    if (address === undefined) {
      return Promise.reject(
        new ApiError(ErrorCode.NO_LEADER, `leader ${leaderId} has no known address`),
      );
    }
    const colon = address.lastIndexOf(':');
    const host = address.slice(0, colon).replace(/^\[(.*)\]$/, '$1');
    const port = Number(address.slice(colon + 1));
    const headers = { ...req.headers, [Headers.forwardedBy]: String(this.options.nodeId) };
    delete headers.host;
    delete headers.connection;
    return new Promise<void>((resolve, reject) => {
      let sent = false;
      const upstream = http.request(
        {
          host,
          port,
          method: req.method,
          path: req.originalUrl,
          headers,
          agent: this.agent,
          timeout: this.options.timeoutMs,
        },
        (answer) => {
          res.locals['forwarded'] = true;
          res.status(answer.statusCode ?? 502);
          for (const [name, value] of Object.entries(answer.headers)) {
            if (
              value !== undefined &&
              name !== 'connection' &&
              name !== 'keep-alive' &&
              name !== 'transfer-encoding'
            ) {
              res.setHeader(name, value);
            }
          }
          answer.pipe(res);
          answer.on('end', () => resolve());
          answer.on('error', (err) => reject(err));
        },
      );
      upstream.on('finish', () => (sent = true));
      upstream.on('timeout', () =>
        upstream.destroy(
          new Error(`leader ${leaderId} did not answer within ${this.options.timeoutMs} ms`),
        ),
      );
      upstream.on('error', (err: NodeJS.ErrnoException) => {
        if (res.headersSent) {
          res.destroy(err);
          resolve();
          return;
        }
        if (!sent || err.code === 'ECONNREFUSED') {
          reject(
            new ApiError(ErrorCode.NO_LEADER, `leader ${leaderId} unreachable: ${err.message}`),
          );
        } else {
          reject(
            new ApiError(
              ErrorCode.COMMIT_TIMEOUT,
              `lost the leader while forwarding; the outcome is unknown: ${err.message}`,
            ),
          );
        }
      });
      req.pipe(upstream);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}
