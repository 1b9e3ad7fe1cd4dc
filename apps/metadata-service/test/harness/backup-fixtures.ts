/**
 * What the backup tests share: a throwaway PostgreSQL database per test file, a redis-server
 * of their own on a free loopback port (so it can be killed and restarted without touching
 * the shared one), and the backup tables read back in the shape the HTTP API shows.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import type { BrokerInfo, TopicMetadata } from '@dmq/api-contracts';
import { freePorts, pollUntil } from './local-cluster';

/** The PostgreSQL role the tests use (needs CREATEDB). */
export const ADMIN_DATABASE_URL =
  process.env['DMQ_TEST_DATABASE_URL'] ??
  'postgresql://dmq_user:dmq_password@127.0.0.1:5432/dmq_metadata';

export interface TestDatabase {
  readonly name: string;
  readonly url: string;
  query<Row extends Record<string, unknown>>(sql: string, params?: unknown[]): Promise<Row[]>;
  /** Turns connections to this database away (terminating the open ones), or lets them in. */
  allowConnections(allow: boolean): Promise<void>;
  drop(): Promise<void>;
}

async function withClient<T>(url: string, run: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    return await run(client);
  } finally {
    await client.end();
  }
}

/** Creates `dmq_test_<label>_<random>`; every test file gets its own. */
export async function createTestDatabase(label: string): Promise<TestDatabase> {
  const name = `dmq_test_${label}_${randomBytes(5).toString('hex')}`;
  await withClient(ADMIN_DATABASE_URL, (c) => c.query(`CREATE DATABASE "${name}"`));
  const url = new URL(ADMIN_DATABASE_URL);
  url.pathname = `/${name}`;
  return {
    name,
    url: url.toString(),
    query: (sql, params = []) =>
      withClient(url.toString(), async (c) => (await c.query(sql, params)).rows),
    allowConnections: (allow) =>
      withClient(ADMIN_DATABASE_URL, async (c) => {
        await c.query(`ALTER DATABASE "${name}" WITH ALLOW_CONNECTIONS ${allow}`);
        if (!allow) {
          await c.query(
            'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1',
            [name],
          );
        }
      }),
    drop: () =>
      withClient(ADMIN_DATABASE_URL, async (c) => {
        await c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      }),
  };
}

/** A unique BullMQ queue name for one test file's cluster. */
export function uniqueQueueName(label: string): string {
  return `dmq-test-${label}-${randomBytes(5).toString('hex')}`;
}

/** A redis-server without persistence on a free loopback port, killed and restarted at will. */
export class OwnRedis {
  private child: ChildProcess | undefined;
  private constructor(readonly port: number) {}

  static async start(): Promise<OwnRedis> {
    const [port] = await freePorts(1);
    if (port === undefined) throw new Error('no free port');
    const redis = new OwnRedis(port);
    await redis.restart();
    return redis;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Starts the server (again, empty); resolves once it accepts connections. */
  async restart(): Promise<void> {
    const child = spawn(
      'redis-server',
      [
        '--port',
        String(this.port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--daemonize',
        'no',
      ],
      { stdio: ['ignore', 'pipe', 'ignore'] },
    );
    this.child = child;
    await new Promise<void>((resolve, reject) => {
      let seen = '';
      child.stdout?.on('data', (chunk: Buffer) => {
        seen += chunk.toString();
        if (seen.includes('Ready to accept connections')) resolve();
      });
      child.once('exit', (code) => reject(new Error(`redis-server exited with ${code}: ${seen}`)));
    });
  }

  /** Freezes the server (SIGSTOP): connections stay open, nothing answers. */
  freeze(): void {
    this.child?.kill('SIGSTOP');
  }

  /** Lets a frozen server go on (SIGCONT). */
  thaw(): void {
    this.child?.kill('SIGCONT');
  }

  async kill(): Promise<void> {
    const child = this.child;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }
}

/** The backup tables, in the shape `GET /topics` and `GET /brokers` show them. */
export interface BackupView {
  readonly backedUpIndex: number | null;
  readonly brokers: Array<
    Pick<BrokerInfo, 'brokerId' | 'host' | 'port' | 'brokerEpoch' | 'status'>
  >;
  readonly topics: TopicView[];
}

export interface TopicView {
  readonly name: string;
  readonly topicId: string;
  readonly replicationFactor: number;
  readonly config: Record<string, string>;
  readonly partitions: Array<{
    partition: number;
    leader: number;
    replicas: number[];
    isr: number[];
    leaderEpoch: number;
    partitionEpoch: number;
  }>;
}

/** Reads the backup tables. */
export async function readBackup(db: TestDatabase): Promise<BackupView> {
  const [state] = await db.query<{ backed_up_index: string }>(
    'SELECT backed_up_index FROM backup_state WHERE id = 1',
  );
  const brokers = await db.query<{
    broker_id: number;
    host: string;
    port: number;
    broker_epoch: string;
    status: string;
  }>('SELECT broker_id, host, port, broker_epoch, status FROM brokers ORDER BY broker_id');
  const topics = await db.query<{
    name: string;
    topic_id: string;
    replication_factor: number;
    config: Record<string, string>;
  }>('SELECT name, topic_id, replication_factor, config FROM topics ORDER BY name');
  const partitions = await db.query<{
    topic_name: string;
    partition_id: number;
    leader_id: number;
    replica_ids: number[];
    isr_ids: number[];
    leader_epoch: number;
    partition_epoch: number;
  }>(
    `SELECT topic_name, partition_id, leader_id, replica_ids, isr_ids, leader_epoch, partition_epoch
     FROM partitions ORDER BY topic_name, partition_id`,
  );
  return {
    backedUpIndex: state === undefined ? null : Number(state.backed_up_index),
    brokers: brokers.map((b) => ({
      brokerId: b.broker_id,
      host: b.host,
      port: b.port,
      brokerEpoch: Number(b.broker_epoch),
      status: b.status as BrokerInfo['status'],
    })),
    topics: topics.map((t) => ({
      name: t.name,
      topicId: t.topic_id,
      replicationFactor: t.replication_factor,
      config: t.config,
      partitions: partitions
        .filter((p) => p.topic_name === t.name)
        .map((p) => ({
          partition: p.partition_id,
          leader: p.leader_id,
          replicas: p.replica_ids,
          isr: p.isr_ids,
          leaderEpoch: p.leader_epoch,
          partitionEpoch: p.partition_epoch,
        })),
    })),
  };
}

/** The API's view reduced to what the backup holds. */
export function apiView(
  topics: readonly TopicMetadata[],
  brokers: readonly BrokerInfo[],
): Omit<BackupView, 'backedUpIndex'> {
  return {
    brokers: [...brokers]
      .sort((a, b) => a.brokerId - b.brokerId)
      .map((b) => ({
        brokerId: b.brokerId,
        host: b.host,
        port: b.port,
        brokerEpoch: b.brokerEpoch,
        status: b.status,
      })),
    topics: [...topics]
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
      .map((t) => ({
        name: t.name,
        topicId: t.topicId,
        replicationFactor: t.replicationFactor,
        config: { ...t.config },
        partitions: t.partitions.map((p) => ({
          partition: p.partition,
          leader: p.leader,
          replicas: [...p.replicas],
          isr: [...p.isr],
          leaderEpoch: p.leaderEpoch,
          partitionEpoch: p.partitionEpoch,
        })),
      })),
  };
}

/**
 * Waits until the backup tables of `db` show `state` — brokers and topics as the API lists
 * them — within `timeoutMs` (polling every 100 ms).
 */
export async function waitForBackup(
  db: TestDatabase,
  state: { readonly topics: readonly TopicMetadata[]; readonly brokers: readonly BrokerInfo[] },
  what = 'the backup shows the state',
  timeoutMs = 60_000,
): Promise<void> {
  const expected = JSON.stringify(apiView(state.topics, state.brokers));
  await pollUntil(
    what,
    async () => {
      const stored = await readBackup(db);
      return JSON.stringify({ brokers: stored.brokers, topics: stored.topics }) === expected
        ? true
        : undefined;
    },
    timeoutMs,
    100,
  );
}

/** Reads one metric of a node's `/metrics` (unlabelled apart from `node`), or undefined. */
export async function scrapeMetric(url: string, name: string): Promise<number | undefined> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}
