import path from 'node:path';
import { z } from 'zod';
import { parsePeers, PeerListError, type PeerSpec } from '@dmq/api-contracts';

/**
 * The service's whole configuration, read once from the environment at start-up. This is the
 * only place that reads `process.env` (libraries take typed options).
 *
 * Each variable is documented here and in the README's configuration table; defaults follow
 * the contract and Kafka's conventions. A bad value fails start-up with one message naming
 * every offending variable.
 */
export interface ServiceConfig {
  readonly nodeId: number;
  /** Every voting member as given in `DMQ_PEERS` (this node included), sorted by id. */
  readonly peers: readonly PeerSpec[];
  /** Interface the HTTP server binds to. */
  readonly httpHost: string;
  readonly httpPort: number;
  readonly dataDir: string;
  /**
   * `DMQ_JOIN=true`: this node joins a running cluster. A brand-new data directory starts
   * with an empty Raft configuration (not `DMQ_PEERS` as voters), so the node never
   * campaigns on its own and learns the membership from the leader once an operator calls
   * `POST /cluster/members` with its id and address. Ignored when the data directory
   * already holds a Raft log.
   */
  readonly join: boolean;
  readonly clusterId: string;
  readonly clusterSecret: string | undefined;
  readonly apiToken: string | undefined;
  readonly databaseUrl: string;
  readonly redisUrl: string;
  readonly backup: boolean;
  readonly backupConcurrency: number;
  /**
   * `DMQ_BACKUP_QUEUE`: the BullMQ queue (in `REDIS_URL`) that carries the backup jobs. Every
   * node of a cluster uses the same one; clusters sharing a Redis need different ones.
   */
  readonly backupQueue: string;
  /**
   * `DMQ_RESTORE_FROM_BACKUP=on`: disaster recovery opt-in. A node that starts with a
   * brand-new data directory and becomes leader of a cluster in which no node has a log
   * rebuilds the state from the PostgreSQL backup as committed `RestoreFromBackup` commands
   * (see the README). Refused, with the reason logged, whenever a node has a log.
   */
  readonly restoreFromBackup: boolean;
  /**
   * `DMQ_RESTORE_PARTITIONS_PER_PART`: most partitions in one `RestoreFromBackup` command
   * (whole topics per command). Small commands keep every node's event loop free enough to
   * hold leadership while they apply.
   */
  readonly restorePartitionsPerPart: number;
  readonly logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  readonly raft: {
    /** Leader heartbeat period. */
    readonly heartbeatIntervalMs: number;
    /** Base election timeout; each node draws its timeout from [base, 2·base). */
    readonly electionTimeoutMs: number;
    /** Take a snapshot after this many applied entries since the last one. */
    readonly snapshotEveryEntries: number;
    /** How long a write waits for commit + apply before answering 504 COMMIT_TIMEOUT. */
    readonly commitTimeoutMs: number;
  };
  readonly brokers: {
    /** A broker that sends no heartbeat for this long is fenced (Kafka: broker.session.timeout.ms). */
    readonly sessionTimeoutMs: number;
    /** The heartbeat period brokers are told to use (Kafka: broker.heartbeat.interval.ms). */
    readonly heartbeatIntervalMs: number;
  };
}

const integer = (min: number, max: number) =>
  z
    .string()
    .trim()
    .regex(/^\d+$/, { error: 'must be a whole number' })
    .transform(Number)
    .pipe(z.int().min(min).max(max));

const nonEmpty = z.string().trim().min(1);

const envSchema = z.object({
  DMQ_NODE_ID: integer(1, 2_147_483_647),
  DMQ_PEERS: nonEmpty,
  DMQ_HTTP_PORT: integer(1, 65_535).optional(),
  DMQ_HTTP_HOST: nonEmpty.default('0.0.0.0'),
  DMQ_DATA_DIR: nonEmpty.optional(),
  DMQ_JOIN: z.enum(['true', 'false']).default('false'),
  DMQ_CLUSTER_ID: z
    .string()
    .regex(/^[A-Za-z0-9._-]{1,64}$/, { error: 'must be 1..64 of [A-Za-z0-9._-]' })
    .default('dmq-local'),
  DMQ_CLUSTER_SECRET: nonEmpty.optional(),
  DMQ_API_TOKEN: nonEmpty.optional(),
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, { error: 'must be a postgresql:// URL' })
    .default('postgresql://dmq_user:dmq_password@localhost:5432/dmq_metadata'),
  REDIS_URL: z
    .string()
    .regex(/^rediss?:\/\//, { error: 'must be a redis:// URL' })
    .default('redis://127.0.0.1:6379'),
  DMQ_BACKUP: z.enum(['on', 'off']).default('on'),
  DMQ_BACKUP_CONCURRENCY: integer(1, 64).default(16),
  // BullMQ queue names may not contain ':' (its key separator).
  DMQ_BACKUP_QUEUE: z
    .string()
    .regex(/^[A-Za-z0-9._-]{1,128}$/, { error: 'must be 1..128 of [A-Za-z0-9._-]' })
    .default('dmq-backup'),
  DMQ_RESTORE_FROM_BACKUP: z.enum(['on', 'off']).default('off'),
  DMQ_RESTORE_PARTITIONS_PER_PART: integer(1, 1_000_000).default(10_000),
  DMQ_LOG_LEVEL: z
    .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
    .default('info'),
  DMQ_RAFT_HEARTBEAT_MS: integer(5, 10_000).default(50),
  DMQ_RAFT_ELECTION_TIMEOUT_MS: integer(20, 60_000).default(250),
  DMQ_SNAPSHOT_EVERY_ENTRIES: integer(10, 100_000_000).default(10_000),
  DMQ_COMMIT_TIMEOUT_MS: integer(100, 600_000).default(5_000),
  DMQ_BROKER_SESSION_TIMEOUT_MS: integer(100, 3_600_000).default(9_000),
  DMQ_BROKER_HEARTBEAT_INTERVAL_MS: integer(10, 600_000).default(2_000),
});

/** Start-up refused because of the environment; the message lists every problem. */
export class ConfigError extends Error {
  readonly code = 'config/invalid';
  constructor(readonly problems: readonly string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

/** Reads and validates the configuration from `env` (normally `process.env`). */
export function loadConfig(
  env: Readonly<Record<string, string | undefined>>,
  cwd = process.cwd(),
): ServiceConfig {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map(
        (issue) => `${issue.path.join('.') || 'environment'}: ${issue.message}`,
      ),
    );
  }
  const e = parsed.data;
  const problems: string[] = [];
  let peers: PeerSpec[] = [];
  try {
    peers = parsePeers(e.DMQ_PEERS);
  } catch (err) {
    if (!(err instanceof PeerListError)) throw err;
    problems.push(`DMQ_PEERS: ${err.message}`);
  }
  const self = peers.find((p) => p.id === e.DMQ_NODE_ID);
  if (peers.length > 0 && self === undefined) {
    problems.push(
      `DMQ_NODE_ID: node ${e.DMQ_NODE_ID} is not one of the DMQ_PEERS ids (${peers.map((p) => p.id).join(', ')})`,
    );
  }
  if (e.DMQ_RAFT_ELECTION_TIMEOUT_MS < 3 * e.DMQ_RAFT_HEARTBEAT_MS) {
    problems.push(
      `DMQ_RAFT_ELECTION_TIMEOUT_MS (${e.DMQ_RAFT_ELECTION_TIMEOUT_MS}) must be at least 3 × DMQ_RAFT_HEARTBEAT_MS (${e.DMQ_RAFT_HEARTBEAT_MS})`,
    );
  }
  if (e.DMQ_BROKER_SESSION_TIMEOUT_MS <= e.DMQ_BROKER_HEARTBEAT_INTERVAL_MS) {
    problems.push(
      'DMQ_BROKER_SESSION_TIMEOUT_MS must be larger than DMQ_BROKER_HEARTBEAT_INTERVAL_MS',
    );
  }
  if (e.DMQ_RESTORE_FROM_BACKUP === 'on' && e.DMQ_BACKUP === 'off') {
    problems.push('DMQ_RESTORE_FROM_BACKUP=on needs DMQ_BACKUP=on (it reads the backup database)');
  }
  if (problems.length > 0 || self === undefined) throw new ConfigError(problems);
  return {
    nodeId: e.DMQ_NODE_ID,
    peers,
    httpHost: e.DMQ_HTTP_HOST,
    httpPort: e.DMQ_HTTP_PORT ?? self.port,
    dataDir: path.resolve(cwd, e.DMQ_DATA_DIR ?? `data/node-${e.DMQ_NODE_ID}`),
    join: e.DMQ_JOIN === 'true',
    clusterId: e.DMQ_CLUSTER_ID,
    clusterSecret: e.DMQ_CLUSTER_SECRET,
    apiToken: e.DMQ_API_TOKEN,
    databaseUrl: e.DATABASE_URL,
    redisUrl: e.REDIS_URL,
    backup: e.DMQ_BACKUP === 'on',
    backupConcurrency: e.DMQ_BACKUP_CONCURRENCY,
    backupQueue: e.DMQ_BACKUP_QUEUE,
    restoreFromBackup: e.DMQ_RESTORE_FROM_BACKUP === 'on',
    restorePartitionsPerPart: e.DMQ_RESTORE_PARTITIONS_PER_PART,
    logLevel: e.DMQ_LOG_LEVEL,
    raft: {
      heartbeatIntervalMs: e.DMQ_RAFT_HEARTBEAT_MS,
      electionTimeoutMs: e.DMQ_RAFT_ELECTION_TIMEOUT_MS,
      snapshotEveryEntries: e.DMQ_SNAPSHOT_EVERY_ENTRIES,
      commitTimeoutMs: e.DMQ_COMMIT_TIMEOUT_MS,
    },
    brokers: {
      sessionTimeoutMs: e.DMQ_BROKER_SESSION_TIMEOUT_MS,
      heartbeatIntervalMs: e.DMQ_BROKER_HEARTBEAT_INTERVAL_MS,
    },
  };
}

/** Start-up warnings about a configuration that works but is unsafe outside development. */
export function configWarnings(config: ServiceConfig): string[] {
  const warnings: string[] = [];
  if (config.clusterSecret === undefined) {
    warnings.push(
      'DMQ_CLUSTER_SECRET is unset: Raft RPCs are not authenticated (development only)',
    );
  }
  if (config.apiToken === undefined) {
    warnings.push('DMQ_API_TOKEN is unset: mutating API calls are not authenticated');
  }
  if (config.peers.length % 2 === 0) {
    warnings.push(
      `${config.peers.length} voters tolerate no more failures than ${config.peers.length - 1}: use an odd number`,
    );
  }
  return warnings;
}
