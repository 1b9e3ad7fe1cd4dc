import {
  ErrorCode,
  Headers,
  backupDeadLettersResponseSchema,
  backupResyncResponseSchema,
  brokerListSchema,
  clusterStatusSchema,
  errorBodySchema,
  healthResponseSchema,
  heartbeatResponseSchema,
  idempotencyKeySchema,
  leadershipTransferResponseSchema,
  membersResponseSchema,
  metadataResponseSchema,
  partitionInfoSchema,
  partitionListSchema,
  registerBrokerResponseSchema,
  snapshotResponseSchema,
  topicListSchema,
  topicMetadataSchema,
} from '@dmq/api-contracts';
import type {
  AddMemberRequest,
  AlterPartitionRequest,
  BackupDeadLettersResponse,
  BackupResyncResponse,
  BrokerInfo,
  ClusterStatus,
  CreateTopicRequest,
  FieldIssue,
  HealthResponse,
  HeartbeatRequest,
  HeartbeatResponse,
  LeadershipTransferResponse,
  MembersResponse,
  MetadataResponse,
  PartitionInfo,
  RegisterBrokerRequest,
  RegisterBrokerResponse,
  SnapshotResponse,
  TopicConfig,
  TopicMetadata,
} from '@dmq/api-contracts';
import { fullJitterBackoff, parseRetryAfter } from './backoff';
import {
  AbortError,
  ClientClosedError,
  DeadlineExceededError,
  InvalidArgumentError,
  MetadataApiError,
  NoLeaderError,
  ProtocolError,
  TransportError,
} from './errors';
import type { HttpAnswer } from './http-transport';
import { HttpTransport, SocketFailure } from './http-transport';
import { allowManyListeners, linkSignals } from './linked-signal';
import { NodeSelector } from './node-selector';
import type { MetadataClientOptions, ResolvedNode, ResolvedOptions } from './options';
import { resolveOptions } from './options';

/** Options every call takes. */
export interface CallOptions {
  /** Aborts the call (and its retries); it then rejects with {@link AbortError}. */
  readonly signal?: AbortSignal;
  /** Overrides the client's `deadlineMs` for this call. */
  readonly deadlineMs?: number;
  /** Overrides the client's `requestTimeoutMs` (one attempt) for this call. */
  readonly requestTimeoutMs?: number;
}

/** Options of mutating calls. */
export interface WriteOptions extends CallOptions {
  /**
   * `Idempotency-Key` of the write (1..128 printable ASCII). Every retry of the call sends
   * the same key. Without one the client generates a UUID (see `autoIdempotencyKeys`).
   */
  readonly idempotencyKey?: string;
}

/** Options of reads (contract: linearizable by default). */
export interface ReadOptions extends CallOptions {
  /** `stale` answers from the answering node's local state at once. */
  readonly consistency?: 'stale' | 'linearizable';
  /** Wait until the answering node has applied this metadata version (read-your-writes). */
  readonly minVersion?: number;
}

/** Options of calls about one particular node (status, health). */
export interface NodeCallOptions extends CallOptions {
  /**
   * Ask this node (an id from `nodes`, or an address as configured) and no other. Without
   * it the call goes where any other call would (the leader when known).
   */
  readonly node?: number | string;
}

/**
 * Options of {@link MetadataClient.getMetadata}. The image comes from the answering node's
 * local state (the contract's metadataQuery has no consistency options).
 */
export interface GetMetadataOptions extends CallOptions {
  /** Long-poll: answer once the version is greater than this (or after `waitMs`). */
  readonly sinceVersion?: number;
  /** Longest the server may hold the long-poll, ms (the server caps it at 60 s). */
  readonly waitMs?: number;
}

/** Options of {@link MetadataClient.watchMetadata}. */
export interface WatchMetadataOptions {
  /** Ends the iteration (without an error) when it fires. */
  readonly signal?: AbortSignal;
  /** Yield only versions greater than this; without it the current image comes first. */
  readonly sinceVersion?: number;
  /** `waitMs` of each long-poll; defaults to the client's `watchWaitMs`. */
  readonly waitMs?: number;
}

/** What the client learned from the last answer it received (from any call). */
export interface AnswerInfo {
  /** Base URL (with `/api/v1`) of the node that answered. */
  readonly node: string;
  readonly status: number;
  /** `X-DMQ-Leader` of the answer (undefined: the node knew no leader). */
  readonly leaderId: number | undefined;
  /** `X-DMQ-Metadata-Version` of the answer: the Raft index its state reflects. */
  readonly metadataVersion: number | undefined;
}

/** What a structural zod schema offers (keeps zod out of this package's dependencies). */
interface Schema<T> {
  safeParse(value: unknown):
    | { success: true; data: T }
    | {
        success: false;
        error: { issues: readonly { path: readonly PropertyKey[]; message: string }[] };
      };
}

type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';
type Query = Record<string, string | number | undefined>;

/** One logical call: what to send and how to read the answer. */
interface Exchange<T> {
  readonly method: Method;
  readonly path: string;
  readonly query?: Query;
  readonly body?: unknown;
  /** Schema of a 2xx answer body; `null` for answers whose body is ignored (204). */
  readonly schema: Schema<T> | null;
  /** Answer to accept although it is not 2xx (readyz's 503). */
  readonly acceptError?: (status: number, json: unknown) => T | undefined;
  readonly node?: ResolvedNode;
  /** The path is outside `/api/v1` (the probes). */
  readonly atRoot?: boolean;
  readonly maxAttempts?: number;
  readonly attemptTimeoutMs?: number;
}

/** The outcome of one attempt that did not succeed, kept to explain the final error. */
type Failure = SocketFailure | MetadataApiError;

const RETRY_ALWAYS = new Set<string>([ErrorCode.NO_LEADER, ErrorCode.NOT_READY]);
const USER_AGENT = 'dmq-metadata-client/0.1.0';

/**
 * Typed client of the DMQ metadata service's HTTP API (`/api/v1`, see `contract.md`).
 *
 * - Talks to any of the configured nodes and follows `X-DMQ-Leader`: with node ids known it
 *   goes straight to the leader; without, it stays on a working node and rotates on failure.
 * - Retries `503` (`NO_LEADER`, `NOT_READY`) and connection failures with exponential
 *   backoff and full jitter, at least `Retry-After`, within `maxAttempts` and the call's
 *   deadline. Mutating calls carry one `Idempotency-Key` across all their attempts, which
 *   also makes a `504 COMMIT_TIMEOUT` or a reset connection safe to retry.
 * - Validates every answer with the `@dmq/api-contracts` schemas; error bodies become
 *   {@link MetadataApiError}s, malformed answers {@link ProtocolError}s.
 *
 * Call {@link MetadataClient.close} when done: it ends watches, aborts calls in flight and
 * closes the keep-alive sockets.
 *
 * @example
 * const client = new MetadataClient({ nodes: '1=10.0.0.1:9091,2=10.0.0.2:9091' });
 * const topic = await client.createTopic({ name: 'orders', partitions: 3, replicationFactor: 3 });
 */
export class MetadataClient {
  private readonly options: ResolvedOptions;
  private readonly selector: NodeSelector;
  private readonly transport: HttpTransport;
  private readonly closing = new AbortController();
  private last: AnswerInfo | undefined;

  /** @throws {@link InvalidArgumentError} when an option is invalid. */
  constructor(options: MetadataClientOptions) {
    this.options = resolveOptions(options);
    this.selector = new NodeSelector(this.options.nodes);
    this.transport = new HttpTransport(this.options.keepAlive);
    allowManyListeners(this.closing.signal);
  }

  /** The leader id named by the last answer (`X-DMQ-Leader`), undefined if it named none. */
  get leaderId(): number | undefined {
    return this.selector.leaderId;
  }

  /** `X-DMQ-Metadata-Version` of the last answer (pass as `minVersion` to read your writes). */
  get metadataVersion(): number | undefined {
    return this.last?.metadataVersion;
  }

  /** Node, status, leader and version of the last answer received. */
  get lastAnswer(): AnswerInfo | undefined {
    return this.last;
  }

  /** Whether {@link MetadataClient.close} was called. */
  get closed(): boolean {
    return this.closing.signal.aborted;
  }

  // ---- topics ----

  /** `POST /topics` → the new topic (`409 TOPIC_ALREADY_EXISTS`, `422 INVALID_REPLICATION_FACTOR`). */
  async createTopic(
    request: CreateTopicRequest,
    options: WriteOptions = {},
  ): Promise<TopicMetadata> {
    return this.write('POST', '/topics', request, topicMetadataSchema, options);
  }

  /** `GET /topics` */
  async listTopics(options: ReadOptions = {}): Promise<TopicMetadata[]> {
    return (await this.read('/topics', topicListSchema, options)).topics;
  }

  /** `GET /topics/{name}` (`404 TOPIC_NOT_FOUND`) */
  async getTopic(name: string, options: ReadOptions = {}): Promise<TopicMetadata> {
    return this.read(`/topics/${segment(name, 'name')}`, topicMetadataSchema, options);
  }

  /** `DELETE /topics/{name}` (`204`) */
  async deleteTopic(name: string, options: WriteOptions = {}): Promise<void> {
    await this.write('DELETE', `/topics/${segment(name, 'name')}`, undefined, null, options);
  }

  /** `PUT /topics/{name}/config`: replaces the topic's whole config. */
  async updateTopicConfig(
    name: string,
    config: TopicConfig,
    options: WriteOptions = {},
  ): Promise<TopicMetadata> {
    return this.write(
      'PUT',
      `/topics/${segment(name, 'name')}/config`,
      { config },
      topicMetadataSchema,
      options,
    );
  }

  /** `GET /topics/{name}/partitions` */
  async getPartitions(name: string, options: ReadOptions = {}): Promise<PartitionInfo[]> {
    const path = `/topics/${segment(name, 'name')}/partitions`;
    return (await this.read(path, partitionListSchema, options)).partitions;
  }

  /**
   * `POST /topics/{name}/partitions/{p}/state` (AlterPartition, sent by the partition leader)
   * → the new partition state (`409 STALE_LEADER_EPOCH` / `STALE_BROKER_EPOCH`).
   */
  async alterPartition(
    topic: string,
    partition: number,
    request: AlterPartitionRequest,
    options: WriteOptions = {},
  ): Promise<PartitionInfo> {
    const path = `/topics/${segment(topic, 'topic')}/partitions/${integerSegment(partition, 'partition', 0)}/state`;
    return this.write('POST', path, request, partitionInfoSchema, options);
  }

  // ---- brokers ----

  /** `POST /brokers` → the broker's new, larger epoch. */
  async registerBroker(
    request: RegisterBrokerRequest,
    options: WriteOptions = {},
  ): Promise<RegisterBrokerResponse> {
    return this.write('POST', '/brokers', request, registerBrokerResponseSchema, options);
  }

  /** `POST /brokers/{id}/heartbeat` → `ONLINE` or `FENCED` and the metadata version. */
  async heartbeat(
    brokerId: number,
    request: HeartbeatRequest,
    options: WriteOptions = {},
  ): Promise<HeartbeatResponse> {
    const path = `/brokers/${integerSegment(brokerId, 'brokerId', 1)}/heartbeat`;
    return this.write('POST', path, request, heartbeatResponseSchema, options);
  }

  /** `GET /brokers` */
  async listBrokers(options: ReadOptions = {}): Promise<BrokerInfo[]> {
    return (await this.read('/brokers', brokerListSchema, options)).brokers;
  }

  /**
   * `DELETE /brokers/{id}`: controlled shutdown. Leadership moves off the broker first,
   * then it is removed. Resolves once the server acknowledges (any 2xx).
   */
  async unregisterBroker(brokerId: number, options: WriteOptions = {}): Promise<void> {
    const path = `/brokers/${integerSegment(brokerId, 'brokerId', 1)}`;
    await this.write('DELETE', path, undefined, null, options);
  }

  // ---- metadata ----

  /**
   * `GET /metadata`: the full metadata image. With `sinceVersion` it is a long-poll that
   * answers once the version is greater (or after `waitMs` with the same version).
   */
  async getMetadata(options: GetMetadataOptions = {}): Promise<MetadataResponse> {
    const waitMs = options.waitMs;
    return this.run(
      {
        method: 'GET',
        path: '/metadata',
        query: {
          sinceVersion: optionalInteger(options.sinceVersion, 'sinceVersion', 0),
          waitMs: optionalInteger(waitMs, 'waitMs', 0),
        },
        schema: metadataResponseSchema,
        ...(waitMs === undefined
          ? {}
          : { attemptTimeoutMs: waitMs + this.attemptTimeout(options) }),
      },
      options,
      undefined,
    );
  }

  /**
   * Watches the metadata: an async iterator that long-polls
   * `GET /metadata?sinceVersion=n&waitMs=…` and yields every image whose version is greater
   * than the last one yielded (so versions strictly increase; changes that land between
   * two polls arrive together in one image).
   *
   * It survives node failures and leader changes (it moves to another node and backs off,
   * never giving up), never busy-loops (an early answer without news backs off), and ends
   * without an error when `signal` fires, the client closes, or the consumer breaks out of
   * `for await`. Errors that retrying cannot fix (`ProtocolError`, `401`…) are thrown.
   *
   * @example
   * for await (const metadata of client.watchMetadata({ signal })) apply(metadata);
   */
  async *watchMetadata(
    options: WatchMetadataOptions = {},
  ): AsyncGenerator<MetadataResponse, void, undefined> {
    const waitMs = optionalInteger(options.waitMs, 'waitMs', 0) ?? this.options.watchWaitMs;
    let version = optionalInteger(options.sinceVersion, 'sinceVersion', 0);
    const signal = options.signal;
    let failures = 0;
    let idlePolls = 0;
    while (!signal?.aborted && !this.closed) {
      const startedAt = Date.now();
      let metadata: MetadataResponse;
      try {
        metadata = await this.getMetadata({
          ...(signal === undefined ? {} : { signal }),
          ...(version === undefined ? {} : { sinceVersion: version, waitMs }),
          deadlineMs: this.options.deadlineMs + waitMs,
        });
        failures = 0;
      } catch (error) {
        if (error instanceof AbortError || error instanceof ClientClosedError) return;
        if (
          !(error instanceof NoLeaderError) &&
          !(error instanceof TransportError) &&
          !(error instanceof DeadlineExceededError) &&
          !(error instanceof MetadataApiError && RETRY_ALWAYS.has(error.code))
        ) {
          throw error;
        }
        failures += 1;
        if (!(await this.pause(this.backoff(failures), signal))) return;
        continue;
      }
      if (version === undefined || metadata.version > version) {
        version = metadata.version;
        idlePolls = 0;
        yield metadata;
        continue;
      }
      // No news. An answer that came well before waitMs (a server that ignores waitMs, a
      // node that cannot wait) must not turn this loop into a busy one.
      if (Date.now() - startedAt < waitMs / 2 || waitMs === 0) {
        idlePolls += 1;
        const delay = Math.max(this.backoff(idlePolls), this.options.initialBackoffMs, 1);
        if (!(await this.pause(delay, signal))) return;
      } else {
        idlePolls = 0;
      }
    }
  }

  // ---- cluster and operations ----

  /** `GET /cluster`: the answering node's view of the Raft cluster (pin it with `node`). */
  async clusterStatus(options: NodeCallOptions = {}): Promise<ClusterStatus> {
    return this.run(
      { method: 'GET', path: '/cluster', schema: clusterStatusSchema, ...this.pinned(options) },
      options,
      undefined,
    );
  }

  /** `POST /cluster/leadership-transfer`, to `targetId` or to the most up-to-date voter. */
  async transferLeadership(
    targetId?: number,
    options: WriteOptions = {},
  ): Promise<LeadershipTransferResponse> {
    const body =
      targetId === undefined ? {} : { targetId: integerSegment(targetId, 'targetId', 1) };
    return this.write(
      'POST',
      '/cluster/leadership-transfer',
      body,
      leadershipTransferResponseSchema,
      options,
    );
  }

  /**
   * `POST /cluster/snapshot`: the answering node takes a snapshot of its state now (a
   * node-local operation: pin the node with `node`).
   */
  async takeSnapshot(options: WriteOptions & NodeCallOptions = {}): Promise<SnapshotResponse> {
    return this.write(
      'POST',
      '/cluster/snapshot',
      undefined,
      snapshotResponseSchema,
      options,
      this.pinned(options),
    );
  }

  /** `POST /cluster/members`: adds one voter (`409 MEMBERSHIP_CHANGE_IN_PROGRESS`). */
  async addMember(request: AddMemberRequest, options: WriteOptions = {}): Promise<MembersResponse> {
    return this.write('POST', '/cluster/members', request, membersResponseSchema, options);
  }

  /** `DELETE /cluster/members/{id}`: removes one voter. */
  async removeMember(id: number, options: WriteOptions = {}): Promise<MembersResponse> {
    const path = `/cluster/members/${integerSegment(id, 'id', 1)}`;
    return this.write('DELETE', path, undefined, membersResponseSchema, options);
  }

  /** `POST /backup/resync`: re-enqueues a full backup of the current state. */
  async resyncBackup(options: WriteOptions = {}): Promise<BackupResyncResponse> {
    return this.write('POST', '/backup/resync', undefined, backupResyncResponseSchema, options);
  }

  /**
   * `GET /backup/dead-letters` (an extension, docs/api.md): the newest `limit` (default 100)
   * backup jobs that failed on every attempt, with the reason, and how many there are.
   */
  async backupDeadLetters(
    options: NodeCallOptions & { readonly limit?: number } = {},
  ): Promise<BackupDeadLettersResponse> {
    return this.run(
      {
        method: 'GET',
        path: '/backup/dead-letters',
        query: { limit: options.limit },
        schema: backupDeadLettersResponseSchema,
        ...this.pinned(options),
      },
      options,
      undefined,
    );
  }

  /** `GET /healthz` (beside `/api/v1`, not under it): whether the process is up. One attempt, no failover. */
  async healthz(options: NodeCallOptions = {}): Promise<HealthResponse> {
    return this.health('/healthz', options);
  }

  /**
   * `GET /readyz` (beside `/api/v1`): whether the node knows a leader and has caught up. A `503` answer resolves
   * to `{status: 'not-ready', reason}` instead of throwing. One attempt, no failover.
   */
  async readyz(options: NodeCallOptions = {}): Promise<HealthResponse> {
    return this.health('/readyz', options);
  }

  /**
   * Ends watches, aborts calls in flight (they reject with {@link ClientClosedError}) and
   * closes the keep-alive sockets. Idempotent.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closing.abort(new ClientClosedError());
    this.transport.close();
  }

  // ---- the request engine ----

  private async read<T>(path: string, schema: Schema<T>, options: ReadOptions): Promise<T> {
    return this.run({ method: 'GET', path, query: readQuery(options), schema }, options, undefined);
  }

  private async write<T>(
    method: Method,
    path: string,
    body: unknown,
    schema: Schema<T> | null,
    options: WriteOptions,
    pinned: { node?: ResolvedNode } = {},
  ): Promise<T> {
    let key = options.idempotencyKey;
    if (key !== undefined) {
      if (!idempotencyKeySchema.safeParse(key).success) {
        throw new InvalidArgumentError(
          'idempotencyKey must be 1..128 printable ASCII characters without spaces',
        );
      }
    } else if (this.options.autoIdempotencyKeys) {
      key = this.options.generateIdempotencyKey();
    }
    return this.run({ method, path, body, schema, ...pinned }, options, key);
  }

  private async health(path: string, options: NodeCallOptions): Promise<HealthResponse> {
    return this.run(
      {
        method: 'GET',
        path,
        schema: healthResponseSchema,
        atRoot: true,
        maxAttempts: 1,
        acceptError: (status, json) => {
          if (status !== 503) return undefined;
          const health = healthResponseSchema.safeParse(json);
          if (health.success) return health.data;
          const error = errorBodySchema.safeParse(json);
          return error.success
            ? { status: 'not-ready', reason: error.data.error.message }
            : undefined;
        },
        ...this.pinned(options),
      },
      options,
      undefined,
    );
  }

  private pinned(options: NodeCallOptions): { node?: ResolvedNode } {
    if (options.node === undefined) return {};
    const node = this.selector.find(options.node);
    if (node === undefined) {
      throw new InvalidArgumentError(
        `node ${String(options.node)} is not one of the configured nodes`,
      );
    }
    return { node };
  }

  private attemptTimeout(options: CallOptions): number {
    return (
      optionalInteger(options.requestTimeoutMs, 'requestTimeoutMs', 1) ??
      this.options.requestTimeoutMs
    );
  }

  /**
   * Runs one call: picks a node, sends, learns leader and version, retries what is safe to
   * retry, and turns the outcome into a value or a typed error. The same `key` goes with
   * every attempt.
   */
  private async run<T>(
    exchange: Exchange<T>,
    options: CallOptions,
    key: string | undefined,
  ): Promise<T> {
    const deadlineMs =
      optionalInteger(options.deadlineMs, 'deadlineMs', 1) ?? this.options.deadlineMs;
    const attemptTimeoutMs = exchange.attemptTimeoutMs ?? this.attemptTimeout(options);
    const maxAttempts = exchange.maxAttempts ?? this.options.maxAttempts;
    const facts = (attempts: number) => ({
      attempts,
      ...(key === undefined ? {} : { idempotencyKey: key }),
    });
    if (this.closed) throw new ClientClosedError(facts(0));
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(), deadlineMs);
    const linked = linkSignals([this.closing.signal, deadline.signal, options.signal]);
    const signal = linked.signal;
    const deadlineAt = Date.now() + deadlineMs;
    const safeToRepeat = exchange.method === 'GET' || key !== undefined;
    let last: Failure | undefined;
    let attempts = 0;
    const stopped = (): Error => {
      if (this.closed) return new ClientClosedError({ ...facts(attempts), cause: last });
      if (options.signal?.aborted) {
        return new AbortError('the call was aborted', {
          ...facts(attempts),
          cause: options.signal.reason,
        });
      }
      return new DeadlineExceededError(
        `${exchange.method} ${exchange.path}: no answer within the ${deadlineMs} ms deadline` +
          (last === undefined ? '' : ` (last failure: ${last.message})`),
        { ...facts(attempts), cause: last },
      );
    };
    try {
      while (attempts < maxAttempts) {
        if (signal.aborted) throw stopped();
        const node = exchange.node ?? this.selector.pick();
        attempts += 1;
        let answer: HttpAnswer;
        try {
          answer = await this.transport.send({
            method: exchange.method,
            url: this.url(node, exchange),
            headers: this.headers(exchange, key),
            ...(exchange.body === undefined ? {} : { body: JSON.stringify(exchange.body) }),
            timeoutMs: Math.max(1, Math.min(attemptTimeoutMs, deadlineAt - Date.now())),
            signal,
            maxResponseBytes: this.options.maxResponseBytes,
          });
        } catch (error) {
          if (!(error instanceof SocketFailure)) throw signal.aborted ? stopped() : error;
          if (error.code === 'ERESPONSETOOLARGE') {
            throw new ProtocolError(error.message, {
              ...facts(attempts),
              status: 0,
              node: node.apiBase.href,
            });
          }
          last = error;
          this.selector.markUnreachable(node);
          if (!safeToRepeat && error.delivered) {
            throw new TransportError(
              `${exchange.method} ${exchange.path}: ${error.message}; the request may have been ` +
                'applied and carries no Idempotency-Key, so it was not retried',
              { ...facts(attempts), cause: error, causeCode: error.code },
            );
          }
          if (attempts < maxAttempts)
            await this.retryPause(attempts, undefined, deadlineAt, signal, stopped);
          continue;
        }
        const outcome = this.interpret(exchange, answer, node, facts(attempts));
        if (outcome.ok) return outcome.value;
        const apiError = outcome.error;
        last = apiError;
        const retryable =
          RETRY_ALWAYS.has(apiError.code) ||
          (apiError.code === ErrorCode.COMMIT_TIMEOUT && safeToRepeat);
        if (!retryable) throw apiError;
        // 503: this node cannot serve now; go to the leader it named, or to the next node.
        if (RETRY_ALWAYS.has(apiError.code)) this.selector.markFailed(node);
        if (attempts < maxAttempts) {
          await this.retryPause(attempts, apiError.retryAfterMs, deadlineAt, signal, stopped);
        }
      }
    } finally {
      clearTimeout(timer);
      linked.dispose();
    }
    throw this.exhausted(exchange, last, facts(attempts));
  }

  /** Waits before retry `attempt`+1: jittered backoff, at least `Retry-After`. */
  private async retryPause(
    attempt: number,
    retryAfterMs: number | undefined,
    deadlineAt: number,
    signal: AbortSignal,
    stopped: () => Error,
  ): Promise<void> {
    const delay = Math.max(this.backoff(attempt), retryAfterMs ?? 0);
    // Waiting past the deadline cannot help: fail now with the last cause.
    if (Date.now() + delay >= deadlineAt) throw stopped();
    try {
      await this.options.sleep(delay, signal);
    } catch {
      throw stopped();
    }
    if (signal.aborted) throw stopped();
  }

  private exhausted(exchange: Exchange<unknown>, last: Failure | undefined, facts: object): Error {
    const what = `${exchange.method} ${exchange.path}`;
    if (last instanceof MetadataApiError) {
      if (!RETRY_ALWAYS.has(last.code)) return last; // COMMIT_TIMEOUT: outcome unknown.
      return new NoLeaderError(
        `${what}: the cluster answered ${last.code} to every attempt (${last.message})`,
        { ...facts, cause: last },
      );
    }
    return new TransportError(`${what}: every attempt failed; last: ${last?.message ?? 'none'}`, {
      ...facts,
      cause: last,
      ...(last === undefined ? {} : { causeCode: last.code }),
    });
  }

  private backoff(retry: number): number {
    const { initialBackoffMs, maxBackoffMs, random } = this.options;
    return fullJitterBackoff(retry, initialBackoffMs, maxBackoffMs, random);
  }

  /** Sleeps unless aborted; false when the watch should end. */
  private async pause(ms: number, signal: AbortSignal | undefined): Promise<boolean> {
    const linked = linkSignals([this.closing.signal, signal]);
    try {
      await this.options.sleep(ms, linked.signal);
    } catch {
      return false;
    } finally {
      linked.dispose();
    }
    return !signal?.aborted && !this.closed;
  }

  private url(node: ResolvedNode, exchange: Exchange<unknown>): URL {
    const base =
      exchange.atRoot === true ? node.rootBase.href.replace(/\/$/, '') : node.apiBase.href;
    const url = new URL(`${base}${exchange.path}`);
    for (const [name, value] of Object.entries(exchange.query ?? {})) {
      if (value !== undefined) url.searchParams.set(name, String(value));
    }
    return url;
  }

  private headers(exchange: Exchange<unknown>, key: string | undefined): Record<string, string> {
    const headers: Record<string, string> = {
      accept: 'application/json',
      'user-agent': USER_AGENT,
    };
    if (exchange.body !== undefined) headers['content-type'] = 'application/json';
    if (key !== undefined) headers[Headers.idempotencyKey] = key;
    if (this.options.token !== undefined) {
      headers[Headers.authorization] = `Bearer ${this.options.token}`;
    }
    return headers;
  }

  /** Learns from the answer's headers and reads its body: the value, an API error, or a throw. */
  private interpret<T>(
    exchange: Exchange<T>,
    answer: HttpAnswer,
    node: ResolvedNode,
    facts: { attempts: number; idempotencyKey?: string },
  ): { ok: true; value: T } | { ok: false; error: MetadataApiError } {
    const leaderId = headerInteger(answer.headers[Headers.leader], 1);
    const metadataVersion = headerInteger(answer.headers[Headers.metadataVersion], 0);
    this.selector.learnLeader(leaderId, node, answer.status === 503);
    this.last = { node: node.apiBase.href, status: answer.status, leaderId, metadataVersion };
    const where = { ...facts, status: answer.status, node: node.apiBase.href };
    const success = answer.status >= 200 && answer.status < 300;
    if (success && exchange.schema === null) return { ok: true, value: undefined as T };
    const json = parseJson(answer.body);
    if (success) {
      if (json === NOT_JSON) {
        throw new ProtocolError(
          `${exchange.method} ${exchange.path}: answer ${answer.status} is not JSON: ${excerpt(answer.body)}`,
          where,
        );
      }
      const parsed = (exchange.schema as Schema<T>).safeParse(json);
      if (!parsed.success) {
        const issues = toFieldIssues(parsed.error.issues);
        throw new ProtocolError(
          `${exchange.method} ${exchange.path}: answer does not match the contract: ` +
            issues.map((i) => `${i.path || '(root)'}: ${i.message}`).join('; '),
          { ...where, issues },
        );
      }
      return { ok: true, value: parsed.data };
    }
    const accepted = exchange.acceptError?.(answer.status, json);
    if (accepted !== undefined) return { ok: true, value: accepted };
    const body = errorBodySchema.safeParse(json);
    if (!body.success) {
      throw new ProtocolError(
        `${exchange.method} ${exchange.path}: HTTP ${answer.status} without a contract error body: ${excerpt(answer.body)}`,
        { ...where, issues: json === NOT_JSON ? [] : toFieldIssues(body.error.issues) },
      );
    }
    const retryAfterMs = parseRetryAfter(
      headerText(answer.headers[Headers.retryAfter]),
      Date.now(),
    );
    return {
      ok: false,
      error: new MetadataApiError(body.data.error.code, body.data.error.message, {
        ...where,
        ...(body.data.error.issues === undefined ? {} : { issues: body.data.error.issues }),
        ...(leaderId === undefined ? {} : { leaderId }),
        ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
      }),
    };
  }
}

const NOT_JSON = Symbol('not-json');

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return NOT_JSON;
  }
}

function excerpt(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > 200 ? `${flat.slice(0, 200)}…` : flat || '(empty)';
}

function toFieldIssues(
  issues: readonly { path: readonly PropertyKey[]; message: string }[],
): FieldIssue[] {
  return issues.map((issue) => ({
    path: issue.path.map(String).join('.'),
    message: issue.message,
  }));
}

function headerText(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function headerInteger(value: string | string[] | undefined, min: number): number | undefined {
  const text = headerText(value)?.trim();
  if (text === undefined || !/^\d{1,16}$/.test(text)) return undefined;
  const n = Number(text);
  return Number.isSafeInteger(n) && n >= min ? n : undefined;
}

function readQuery(options: ReadOptions): Query {
  const { consistency } = options;
  if (consistency !== undefined && consistency !== 'stale' && consistency !== 'linearizable') {
    throw new InvalidArgumentError(
      `consistency must be 'stale' or 'linearizable', got ${String(consistency)}`,
    );
  }
  return { consistency, minVersion: optionalInteger(options.minVersion, 'minVersion', 0) };
}

function optionalInteger(value: number | undefined, name: string, min: number): number | undefined {
  if (value === undefined) return undefined;
  return integerSegment(value, name, min);
}

function integerSegment(value: number, name: string, min: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw new InvalidArgumentError(`${name} must be an integer >= ${min}, got ${String(value)}`);
  }
  return value;
}

function segment(value: string, name: string): string {
  if (typeof value !== 'string' || value.length === 0) {
    throw new InvalidArgumentError(`${name} must be a non-empty string`);
  }
  return encodeURIComponent(value);
}
