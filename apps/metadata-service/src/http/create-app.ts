import { timingSafeEqual } from 'node:crypto';
import express, { type NextFunction, type Request, type Response } from 'express';
import { API_BASE_PATH, ErrorCode, Headers, MAX_BODY_BYTES } from '@dmq/api-contracts';
import { DEFAULT_RETRY_AFTER_SECONDS } from '../node/retry-after-policy';
import { ApiError } from './api-error';
import type { LeaderForwarder } from './leader-forwarder';
import type { MetadataApi } from './ports';
import { topicRoutes } from './routes/topics';
import { brokerRoutes } from './routes/brokers';
import { metadataRoutes } from './routes/metadata';
import { clusterRoutes } from './routes/cluster';

/** The little of pino the HTTP layer uses. */
export interface HttpLogger {
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
  debug(obj: object, msg: string): void;
}

/** Called once per answered request (for the latency histogram). */
export type RequestObserver = (
  route: string,
  method: string,
  status: number,
  seconds: number,
) => void;

export interface AppDeps {
  readonly api: MetadataApi;
  readonly logger: HttpLogger;
  /** When set, mutating calls need `Authorization: Bearer <token>`. */
  readonly apiToken?: string;
  /** Relays requests that need the leader; absent in single-process tests. */
  readonly forwarder?: LeaderForwarder;
  readonly observe?: RequestObserver;
  /** Prometheus text for `/metrics`. */
  readonly metricsText?: () => Promise<{ contentType: string; body: string }>;
  /**
   * `Retry-After` (whole seconds) of a 503 with this code, answered now: the node's
   * `RetryAfterPolicy`. Absent in single-process tests: {@link DEFAULT_RETRY_AFTER_SECONDS}.
   */
  readonly retryAfterSeconds?: (code: ErrorCode, retryLater: boolean) => number;
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
/** Mutating routes served by whichever node receives them. */
const NODE_LOCAL_WRITES = new Set([`${API_BASE_PATH}/cluster/snapshot`]);

/**
 * Builds the Express app that serves the contract over `deps.api`. Middleware order:
 * contract headers → auth → forward-to-leader → body parsing → routes → 404 → error mapping.
 */
export function createApp(deps: AppDeps): express.Express {
  const { api } = deps;
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('query parser', 'simple');

  // X-DMQ-Leader and X-DMQ-Metadata-Version on every answer, computed when the head is
  // written so they describe the state the answer reflects (forwarded answers keep the
  // leader's own headers).
  app.use((req: Request, res: Response, next: NextFunction) => {
    const started = process.hrtime.bigint();
    const writeHead = res.writeHead;
    res.writeHead = function patchedWriteHead(this: Response, ...args: unknown[]) {
      if (res.locals['forwarded'] !== true) {
        const leader = api.leaderId();
        if (leader !== undefined) res.setHeader('X-DMQ-Leader', String(leader));
        else res.removeHeader('X-DMQ-Leader');
        res.setHeader('X-DMQ-Metadata-Version', String(api.metadataVersion()));
      }
      return (writeHead as (...a: unknown[]) => Response).apply(this, args);
    } as typeof res.writeHead;
    res.on('finish', () => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const route =
        typeof req.route?.path === 'string' ? `${req.baseUrl}${req.route.path}` : 'unmatched';
      deps.observe?.(route, req.method, res.statusCode, seconds);
    });
    next();
  });

  // Probes answer at the root (as orchestrators expect) and under the API base path (as the
  // contract lists them there).
  app.get(['/healthz', `${API_BASE_PATH}/healthz`], (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get(['/readyz', `${API_BASE_PATH}/readyz`], (_req, res) => {
    const readiness = api.readiness();
    res
      .status(readiness.ready ? 200 : 503)
      .json(
        readiness.ready
          ? { status: 'ok' }
          : { status: 'not-ready', reason: readiness.reason ?? 'not ready' },
      );
  });
  app.get(['/metrics', `${API_BASE_PATH}/metrics`], async (_req, res) => {
    if (deps.metricsText === undefined)
      throw new ApiError(ErrorCode.NOT_FOUND, 'metrics are not enabled');
    const { contentType, body } = await deps.metricsText();
    res.type(contentType).send(body);
  });

  const apiToken = deps.apiToken === undefined ? undefined : Buffer.from(`Bearer ${deps.apiToken}`);
  app.use(API_BASE_PATH, (req: Request, _res: Response, next: NextFunction) => {
    if (apiToken === undefined || SAFE_METHODS.has(req.method)) return next();
    const given = Buffer.from(req.get(Headers.authorization) ?? '');
    if (given.length !== apiToken.length || !timingSafeEqual(given, apiToken)) {
      return next(new ApiError(ErrorCode.UNAUTHORIZED, 'missing or wrong bearer token'));
    }
    return next();
  });

  // A write that reaches a follower is relayed to the leader, unparsed.
  app.use(API_BASE_PATH, async (req: Request, res: Response, next: NextFunction) => {
    if (
      SAFE_METHODS.has(req.method) ||
      NODE_LOCAL_WRITES.has(`${req.baseUrl}${req.path}`) ||
      api.isLeader()
    ) {
      return next();
    }
    const leader = api.leaderId();
    if (
      leader === undefined ||
      deps.forwarder === undefined ||
      req.get(Headers.forwardedBy) !== undefined
    ) {
      return next(new ApiError(ErrorCode.NO_LEADER, 'no leader is known; nothing was committed'));
    }
    try {
      await deps.forwarder.forward(req, res, leader);
    } catch (err) {
      next(err);
    }
  });

  app.use(API_BASE_PATH, express.json({ limit: MAX_BODY_BYTES, strict: true, type: () => true }));
  app.use(API_BASE_PATH, topicRoutes(api));
  app.use(API_BASE_PATH, brokerRoutes(api));
  app.use(API_BASE_PATH, metadataRoutes(api));
  app.use(API_BASE_PATH, clusterRoutes(api));

  app.use((req: Request, _res: Response, next: NextFunction) => {
    next(new ApiError(ErrorCode.NOT_FOUND, `no route ${req.method} ${req.path}`));
  });
  app.use(errorHandler(deps.logger, deps.retryAfterSeconds ?? (() => DEFAULT_RETRY_AFTER_SECONDS)));
  return app;
}

interface BodyParserError {
  type?: string;
  status?: number;
}

/** The one place that turns errors into contract answers. */
function errorHandler(
  logger: HttpLogger,
  retryAfterSeconds: (code: ErrorCode, retryLater: boolean) => number,
) {
  return (err: unknown, req: Request, res: Response, _next: NextFunction): void => {
    const apiError = toApiError(err);
    if (apiError.code === ErrorCode.INTERNAL_ERROR) {
      logger.error({ err, method: req.method, path: req.path }, 'request failed');
    } else {
      logger.debug({ code: apiError.code, method: req.method, path: req.path }, apiError.message);
    }
    if (res.headersSent) {
      res.destroy();
      return;
    }
    if (apiError.status === 503)
      res.setHeader(
        'Retry-After',
        String(retryAfterSeconds(apiError.code, apiError.options.retryLater === true)),
      );
    res.status(apiError.status).json(apiError.toBody());
  };
}

function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  const parserError = err as BodyParserError;
  switch (parserError?.type) {
    case 'entity.too.large':
      return new ApiError(
        ErrorCode.PAYLOAD_TOO_LARGE,
        `request body exceeds ${MAX_BODY_BYTES} bytes`,
      );
    case 'entity.parse.failed':
      return new ApiError(ErrorCode.INVALID_REQUEST, 'request body is not valid JSON');
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return new ApiError(ErrorCode.UNSUPPORTED_MEDIA_TYPE, 'unsupported body encoding');
    default:
      return new ApiError(ErrorCode.INTERNAL_ERROR, 'internal error');
  }
}
