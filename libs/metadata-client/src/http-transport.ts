import * as http from 'node:http';
import * as https from 'node:https';

/** One HTTP exchange to send. */
export interface HttpRequest {
  readonly method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  readonly url: URL;
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: string;
  /** Whole-exchange timeout (connect, send, answer), ms. */
  readonly timeoutMs: number;
  /** Aborting rejects the exchange with the signal's reason. */
  readonly signal: AbortSignal;
  readonly maxResponseBytes: number;
}

/** A complete answer. */
export interface HttpAnswer {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
}

/** Codes that prove the request never reached a server: always safe to send elsewhere. */
const NOT_DELIVERED_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EADDRNOTAVAIL',
]);

/**
 * A failure below HTTP. `delivered` is false when the request certainly never reached a
 * server (connection refused, DNS): then even a write without an idempotency key may be
 * re-sent. Internal: the client wraps it into a `TransportError` when it gives up.
 */
export class SocketFailure extends Error {
  readonly code: string;
  readonly delivered: boolean;
  constructor(message: string, code: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'SocketFailure';
    this.code = code;
    this.delivered = !NOT_DELIVERED_CODES.has(code);
  }
}

/** Sends requests over keep-alive `node:http` / `node:https` agents. */
export class HttpTransport {
  private readonly httpAgent: http.Agent;
  private readonly httpsAgent: https.Agent;

  constructor(keepAlive: boolean) {
    this.httpAgent = new http.Agent({ keepAlive });
    this.httpsAgent = new https.Agent({ keepAlive });
  }

  /** Resolves with the answer, or rejects with a {@link SocketFailure} or the abort reason. */
  send(request: HttpRequest): Promise<HttpAnswer> {
    return new Promise<HttpAnswer>((resolve, reject) => {
      const { signal } = request;
      if (signal.aborted) {
        reject(signal.reason);
        return;
      }
      const isHttps = request.url.protocol === 'https:';
      const headers: Record<string, string | number> = { ...request.headers };
      if (request.body !== undefined) headers['content-length'] = Buffer.byteLength(request.body);
      let settled = false;
      const finish = (error: unknown, answer?: HttpAnswer) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        if (answer !== undefined) resolve(answer);
        else reject(error);
      };
      const req = (isHttps ? https : http).request(request.url, {
        method: request.method,
        headers,
        agent: isHttps ? this.httpsAgent : this.httpAgent,
      });
      const fail = (error: unknown) => {
        finish(error);
        req.destroy();
      };
      const onAbort = () => fail(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
      const timer = setTimeout(
        () =>
          fail(
            new SocketFailure(
              `no complete answer within ${request.timeoutMs} ms from ${request.url.host}`,
              'ETIMEDOUT',
            ),
          ),
        request.timeoutMs,
      );
      req.on('error', (error: NodeJS.ErrnoException) => {
        fail(
          new SocketFailure(
            `${request.method} ${request.url.host}: ${error.message}`,
            error.code ?? 'ECONNRESET',
            error,
          ),
        );
      });
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > request.maxResponseBytes) {
            fail(
              new SocketFailure(
                `answer from ${request.url.host} exceeds ${request.maxResponseBytes} bytes`,
                'ERESPONSETOOLARGE',
              ),
            );
            return;
          }
          chunks.push(chunk);
        });
        res.on('error', (error: NodeJS.ErrnoException) =>
          fail(new SocketFailure(error.message, error.code ?? 'ECONNRESET', error)),
        );
        res.on('aborted', () =>
          fail(new SocketFailure(`answer from ${request.url.host} cut short`, 'ECONNRESET')),
        );
        res.on('end', () =>
          finish(undefined, {
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString('utf8'),
          }),
        );
      });
      req.end(request.body);
    });
  }

  /** Closes idle keep-alive sockets and refuses to reuse busy ones. */
  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }
}
