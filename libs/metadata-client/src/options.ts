import { randomUUID } from 'node:crypto';
import { API_BASE_PATH, nodeIdSchema, parsePeers, peerAddressSchema } from '@dmq/api-contracts';
import { sleep as defaultSleep } from './backoff';
import { InvalidArgumentError } from './errors';

/** A metadata node with a known id, e.g. one entry of `DMQ_PEERS` (`PeerSpec` fits). */
export interface NodeAddress {
  /** The node's id (`DMQ_NODE_ID`): lets the client map `X-DMQ-Leader` to an address. */
  readonly id: number;
  /** `host:port` or a base URL `http(s)://host:port[/prefix]`. */
  readonly address: string;
}

/**
 * Options of {@link MetadataClient}. Only `nodes` is required; every other field has the
 * default shown in {@link DEFAULT_CLIENT_OPTIONS}.
 */
export interface MetadataClientOptions {
  /**
   * The metadata nodes to talk to, as any of:
   * - a `DMQ_PEERS` string `1=10.0.0.1:9091,2=10.0.0.2:9091` (ids known: the client goes
   *   straight to the leader named in `X-DMQ-Leader`);
   * - a comma-separated string or an array of `host:port` / `http(s)://host:port[/prefix]`
   *   (ids unknown: the client rotates through the addresses on failures);
   * - an array of {@link NodeAddress} (e.g. `parsePeers(...)`), mixed with strings if need be.
   */
  readonly nodes: string | readonly (string | NodeAddress)[];
  /** Bearer token sent as `Authorization` (the servers' `DMQ_API_TOKEN`). */
  readonly token?: string;
  /** Timeout of one HTTP attempt, ms (connect + answer). */
  readonly requestTimeoutMs?: number;
  /** Overall deadline of one call including its retries and backoff, ms. */
  readonly deadlineMs?: number;
  /** Most HTTP attempts per call (1 = never retry). */
  readonly maxAttempts?: number;
  /** Ceiling of the first retry's jittered backoff, ms (doubles per retry). */
  readonly initialBackoffMs?: number;
  /** Largest backoff ceiling, ms (a longer `Retry-After` still wins). */
  readonly maxBackoffMs?: number;
  /**
   * Give every mutating call without an explicit `idempotencyKey` a fresh
   * `crypto.randomUUID()` key, so that its retries (after a reset connection, a timeout or
   * `504 COMMIT_TIMEOUT`) can never apply the write twice. With `false`, such calls carry no
   * key and are retried only when the server certainly did nothing (`503`, connection refused).
   */
  readonly autoIdempotencyKeys?: boolean;
  /** `waitMs` of each `watchMetadata` long-poll (the server caps it at 60 s). */
  readonly watchWaitMs?: number;
  /** Largest answer body accepted, bytes. */
  readonly maxResponseBytes?: number;
  /** Keep idle sockets open for reuse (an `http.Agent` with `keepAlive`). */
  readonly keepAlive?: boolean;
  /** Source of randomness for the backoff jitter, in `[0, 1)` (tests inject a fixed one). */
  readonly random?: () => number;
  /** Waits `ms` or rejects with the signal's reason once it aborts (tests inject a recorder). */
  readonly sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  /** Generates idempotency keys (defaults to `crypto.randomUUID`). */
  readonly generateIdempotencyKey?: () => string;
}

/** The defaults spread under the given options. */
export const DEFAULT_CLIENT_OPTIONS = {
  requestTimeoutMs: 10_000,
  deadlineMs: 30_000,
  maxAttempts: 8,
  initialBackoffMs: 100,
  maxBackoffMs: 2_000,
  autoIdempotencyKeys: true,
  watchWaitMs: 30_000,
  maxResponseBytes: 64 * 1024 * 1024,
  keepAlive: true,
  random: Math.random,
  sleep: defaultSleep,
  generateIdempotencyKey: randomUUID,
} as const satisfies Omit<Required<MetadataClientOptions>, 'nodes' | 'token'>;

/** A configured node: where to send requests and, when known, its id. */
export interface ResolvedNode {
  readonly id: number | undefined;
  /** Origin plus optional prefix plus `/api/v1`, without a trailing slash. */
  readonly apiBase: URL;
  /** Origin plus optional prefix, without a trailing slash (`/healthz`, `/readyz` live here). */
  readonly rootBase: URL;
  /** What the user gave, for messages. */
  readonly label: string;
}

export type ResolvedOptions = Omit<Required<MetadataClientOptions>, 'nodes' | 'token' | 'sleep'> & {
  readonly nodes: readonly ResolvedNode[];
  readonly token: string | undefined;
  readonly sleep: (ms: number, signal: AbortSignal) => Promise<void>;
};

/** Applies the defaults and validates; throws {@link InvalidArgumentError} naming the option. */
export function resolveOptions(options: MetadataClientOptions): ResolvedOptions {
  if (typeof options !== 'object' || options === null) {
    throw new InvalidArgumentError('MetadataClient options must be an object with `nodes`');
  }
  const merged = { ...DEFAULT_CLIENT_OPTIONS, ...withoutUndefined(options) };
  const positiveInt = (name: keyof typeof DEFAULT_CLIENT_OPTIONS, value: unknown, min = 1) => {
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
      throw new InvalidArgumentError(
        `option ${name} must be an integer >= ${min}, got ${String(value)}`,
      );
    }
  };
  positiveInt('requestTimeoutMs', merged.requestTimeoutMs);
  positiveInt('deadlineMs', merged.deadlineMs);
  positiveInt('maxAttempts', merged.maxAttempts);
  positiveInt('initialBackoffMs', merged.initialBackoffMs, 0);
  positiveInt('maxBackoffMs', merged.maxBackoffMs, 0);
  positiveInt('watchWaitMs', merged.watchWaitMs, 0);
  positiveInt('maxResponseBytes', merged.maxResponseBytes);
  if (merged.maxBackoffMs < merged.initialBackoffMs) {
    throw new InvalidArgumentError(
      `option maxBackoffMs (${merged.maxBackoffMs}) must be >= initialBackoffMs (${merged.initialBackoffMs})`,
    );
  }
  for (const name of ['random', 'sleep', 'generateIdempotencyKey'] as const) {
    if (typeof merged[name] !== 'function') {
      throw new InvalidArgumentError(`option ${name} must be a function`);
    }
  }
  for (const name of ['autoIdempotencyKeys', 'keepAlive'] as const) {
    if (typeof merged[name] !== 'boolean') {
      throw new InvalidArgumentError(`option ${name} must be a boolean`);
    }
  }
  const token = options.token;
  if (token !== undefined && (typeof token !== 'string' || !/^[\x21-\x7e]+$/.test(token))) {
    throw new InvalidArgumentError(
      'option token must be a non-empty string of printable ASCII without spaces',
    );
  }
  return { ...merged, nodes: resolveNodes(options.nodes), token };
}

function withoutUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** Turns the `nodes` option into resolved nodes; throws naming the bad entry. */
export function resolveNodes(nodes: MetadataClientOptions['nodes']): ResolvedNode[] {
  let entries: (string | NodeAddress)[];
  if (typeof nodes === 'string') {
    if (nodes.includes('=')) {
      try {
        entries = parsePeers(nodes);
      } catch (error) {
        throw new InvalidArgumentError(`option nodes: ${(error as Error).message}`);
      }
    } else {
      entries = nodes
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s.length > 0);
    }
  } else if (Array.isArray(nodes)) {
    entries = [...(nodes as readonly (string | NodeAddress)[])];
  } else {
    throw new InvalidArgumentError('option nodes is required: a DMQ_PEERS string or an array');
  }
  if (entries.length === 0) {
    throw new InvalidArgumentError('option nodes must name at least one metadata node');
  }
  const resolved = entries.map(resolveNode);
  const ids = new Set<number>();
  const bases = new Set<string>();
  for (const node of resolved) {
    if (node.id !== undefined) {
      if (ids.has(node.id)) {
        throw new InvalidArgumentError(`option nodes: node id ${node.id} appears twice`);
      }
      ids.add(node.id);
    }
    if (bases.has(node.apiBase.href)) {
      throw new InvalidArgumentError(`option nodes: address "${node.label}" appears twice`);
    }
    bases.add(node.apiBase.href);
  }
  return resolved;
}

function resolveNode(entry: string | NodeAddress): ResolvedNode {
  if (typeof entry === 'string') return { id: undefined, ...resolveAddress(entry) };
  if (typeof entry !== 'object' || entry === null) {
    throw new InvalidArgumentError(`option nodes: ${String(entry)} is not an address`);
  }
  if (!nodeIdSchema.safeParse(entry.id).success) {
    throw new InvalidArgumentError(
      `option nodes: id of "${String(entry.address)}" must be a positive integer, got ${String(entry.id)}`,
    );
  }
  return { id: entry.id, ...resolveAddress(entry.address) };
}

function resolveAddress(address: unknown): { apiBase: URL; rootBase: URL; label: string } {
  if (typeof address !== 'string' || address.trim() === '') {
    throw new InvalidArgumentError(`option nodes: ${String(address)} is not an address`);
  }
  const label = address.trim();
  let url: URL;
  if (/^https?:\/\//i.test(label)) {
    try {
      url = new URL(label);
    } catch {
      throw new InvalidArgumentError(`option nodes: "${label}" is not a valid URL`);
    }
    if (url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') {
      throw new InvalidArgumentError(
        `option nodes: "${label}" must be a base URL without query, fragment or credentials`,
      );
    }
  } else {
    if (!peerAddressSchema.safeParse(label).success) {
      throw new InvalidArgumentError(
        `option nodes: "${label}" must be host:port (port 1..65535) or an http(s):// URL`,
      );
    }
    url = new URL(`http://${label}`);
  }
  let prefix = url.pathname.replace(/\/+$/, '');
  if (prefix.endsWith(API_BASE_PATH)) prefix = prefix.slice(0, -API_BASE_PATH.length);
  return {
    apiBase: new URL(`${url.origin}${prefix}${API_BASE_PATH}`),
    rootBase: new URL(`${url.origin}${prefix}`),
    label,
  };
}
