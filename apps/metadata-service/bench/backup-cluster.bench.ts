/**
 * `npm run bench -- backup-cluster [--clients=32] [--seconds=20] [--paced-seconds=10]
 *  [--rate=1000] [--topics=200] [--partitions=3] [--backup-concurrency=n]`
 *
 * The cluster's own commit throughput and the backup's throughput and lag, side by side, on a
 * real local cluster: 3 node processes with the backup on (DMQ_BACKUP_CONCURRENCY as the
 * service defaults it, or `--backup-concurrency`),
 * a PostgreSQL database and a BullMQ queue of their own on the local PostgreSQL and Redis.
 * 3 brokers registered and heartbeating every 2 s; `--topics` topics of `--partitions`
 * partitions (replication factor 3) whose configs the load changes.
 *
 * The load: `--clients` concurrent HTTP clients sending writes straight to the leader, each
 * with an Idempotency-Key (retried with the same key on 503/504/socket errors). Per client,
 * 8 of 10 writes replace the config of a pool topic, 1 creates a topic and 1 deletes the
 * topic the client created before.
 *
 * 1. Closed loop for `--seconds`: every client sends its next write when the last one is
 *    acknowledged — as fast as the cluster commits.
 * 2. Paced at `--rate` writes/s for `--paced-seconds` when the cluster sustains it
 *    (`--rate` ≤ 80 % of the rate measured in 1), else at 80 % of that rate.
 *
 * Measured while the load runs:
 * - acknowledged writes/s, and the leader's commit index advance/s (`GET /cluster` every
 *   100 ms);
 * - `backup_state.backed_up_index` read from PostgreSQL every 25 ms: its advance/s (the backup
 *   throughput, entries/s), and per acknowledged write the time from its acknowledgement to
 *   the first read showing `backed_up_index` ≥ its index (the index is the response's
 *   `X-DMQ-Metadata-Version`, ≥ the write's own index, so the lag is never understated);
 * - the leader's own figures (`backup.lagEntries`, `backup.lagMs` of `GET /cluster`);
 * - after the load stops: time until `backed_up_index` covers the last write, and until the
 *   leader reports a lag of 0;
 * - CPU time of each process (from /proc) during the load.
 *
 * At the end the backup tables are compared with the cluster's state (topic names, ids,
 * configs, partition counts; brokers; `backed_up_index` ≥ the last write's index); any
 * difference fails the benchmark. Then everything is stopped, the database dropped and the
 * queue obliterated. Prints a Markdown section.
 */
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { Queue } from 'bullmq';
import { Client } from 'pg';
import type { ClusterStatus, TopicMetadata } from '@dmq/api-contracts';
import type { MetadataClient } from '@dmq/metadata-client';
import {
  createTestDatabase,
  scrapeMetric,
  type TestDatabase,
} from '../test/harness/backup-fixtures';
import { LocalCluster, pollUntil, type NodeProcess } from '../test/harness/local-cluster';
import {
  machineBusyTicks,
  ms,
  numberFlag,
  processTicks,
  quantile,
  sleep,
  table,
} from './bench-util';

const clients = numberFlag('clients', 32);
const seconds = numberFlag('seconds', 20);
const pacedSeconds = numberFlag('paced-seconds', 10);
const targetRate = numberFlag('rate', 1_000);
const poolTopics = numberFlag('topics', 200);
const partitions = numberFlag('partitions', 3);
/** DMQ_BACKUP_CONCURRENCY of every node; 0: the service's default. */
const backupConcurrency = numberFlag('backup-concurrency', 0);

const REDIS_URL = process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379';
const PG_POLL_MS = 25;
const STATUS_POLL_MS = 100;
const HEARTBEAT_MS = 2_000;
const CLOCK_TICKS = 100; // USER_HZ of /proc

/** One acknowledged write. */
interface Ack {
  /** `X-DMQ-Metadata-Version` of the answer: ≥ the write's Raft index. */
  readonly index: number;
  readonly sentAt: number;
  readonly ackAt: number;
}

interface PgSample {
  readonly t: number;
  readonly index: number;
}

interface PgStats {
  readonly xacts: number;
  readonly activeMs: number;
  readonly idleInTxMs: number;
  /** The sampler's own queries so far. */
  readonly own: number;
}

interface StatusSample {
  readonly t: number;
  readonly term: number;
  readonly commitIndex: number;
  readonly pgIndex: number;
  readonly lagEntries: number | null;
  readonly lagMs: number | null;
}

// ---- CPU time from /proc ----

/** Summed CPU ticks of every process whose command name is `comm` (all users). */
function ticksByName(comm: string): number {
  let total = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, 'utf8').trim() === comm)
        total += processTicks(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return total;
}

type CpuSnapshot = Map<string, number>;

function cpuSnapshot(cluster: LocalCluster, leader: number): CpuSnapshot {
  const snap: CpuSnapshot = new Map();
  for (const n of cluster.nodes) {
    const label = `node ${n.id}${n.id === leader ? ' (leader)' : ''}`;
    snap.set(label, processTicks(n.child?.pid ?? 0));
  }
  const own = process.cpuUsage();
  snap.set('bench (load + samplers)', ((own.user + own.system) / 1e6) * CLOCK_TICKS);
  snap.set('postgres (all backends)', ticksByName('postgres'));
  snap.set('redis-server (all)', ticksByName('redis-server'));
  snap.set(MACHINE, machineBusyTicks());
  return snap;
}

const MACHINE = 'whole machine (2 cores = 200 %)';
const REST = 'rest of the machine (other work, kernel)';

/**
 * Per label: % of one core between two snapshots `secs` apart; plus what the machine spent
 * outside the listed processes (other engineers' builds and tests, the kernel).
 */
function cpuPercent(before: CpuSnapshot, after: CpuSnapshot, secs: number): Map<string, number> {
  const out = new Map<string, number>();
  let listed = 0;
  for (const [label, ticks] of after) {
    const percent = ((ticks - (before.get(label) ?? 0)) / CLOCK_TICKS / secs) * 100;
    out.set(label, percent);
    if (label !== MACHINE) listed += percent;
  }
  out.set(REST, (out.get(MACHINE) ?? 0) - listed);
  return out;
}

// ---- the load ----

class WriteError extends Error {}

/** One write to the leader; retried with the same key while the outcome is unknown. */
async function send(
  url: string,
  method: 'POST' | 'PUT' | 'DELETE',
  body: unknown,
  key: string,
  retried: Map<string, number>,
): Promise<number> {
  for (let attempt = 1; ; attempt++) {
    let why: string;
    try {
      const answer = await fetch(url, {
        method,
        headers: {
          'idempotency-key': key,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(10_000),
      });
      const text = await answer.text();
      if (answer.ok) {
        const version = Number(answer.headers.get('x-dmq-metadata-version'));
        if (!Number.isSafeInteger(version) || version <= 0)
          throw new WriteError(`${method} ${url}: no X-DMQ-Metadata-Version`);
        return version;
      }
      if (answer.status !== 503 && answer.status !== 504)
        throw new WriteError(`${method} ${url}: ${answer.status} ${text}`);
      why = String(answer.status);
    } catch (err) {
      if (err instanceof WriteError) throw err;
      why = err instanceof Error ? err.name : 'error';
    }
    retried.set(why, (retried.get(why) ?? 0) + 1);
    if (attempt >= 50) throw new WriteError(`${method} ${url}: gave up after ${attempt} attempts`);
    await sleep(20);
  }
}

interface DriveResult {
  readonly acks: Ack[];
  readonly retried: Map<string, number>;
  readonly startedAt: number;
  readonly endedAt: number;
}

let topicConfigSeq = 0;

/**
 * `clients` loops of writes to `leaderUrl` for `durationMs`; closed loop, or paced at `rate`
 * writes/s (a shared schedule of tickets: a client takes the next ticket and waits for its
 * time; when every client is busy the schedule slips and the achieved rate shows it).
 */
async function drive(
  leaderUrl: string,
  run: string,
  durationMs: number,
  rate: number | undefined,
): Promise<DriveResult> {
  const acks: Ack[] = [];
  const retried = new Map<string, number>();
  const startedAt = performance.now();
  const endAt = startedAt + durationMs;
  let ticket = 0;
  const base = `${leaderUrl}/api/v1/topics`;
  const loop = async (c: number): Promise<void> => {
    const owned: string[] = [];
    for (let k = 0; ; k++) {
      if (rate === undefined) {
        if (performance.now() >= endAt) return;
      } else {
        const due = startedAt + (ticket++ * 1_000) / rate;
        if (due >= endAt) return;
        const wait = due - performance.now();
        if (wait > 0) await sleep(wait);
      }
      const key = `${run}-${c}-${k}`;
      const sentAt = performance.now();
      let index: number;
      const slot = k % 10;
      const doomed = owned[0];
      if (slot === 9 && doomed !== undefined) {
        index = await send(`${base}/${doomed}`, 'DELETE', undefined, key, retried);
        owned.shift();
      } else if (slot === 8 || slot === 9) {
        const name = `churn-${run}-${c}-${k}`;
        const request = { name, partitions, replicationFactor: 3 };
        index = await send(base, 'POST', request, key, retried);
        owned.push(name);
      } else {
        const topic = `pool-${(c * 7_919 + k) % poolTopics}`;
        const config = { 'retention.ms': String(60_000 + topicConfigSeq++) };
        index = await send(`${base}/${topic}/config`, 'PUT', { config }, key, retried);
      }
      acks.push({ index, sentAt, ackAt: performance.now() });
    }
  };
  await Promise.all(Array.from({ length: clients }, (_, c) => loop(c)));
  return { acks, retried, startedAt, endedAt: performance.now() };
}

// ---- sampling ----

/** Reads `backup_state` every 25 ms and the leader's `/cluster` every 100 ms. */
class Sampler {
  readonly pg: PgSample[] = [];
  /** Queries this sampler sent (to tell them from the backup's in pg_stat_database). */
  queries = 0;
  readonly status: StatusSample[] = [];
  private stopped = false;
  private loops: Promise<void>[] = [];

  constructor(
    private readonly db: Client,
    private readonly client: MetadataClient,
    private readonly leader: number,
  ) {}

  async readPg(): Promise<number> {
    this.queries += 1;
    const result = await this.db.query<{ backed_up_index: string }>(
      'SELECT backed_up_index FROM backup_state WHERE id = 1',
    );
    return Number(result.rows[0]?.backed_up_index ?? 0);
  }

  /** The backup database's counters in pg_stat_database (flushed by backends about every 1 s). */
  async readStats(): Promise<PgStats> {
    this.queries += 1;
    const result = await this.db.query<{ x: string; active: number; idle: number }>(
      `SELECT xact_commit AS x, active_time AS active, idle_in_transaction_time AS idle
       FROM pg_stat_database WHERE datname = current_database()`,
    );
    const row = result.rows[0];
    return {
      xacts: Number(row?.x ?? 0),
      activeMs: row?.active ?? 0,
      idleInTxMs: row?.idle ?? 0,
      own: this.queries,
    };
  }

  get pgIndex(): number {
    return this.pg.at(-1)?.index ?? 0;
  }

  start(): void {
    this.loops = [
      this.every(PG_POLL_MS, async () => {
        const index = await this.readPg();
        // The time the answer arrived: the row held this value by then (lag not understated).
        this.pg.push({ t: performance.now(), index });
      }),
      this.every(STATUS_POLL_MS, async () => {
        const s: ClusterStatus = await this.client.clusterStatus({
          node: this.leader,
          deadlineMs: 2_000,
        });
        this.status.push({
          t: performance.now(),
          term: s.term,
          commitIndex: s.commitIndex,
          pgIndex: this.pgIndex,
          lagEntries: s.backup.lagEntries,
          lagMs: s.backup.lagMs,
        });
      }),
    ];
  }

  private async every(intervalMs: number, probe: () => Promise<void>): Promise<void> {
    while (!this.stopped) {
      const started = performance.now();
      try {
        await probe();
      } catch (err) {
        process.stderr.write(`sampler: ${String(err)}\n`);
      }
      await sleep(Math.max(0, intervalMs - (performance.now() - started)));
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.loops);
  }

  /** The first PostgreSQL read showing `backed_up_index` ≥ `index` (reads only ever grow). */
  firstCovering(index: number): PgSample | undefined {
    let lo = 0;
    let hi = this.pg.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((this.pg[mid] as PgSample).index >= index) hi = mid;
      else lo = mid + 1;
    }
    return this.pg[lo];
  }

  /** Largest advance of `backed_up_index` within any 1 s between `from` and `to`. */
  bestSecond(from: number, to: number): number {
    const window = this.pg.filter((s) => s.t >= from && s.t <= to);
    let best = 0;
    let j = 0;
    for (let i = 0; i < window.length; i++) {
      const head = window[i] as PgSample;
      while (j + 1 < window.length && (window[j + 1] as PgSample).t <= head.t + 1_000) j += 1;
      const tail = window[j] as PgSample;
      if (tail.t - head.t >= 900) best = Math.max(best, tail.index - head.index);
    }
    return best;
  }
}

// ---- one phase ----

interface Lags {
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

const lags = (values: readonly number[]): Lags => ({
  p50: quantile(values, 0.5),
  p99: quantile(values, 0.99),
  max: values.length === 0 ? Number.NaN : Math.max(...values),
});

const fmt = (l: Lags, unit = ''): string => `${ms(l.p50)} / ${ms(l.p99)} / ${ms(l.max)}${unit}`;

interface PhaseResult {
  readonly title: string;
  readonly seconds: number;
  readonly acked: number;
  readonly ackedPerSec: number;
  readonly commitPerSec: number;
  readonly backupPerSec: number;
  readonly backupBestSecond: number;
  readonly latency: Lags;
  readonly lagMs: Lags;
  readonly lagEntries: Lags;
  readonly reportedLagMs: Lags;
  readonly reportedLagEntries: Lags;
  readonly drainMs: number;
  readonly reportedZeroMs: number;
  readonly jobs: number;
  /** Leader's Raft log syncs per second and their mean duration. */
  readonly fsyncPerSec: number;
  readonly fsyncMeanMs: number;
  /** PostgreSQL transactions/s on the backup database other than the bench's own reads. */
  readonly pgTxPerSec: number;
  readonly pgActiveMsPerTx: number;
  readonly pgIdleInTxMsPerTx: number;
  readonly retried: string;
  readonly cpu: Map<string, number>;
  readonly warnings: string[];
  readonly lastIndex: number;
}

interface Env {
  readonly cluster: LocalCluster;
  readonly client: MetadataClient;
  readonly leader: number;
  readonly sampler: Sampler;
}

async function leaderStatus(env: Env): Promise<ClusterStatus> {
  return env.client.clusterStatus({ node: env.leader });
}

async function leaderMetric(env: Env, name: string): Promise<number> {
  return (await scrapeMetric(env.cluster.node(env.leader).url, name)) ?? Number.NaN;
}

const jobsEnqueued = (env: Env): Promise<number> =>
  leaderMetric(env, 'dmq_backup_jobs_enqueued_total');

interface Syncs {
  readonly count: number;
  readonly seconds: number;
}

async function leaderSyncs(env: Env): Promise<Syncs> {
  return {
    count: await leaderMetric(env, 'dmq_raft_fsync_seconds_count'),
    seconds: await leaderMetric(env, 'dmq_raft_fsync_seconds_sum'),
  };
}

/** Warn/error lines the nodes logged since `from` (index per node), counted by message. */
function warnings(nodes: readonly NodeProcess[], from: Map<number, number>): string[] {
  const counts = new Map<string, number>();
  for (const n of nodes) {
    for (const line of n.lines.slice(from.get(n.id) ?? 0)) {
      const level = line.level;
      const bad =
        level === 'warn' ||
        level === 'error' ||
        level === 'fatal' ||
        (typeof level === 'number' && level >= 40);
      if (bad) counts.set(String(line.msg), (counts.get(String(line.msg)) ?? 0) + 1);
    }
  }
  return [...counts].map(([msg, count]) => `${count}× "${msg}"`);
}

async function phase(
  env: Env,
  title: string,
  run: string,
  durationMs: number,
  rate: number | undefined,
): Promise<PhaseResult> {
  const { cluster, sampler } = env;
  const logFrom = new Map(cluster.nodes.map((n) => [n.id, n.lines.length]));
  const jobsBefore = await jobsEnqueued(env);
  const commitBefore = (await leaderStatus(env)).commitIndex;
  const pgBefore = await sampler.readPg();
  const syncsBefore = await leaderSyncs(env);
  const statsBefore = await sampler.readStats();
  const cpuBefore = cpuSnapshot(cluster, env.leader);

  const load = await drive(cluster.node(env.leader).url, run, durationMs, rate);

  const cpuAfter = cpuSnapshot(cluster, env.leader);
  const commitAfter = (await leaderStatus(env)).commitIndex;
  const pgAfter = await sampler.readPg();
  // Read while the backup is still busy: busy backends flush their statistics about every 1 s.
  const statsAfter = await sampler.readStats();
  const syncsAfter = await leaderSyncs(env);
  const { startedAt, endedAt, acks } = load;
  const secs = (endedAt - startedAt) / 1_000;
  const lastIndex = Math.max(...acks.map((a) => a.index));

  const covered = await pollUntil(
    `backed_up_index ≥ ${lastIndex}`,
    () => {
      const s = sampler.firstCovering(lastIndex);
      return s === undefined ? undefined : s;
    },
    300_000,
    10,
  );
  const zero = await pollUntil(
    'the leader reports a backup lag of 0',
    () =>
      sampler.status.find(
        (s) => s.t >= endedAt && s.lagEntries === 0 && s.commitIndex >= lastIndex,
      ),
    60_000,
    10,
  );
  const jobsAfter = await jobsEnqueued(env);

  const perWrite = acks.map((a) => {
    const s = sampler.firstCovering(a.index);
    if (s === undefined) throw new Error(`write at ${a.index} never seen in backup_state`);
    return Math.max(0, s.t - a.ackAt);
  });
  const during = sampler.status.filter((s) => s.t >= startedAt && s.t <= endedAt);
  const notNull = (v: number | null): v is number => v !== null;

  return {
    title,
    seconds: secs,
    acked: acks.length,
    ackedPerSec: acks.length / secs,
    commitPerSec: (commitAfter - commitBefore) / secs,
    backupPerSec: (pgAfter - pgBefore) / secs,
    backupBestSecond: sampler.bestSecond(startedAt, covered.t),
    latency: lags(acks.map((a) => a.ackAt - a.sentAt)),
    lagMs: lags(perWrite),
    lagEntries: lags(during.map((s) => Math.max(0, s.commitIndex - s.pgIndex))),
    reportedLagMs: lags(during.map((s) => s.lagMs).filter(notNull)),
    reportedLagEntries: lags(during.map((s) => s.lagEntries).filter(notNull)),
    drainMs: Math.max(0, covered.t - endedAt),
    reportedZeroMs: zero.t - endedAt,
    jobs: jobsAfter - jobsBefore,
    fsyncPerSec: (syncsAfter.count - syncsBefore.count) / secs,
    fsyncMeanMs:
      ((syncsAfter.seconds - syncsBefore.seconds) / (syncsAfter.count - syncsBefore.count)) * 1_000,
    ...pgPerTx(statsBefore, statsAfter, secs),
    retried:
      load.retried.size === 0
        ? 'none'
        : [...load.retried].map(([why, count]) => `${count}× ${why}`).join(', '),
    cpu: cpuPercent(cpuBefore, cpuAfter, secs),
    warnings: warnings(cluster.nodes, logFrom),
    lastIndex,
  };
}

/** The backup's transactions/s and mean time per transaction from two pg_stat_database reads. */
function pgPerTx(
  before: PgStats,
  after: PgStats,
  secs: number,
): Pick<PhaseResult, 'pgTxPerSec' | 'pgActiveMsPerTx' | 'pgIdleInTxMsPerTx'> {
  const tx = after.xacts - before.xacts - (after.own - before.own);
  return {
    pgTxPerSec: tx / secs,
    pgActiveMsPerTx: (after.activeMs - before.activeMs) / tx,
    pgIdleInTxMsPerTx: (after.idleInTxMs - before.idleInTxMs) / tx,
  };
}

// ---- the check ----

const stable = (config: Record<string, string>): string =>
  JSON.stringify(Object.fromEntries(Object.entries(config).sort(([a], [b]) => (a < b ? -1 : 1))));

/** Differences between the backup tables and the cluster's state (empty: equal). */
async function differences(
  db: TestDatabase,
  client: MetadataClient,
  lastIndex: number,
): Promise<{ diffs: string[]; topics: number; backedUpIndex: number }> {
  const [topics, brokers] = await Promise.all([client.listTopics(), client.listBrokers()]);
  const [state] = await db.query<{ backed_up_index: string }>(
    'SELECT backed_up_index FROM backup_state WHERE id = 1',
  );
  const rows = await db.query<{
    name: string;
    topic_id: string;
    partition_count: number;
    config: Record<string, string>;
  }>('SELECT name, topic_id, partition_count, config FROM topics');
  const parts = await db.query<{ topic_name: string; n: string }>(
    'SELECT topic_name, count(*) AS n FROM partitions GROUP BY topic_name',
  );
  const brokerRows = await db.query<{ broker_id: number }>('SELECT broker_id FROM brokers');
  const backedUpIndex = Number(state?.backed_up_index ?? 0);
  const diffs: string[] = [];
  if (backedUpIndex < lastIndex)
    diffs.push(`backup_state.backed_up_index ${backedUpIndex} < last write ${lastIndex}`);
  if (rows.length !== topics.length)
    diffs.push(`${rows.length} topics in PostgreSQL, ${topics.length} in the cluster`);
  const stored = new Map(rows.map((r) => [r.name, r]));
  const partitionRows = new Map(parts.map((p) => [p.topic_name, Number(p.n)]));
  const live = new Map<string, TopicMetadata>(topics.map((t) => [t.name, t]));
  for (const t of topics) {
    const row = stored.get(t.name);
    if (row === undefined) diffs.push(`topic ${t.name} missing from PostgreSQL`);
    else if (row.topic_id !== t.topicId) diffs.push(`topic ${t.name}: other topic id`);
    else if (stable(row.config) !== stable(t.config))
      diffs.push(`topic ${t.name}: config ${stable(row.config)} ≠ ${stable(t.config)}`);
    else if (
      row.partition_count !== t.partitions.length ||
      partitionRows.get(t.name) !== t.partitions.length
    )
      diffs.push(`topic ${t.name}: partitions differ`);
  }
  for (const r of rows)
    if (!live.has(r.name)) diffs.push(`topic ${r.name} deleted but in PostgreSQL`);
  const brokerIds = (ids: number[]) => JSON.stringify([...ids].sort((a, b) => a - b));
  if (brokerIds(brokerRows.map((b) => b.broker_id)) !== brokerIds(brokers.map((b) => b.brokerId)))
    diffs.push('brokers differ');
  return { diffs, topics: topics.length, backedUpIndex };
}

async function verify(
  db: TestDatabase,
  client: MetadataClient,
  lastIndex: number,
): Promise<string> {
  const first = await differences(db, client, lastIndex);
  if (first.diffs.length === 0) {
    return `Check: PostgreSQL equals the cluster once \`backed_up_index\` covered the last write — ${first.topics} topics (names, ids, configs, partition counts), 3 brokers, \`backed_up_index\` ${first.backedUpIndex} ≥ last write ${lastIndex}.`;
  }
  // backed_up_index can run ahead of a job still in another node's worker: give it time.
  const started = performance.now();
  let last = first;
  while (performance.now() - started < 30_000) {
    await sleep(200);
    last = await differences(db, client, lastIndex);
    if (last.diffs.length === 0) {
      return `Check: PostgreSQL equals the cluster ${ms(performance.now() - started)} ms after \`backed_up_index\` covered the last write (at that moment: ${first.diffs.slice(0, 3).join('; ')}) — ${last.topics} topics, \`backed_up_index\` ${last.backedUpIndex} ≥ last write ${lastIndex}.`;
    }
  }
  throw new Error(
    `the backup differs from the cluster 30 s after the load:\n${last.diffs.slice(0, 20).join('\n')}`,
  );
}

// ---- main ----

async function main(): Promise<void> {
  const db = await createTestDatabase('bench_cluster');
  const queueName = `dmq-bench-cluster-${randomBytes(4).toString('hex')}`;
  let cluster: LocalCluster | undefined;
  let client: MetadataClient | undefined;
  const pg = new Client({ connectionString: db.url });
  let heartbeats: NodeJS.Timeout | undefined;
  let sampler: Sampler | undefined;
  try {
    cluster = await LocalCluster.start({
      env: {
        DMQ_BACKUP: 'on',
        DATABASE_URL: db.url,
        REDIS_URL,
        DMQ_BACKUP_QUEUE: queueName,
        ...(backupConcurrency > 0 ? { DMQ_BACKUP_CONCURRENCY: String(backupConcurrency) } : {}),
        DMQ_BROKER_SESSION_TIMEOUT_MS: '30000',
        DMQ_BROKER_HEARTBEAT_INTERVAL_MS: String(HEARTBEAT_MS),
      },
    });
    client = cluster.client();
    const c = client;
    const leader = await cluster.waitForLeader();
    const epochs = new Map<number, number>();
    for (const brokerId of [1, 2, 3]) {
      const r = await c.registerBroker({ brokerId, host: '127.0.0.1', port: 9190 + brokerId });
      epochs.set(brokerId, r.brokerEpoch);
    }
    heartbeats = setInterval(() => {
      for (const [brokerId, brokerEpoch] of epochs)
        c.heartbeat(brokerId, { brokerEpoch }).catch((err: unknown) =>
          process.stderr.write(`heartbeat ${brokerId}: ${String(err)}\n`),
        );
    }, HEARTBEAT_MS);
    for (let t = 0; t < poolTopics; t += 16) {
      await Promise.all(
        Array.from({ length: Math.min(16, poolTopics - t) }, (_, i) =>
          c.createTopic({ name: `pool-${t + i}`, partitions, replicationFactor: 3 }),
        ),
      );
    }
    await pg.connect();
    sampler = new Sampler(pg, c, leader);
    const s = sampler;
    const setupIndex = (await c.clusterStatus({ node: leader })).commitIndex;
    await pollUntil(
      'setup backed up',
      async () => ((await s.readPg()) >= setupIndex ? true : undefined),
      60_000,
      50,
    );
    const termBefore = (await c.clusterStatus({ node: leader })).term;
    s.start();
    const env: Env = { cluster, client: c, leader, sampler: s };

    process.stderr.write(`closed loop: ${clients} clients for ${seconds} s\n`);
    const max = await phase(
      env,
      `closed loop, ${clients} clients, ${seconds} s`,
      'max',
      seconds * 1_000,
      undefined,
    );
    const sustained = targetRate <= 0.8 * max.ackedPerSec;
    const rate = sustained ? targetRate : Math.floor(0.8 * max.ackedPerSec);
    process.stderr.write(`paced: ${rate} writes/s for ${pacedSeconds} s\n`);
    const paced = await phase(
      env,
      `paced at ${rate}/s, ${pacedSeconds} s`,
      'paced',
      pacedSeconds * 1_000,
      rate,
    );
    await s.stop();
    const termAfter = (await c.clusterStatus({ node: leader })).term;
    const check = await verify(db, c, Math.max(max.lastIndex, paced.lastIndex));

    const both = [max, paced];
    const row = (label: string, f: (p: PhaseResult) => string) => [label, ...both.map(f)];
    const n = (v: number) => Math.round(v).toLocaleString('en-US');
    const cpuLabels = [...max.cpu.keys()];
    console.log(
      [
        '### Backup beside the cluster — `npm run bench -- backup-cluster`',
        '',
        `3 node processes (\`node --import tsx\`), backup on (DMQ_BACKUP_CONCURRENCY ${backupConcurrency > 0 ? backupConcurrency : 'default (2)'} per node), PostgreSQL and Redis on loopback; Node ${process.version}. ` +
          `${poolTopics} topics × ${partitions} partitions (RF 3), 3 brokers heartbeating every ${HEARTBEAT_MS / 1000} s. ` +
          `Writes over HTTP to the leader with Idempotency-Keys: 80 % topic config replacements, 10 % topic creations, 10 % deletions.`,
        sustained
          ? `Paced run at ${rate}/s: the cluster sustains it (≤ 80 % of its closed-loop rate).`
          : `Paced run at ${rate}/s = 80 % of the closed-loop rate: the cluster does NOT sustain ${targetRate}/s.`,
        termAfter === termBefore
          ? `No leader change (term ${termBefore}).`
          : `LEADER CHANGED during the run (term ${termBefore} → ${termAfter}): figures are suspect.`,
        '',
        table(
          ['', ...both.map((p) => p.title)],
          [
            row('acknowledged writes/s', (p) => n(p.ackedPerSec)),
            row(
              '**cluster commit** (leader commitIndex advance), entries/s',
              (p) => `**${n(p.commitPerSec)}**`,
            ),
            row(
              '**backup** (backed_up_index advance), entries/s',
              (p) => `**${n(p.backupPerSec)}**`,
            ),
            row('backup, best 1 s (load and drain), entries/s', (p) => n(p.backupBestSecond)),
            row('write latency p50 / p99 / max, ms', (p) => fmt(p.latency)),
            row('**lag** ack → in backup_state, p50 / **p99** / max, ms', (p) => fmt(p.lagMs)),
            row('lag, entries (commitIndex − backed_up_index) p50 / p99 / max', (p) =>
              fmt(p.lagEntries),
            ),
            row('leader-reported lagMs p50 / p99 / max', (p) => fmt(p.reportedLagMs)),
            row('leader-reported lagEntries p50 / p99 / max', (p) => fmt(p.reportedLagEntries)),
            row('after the load: backed_up_index covers the last write, ms', (p) => ms(p.drainMs)),
            row('after the load: leader reports lag 0, ms', (p) => ms(p.reportedZeroMs)),
            row(
              'leader Raft log syncs/s (mean ms each)',
              (p) => `${n(p.fsyncPerSec)} (${p.fsyncMeanMs.toFixed(1)})`,
            ),
            row(
              'backup jobs enqueued by the leader /s (entries per job)',
              (p) =>
                `${n(p.jobs / p.seconds)} (${((p.commitPerSec * p.seconds) / p.jobs).toFixed(1)})`,
            ),
            row(
              'PostgreSQL transactions/s on the backup db, approx. (ms each: executing / idle in transaction)',
              (p) =>
                `${n(p.pgTxPerSec)} (${p.pgActiveMsPerTx.toFixed(1)} / ${p.pgIdleInTxMsPerTx.toFixed(1)})`,
            ),
            row('writes retried', (p) => p.retried),
            row('node warnings', (p) => (p.warnings.length === 0 ? 'none' : p.warnings.join('; '))),
          ],
        ),
        '',
        'CPU during the load, % of one core:',
        '',
        table(
          ['process', ...both.map((p) => p.title)],
          cpuLabels.map((label) => [label, ...both.map((p) => ms(p.cpu.get(label) ?? Number.NaN))]),
        ),
        '',
        check,
        `Lag resolution: backup_state read every ${PG_POLL_MS} ms; leader status every ${STATUS_POLL_MS} ms.`,
      ].join('\n'),
    );
  } finally {
    if (heartbeats !== undefined) clearInterval(heartbeats);
    await sampler?.stop();
    await client?.close();
    await cluster?.stop();
    await pg.end().catch(() => undefined);
    const queue = new Queue(queueName, { connection: { url: REDIS_URL } });
    await queue.obliterate({ force: true });
    await queue.close();
    await db.drop();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
