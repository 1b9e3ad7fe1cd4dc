/**
 * `npm run bench -- etcd-compare [--ops=2000] [--clients=32] [--seconds=15] [--runs=10]
 *  [--first=etcd|dmq] [--only=latency,throughput,failover]
 *  [--etcd-heartbeat-ms=100] [--etcd-election-ms=1000]`
 *
 * The same workloads against a 3-member etcd 3.4 cluster (Debian's `etcd-server`, on
 * loopback, through its JSON gateway) and against our 3-node cluster (`DMQ_BACKUP=off`),
 * one system after the other (never both at once), over HTTP/1.1 keep-alive with ONE client
 * implementation (`node:http` with a keep-alive `http.Agent`, as `@dmq/metadata-client` uses):
 *
 * | workload          | etcd                                   | DMQ                                            |
 * | ----------------- | -------------------------------------- | ---------------------------------------------- |
 * | write             | `POST /v3/kv/put` (base64 key/value)   | `PUT /api/v1/topics/{name}/config` (one Raft write) |
 * | linearizable read | `POST /v3/kv/range`                    | `GET /api/v1/topics/{name}` (ReadIndex)         |
 * | local read        | `POST /v3/kv/range` `serializable`     | `GET /api/v1/topics/{name}?consistency=stale`   |
 *
 * Every request goes to the leader (etcd: the member whose `/v3/maintenance/status` names
 * itself; ours: `GET /api/v1/cluster` → `leaderId`). Key k of etcd is the config of topic
 * `bench-k` of ours (1 partition, RF 1); the written value is the same small config JSON.
 * The local read is an addition: the per-request cost of each HTTP stack without consensus,
 * to tell where the time of the other two goes.
 *
 * 1. Sequential latency: 1 client, `--ops` requests of each workload (after 200 of warm-up).
 * 2. Throughput: `--clients` concurrent clients (one keep-alive connection each), closed
 *    loop for `--seconds` per workload (after 2 s of warm-up): ops/s, latency p50/p99, CPU of
 *    every process (from /proc) and server CPU per op.
 *    For 1 and 2, where a request's time goes from each server's own histograms (`/metrics`
 *    of the leader and of a follower, read before and after): etcd's WAL fdatasync and bbolt
 *    commits; our HTTP handler time, proposal → commit + apply, and log syncs.
 * 3. Failover, `--runs` times: one client writes back to back to the leader; kill -9 the
 *    leader; on its first failed request the client tries all members at once (a new attempt
 *    to every member every 10 ms, each with a 1 s timeout: etcd drops a proposal made while
 *    there is no leader and the request only times out, ours answers 503 at once; the same
 *    hedging for both keeps the figure the server's). Figure: kill → first acknowledged
 *    write (on a survivor); also kill → the new leader takes office (from the logs).
 *
 * Ends with everything stopped and the temp data directories removed; prints a Markdown
 * section (versions, flags, tables, CPU by process group, what else ran on the machine).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import { Worker } from 'node:worker_threads';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { ClusterStatus } from '@dmq/api-contracts';
import { loadConfig } from '../src/config/config';
import { freePorts, LocalCluster, pollUntil } from '../test/harness/local-cluster';
import {
  machineBusyTicks,
  ms,
  numberFlag,
  processTicks,
  quantile,
  sleep,
  table,
} from './bench-util';

const ops = numberFlag('ops', 2_000);
const clients = numberFlag('clients', 32);
const seconds = numberFlag('seconds', 15);
const runs = numberFlag('runs', 10);
const etcdHeartbeatMs = numberFlag('etcd-heartbeat-ms', 100);
const etcdElectionMs = numberFlag('etcd-election-ms', 1_000);

function stringFlag(name: string, fallback: string): string {
  const prefix = `--${name}=`;
  return process.argv.find((a) => a.startsWith(prefix))?.slice(prefix.length) ?? fallback;
}

const first = stringFlag('first', 'etcd');
if (first !== 'etcd' && first !== 'dmq') throw new Error('--first must be etcd or dmq');
const only = new Set(stringFlag('only', 'latency,throughput,failover').split(','));
for (const phase of only)
  if (!['latency', 'throughput', 'failover'].includes(phase))
    throw new Error(`--only: unknown phase "${phase}" (latency, throughput, failover)`);

/** Topics (ours) / keys (etcd) written and read: one per concurrent client. */
const KEYS = Math.max(1, clients);
const WARMUP_OPS = 200;
const WARMUP_MS = 2_000;
const HEDGE_EVERY_MS = 10;
const ATTEMPT_TIMEOUT_MS = 1_000;
const CLOCK_TICKS = 100; // USER_HZ of /proc
/** Our snapshot interval (config default), used for etcd's --snapshot-count too. */
const SNAPSHOT_EVERY = loadConfig({ DMQ_NODE_ID: '1', DMQ_PEERS: '1=127.0.0.1:1' }).raft
  .snapshotEveryEntries;

// ---- the one HTTP client ----

interface Answer {
  readonly status: number;
  readonly body: string;
}

/** HTTP/1.1 over keep-alive sockets (one per concurrent request), for both systems. */
class HttpClient {
  private readonly agent = new http.Agent({ keepAlive: true, maxFreeSockets: 1_024 });

  request(
    port: number,
    method: string,
    urlPath: string,
    body: string | undefined,
    timeoutMs = 10_000,
  ): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const req = http.request(
        {
          host: '127.0.0.1',
          port,
          method,
          path: urlPath,
          agent: this.agent,
          headers:
            body === undefined
              ? {}
              : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () => {
            clearTimeout(timer);
            resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') });
          });
          res.on('error', fail);
        },
      );
      function fail(err: Error): void {
        clearTimeout(timer);
        reject(err);
      }
      const timer = setTimeout(() => req.destroy(new Error('timeout')), timeoutMs);
      req.on('socket', (socket) => socket.setNoDelay(true));
      req.on('error', fail);
      req.end(body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

// ---- the two systems behind one interface ----

type Workload = 'write' | 'read' | 'local read';
const WORKLOADS: readonly Workload[] = ['write', 'read', 'local read'];

interface Request {
  readonly method: string;
  readonly path: string;
  readonly body: string | undefined;
  readonly ok: number;
}

interface Member {
  readonly label: string;
  readonly port: number;
  readonly pid: number | undefined;
  readonly running: boolean;
}

/** Observations of a histogram so far (or per op, between two reads). */
interface Totals {
  readonly count: number;
  readonly seconds: number;
}

/** A server-side latency histogram of the leader or of a follower (Prometheus `/metrics`). */
interface Histogram {
  readonly label: string;
  readonly metric: string;
  /** Only samples whose line contains this (a label value). */
  readonly filter?: string;
  readonly on: 'leader' | 'follower';
}

interface System {
  readonly name: string;
  readonly members: readonly Member[];
  /** The request of `workload` on key `key`; `seq` makes every written value different. */
  request(workload: Workload, key: number, seq: number): Request;
  /** Prepares the keys/topics (through the leader). */
  setup(client: HttpClient): Promise<void>;
  /** The leader every running member agrees on. */
  leader(client: HttpClient): Promise<Member>;
  /** Resolves once every running member has applied what the leader had committed. */
  caughtUp(client: HttpClient, leader: Member): Promise<void>;
  /** Where a request's time goes, from the server's own histograms. */
  readonly histograms: readonly Histogram[];
  kill(member: Member): Promise<void>;
  restart(member: Member): Promise<void>;
  /** When (epoch ms, from the logs) a member first took office as leader after `since`. */
  electedAfter(since: number): number | undefined;
  stop(): Promise<void>;
}

const b64 = (text: string): string => Buffer.from(text).toString('base64');
const configValue = (seq: number): string =>
  JSON.stringify({ 'retention.ms': String(60_000 + seq) });

/** Sum of every sample of `name` (whose line contains `filter`) on a Prometheus text page. */
function metricSum(page: string, name: string, filter = ''): number {
  let sum = 0;
  for (const line of page.split('\n')) {
    if ((line.startsWith(`${name} `) || line.startsWith(`${name}{`)) && line.includes(filter))
      sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

/** Every histogram of `system`, read from the leader's and a follower's `/metrics`. */
async function histogramTotals(
  client: HttpClient,
  system: System,
  leader: Member,
): Promise<Totals[]> {
  const follower = system.members.find((m) => m !== leader && m.running) ?? leader;
  const page = async (m: Member) =>
    (await client.request(m.port, 'GET', '/metrics', undefined)).body;
  const pages = { leader: await page(leader), follower: await page(follower) };
  return system.histograms.map((h) => ({
    count: metricSum(pages[h.on], `${h.metric}_count`, h.filter),
    seconds: metricSum(pages[h.on], `${h.metric}_sum`, h.filter),
  }));
}

const perOp = (before: Totals[], after: Totals[], opCount: number): Totals[] =>
  after.map((a, i) => ({
    count: (a.count - (before[i]?.count ?? 0)) / opCount,
    seconds: (a.seconds - (before[i]?.seconds ?? 0)) / opCount,
  }));

// -- etcd --

const ETCD = '/usr/bin/etcd';

class EtcdMember implements Member {
  child: ChildProcess | undefined;
  /** Epoch ms of every "became leader" line. */
  readonly becameLeader: number[] = [];
  readonly tail: string[] = [];
  private exitWaiters: Array<() => void> = [];

  constructor(
    readonly label: string,
    readonly port: number,
    readonly args: readonly string[],
  ) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return (
      this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null
    );
  }

  start(): void {
    const child = spawn(ETCD, this.args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    const onLine = (text: string): void => {
      this.tail.push(text);
      if (this.tail.length > 50) this.tail.shift();
      if (!text.includes('became leader at term')) return;
      try {
        const line = JSON.parse(text) as { ts?: string };
        this.becameLeader.push(Date.parse(String(line.ts)));
      } catch {
        // not a JSON line
      }
    };
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', onLine);
    createInterface({ input: child.stderr as NodeJS.ReadableStream }).on('line', onLine);
    child.on('exit', () => {
      for (const resolve of this.exitWaiters.splice(0)) resolve();
    });
  }

  async kill(): Promise<void> {
    if (!this.running) return;
    const done = new Promise<void>((resolve) => this.exitWaiters.push(resolve));
    this.child?.kill('SIGKILL');
    await done;
  }
}

interface EtcdStatus {
  readonly header?: { readonly member_id?: string };
  readonly leader?: string;
  readonly raftIndex?: string;
  readonly raftAppliedIndex?: string;
  readonly version?: string;
}

class EtcdSystem implements System {
  readonly name = 'etcd';
  readonly histograms: readonly Histogram[] = [
    {
      label: 'leader WAL fdatasync',
      metric: 'etcd_disk_wal_fsync_duration_seconds',
      on: 'leader',
    },
    {
      label: 'follower WAL fdatasync',
      metric: 'etcd_disk_wal_fsync_duration_seconds',
      on: 'follower',
    },
    {
      label: 'leader bbolt commit (batched, off the write path)',
      metric: 'etcd_disk_backend_commit_duration_seconds',
      on: 'leader',
    },
  ];

  private constructor(
    readonly members: EtcdMember[],
    private readonly root: string,
    readonly flags: string,
  ) {}

  static async start(): Promise<EtcdSystem> {
    const ports = await freePorts(6);
    const root = mkdtempSync(path.join(os.tmpdir(), 'etcd-bench-'));
    const peerUrl = (i: number) => `http://127.0.0.1:${ports[3 + i]}`;
    const clientUrl = (i: number) => `http://127.0.0.1:${ports[i]}`;
    const initialCluster = [0, 1, 2].map((i) => `e${i + 1}=${peerUrl(i)}`).join(',');
    const common = [
      `--heartbeat-interval=${etcdHeartbeatMs}`,
      `--election-timeout=${etcdElectionMs}`,
      '--pre-vote=true',
      `--snapshot-count=${SNAPSHOT_EVERY}`,
      '--logger=zap',
      '--log-outputs=stderr',
      '--log-level=info',
    ];
    const members = [0, 1, 2].map(
      (i) =>
        new EtcdMember(`etcd e${i + 1}`, ports[i] as number, [
          `--name=e${i + 1}`,
          `--data-dir=${path.join(root, `e${i + 1}`)}`,
          `--listen-client-urls=${clientUrl(i)}`,
          `--advertise-client-urls=${clientUrl(i)}`,
          `--listen-peer-urls=${peerUrl(i)}`,
          `--initial-advertise-peer-urls=${peerUrl(i)}`,
          `--initial-cluster=${initialCluster}`,
          '--initial-cluster-state=new',
          `--initial-cluster-token=dmq-bench-${process.pid}`,
          ...common,
        ]),
    );
    const system = new EtcdSystem(members, root, common.join(' '));
    for (const m of members) m.start();
    return system;
  }

  request(workload: Workload, key: number, seq: number): Request {
    const k = b64(`/dmq/topics/bench-${key}/config`);
    switch (workload) {
      case 'write':
        return {
          method: 'POST',
          path: '/v3/kv/put',
          body: JSON.stringify({ key: k, value: b64(configValue(seq)) }),
          ok: 200,
        };
      case 'read':
        return { method: 'POST', path: '/v3/kv/range', body: JSON.stringify({ key: k }), ok: 200 };
      case 'local read':
        return {
          method: 'POST',
          path: '/v3/kv/range',
          body: JSON.stringify({ key: k, serializable: true }),
          ok: 200,
        };
    }
  }

  async status(client: HttpClient, m: Member): Promise<EtcdStatus> {
    const a = await client.request(m.port, 'POST', '/v3/maintenance/status', '{}', 1_000);
    if (a.status !== 200) throw new Error(`${m.label}: status ${a.status} ${a.body}`);
    return JSON.parse(a.body) as EtcdStatus;
  }

  async setup(client: HttpClient): Promise<void> {
    const leader = await this.leader(client);
    for (let k = 0; k < KEYS; k++) {
      const r = this.request('write', k, 0);
      const a = await client.request(leader.port, r.method, r.path, r.body);
      if (a.status !== r.ok) throw new Error(`etcd setup: ${a.status} ${a.body}`);
    }
  }

  async leader(client: HttpClient): Promise<Member> {
    return pollUntil('etcd: an agreed leader', async () => {
      const running = this.members.filter((m) => m.running);
      const views = await Promise.all(running.map((m) => this.status(client, m)));
      const leaderId = views[0]?.leader;
      if (leaderId === undefined || leaderId === '0' || views.some((v) => v.leader !== leaderId))
        return undefined;
      const i = views.findIndex((v) => v.header?.member_id === leaderId);
      return running[i];
    });
  }

  async caughtUp(client: HttpClient, leader: Member): Promise<void> {
    const target = Number((await this.status(client, leader)).raftIndex);
    await pollUntil('etcd: members caught up', async () => {
      const views = await Promise.all(
        this.members.filter((m) => m.running).map((m) => this.status(client, m)),
      );
      return views.every((v) => Number(v.raftAppliedIndex) >= target) ? true : undefined;
    });
  }

  async kill(member: Member): Promise<void> {
    await this.own(member).kill();
  }

  async restart(member: Member): Promise<void> {
    this.own(member).start();
    const client = new HttpClient();
    try {
      await pollUntil('etcd: restarted member answers', () => this.status(client, member));
    } finally {
      client.close();
    }
  }

  electedAfter(since: number): number | undefined {
    const times = this.members.flatMap((m) => m.becameLeader.filter((t) => t >= since));
    return times.length === 0 ? undefined : Math.min(...times);
  }

  async stop(): Promise<void> {
    await Promise.all(this.members.map((m) => m.kill()));
    rmSync(this.root, { recursive: true, force: true });
  }

  private own(member: Member): EtcdMember {
    const m = this.members.find((x) => x === member);
    if (m === undefined) throw new Error(`not an etcd member: ${member.label}`);
    return m;
  }
}

// -- ours --

const DMQ_ENV = { DMQ_BACKUP: 'off', DMQ_BROKER_SESSION_TIMEOUT_MS: '3600000' };

class DmqSystem implements System {
  readonly name = 'DMQ';
  readonly members: Member[];
  readonly histograms: readonly Histogram[] = [
    {
      label: 'leader HTTP handler (Express, first middleware → finish)',
      metric: 'dmq_http_request_seconds',
      filter: '/topics/',
      on: 'leader',
    },
    {
      label: 'leader proposal → commit + apply',
      metric: 'dmq_raft_proposal_seconds',
      on: 'leader',
    },
    {
      label: 'leader log sync (write + fdatasync)',
      metric: 'dmq_raft_fsync_seconds',
      on: 'leader',
    },
    {
      label: 'follower log sync (write + fdatasync)',
      metric: 'dmq_raft_fsync_seconds',
      on: 'follower',
    },
  ];

  private constructor(private readonly cluster: LocalCluster) {
    this.members = cluster.nodes.map((n) => ({
      label: `DMQ node ${n.id}`,
      port: n.port,
      get pid() {
        return n.child?.pid;
      },
      get running() {
        return n.running;
      },
    }));
  }

  static async start(): Promise<DmqSystem> {
    return new DmqSystem(await LocalCluster.start({ env: DMQ_ENV }));
  }

  request(workload: Workload, key: number, seq: number): Request {
    const topic = `/api/v1/topics/bench-${key}`;
    switch (workload) {
      case 'write':
        return {
          method: 'PUT',
          path: `${topic}/config`,
          body: `{"config":${configValue(seq)}}`,
          ok: 200,
        };
      case 'read':
        return { method: 'GET', path: topic, body: undefined, ok: 200 };
      case 'local read':
        return { method: 'GET', path: `${topic}?consistency=stale`, body: undefined, ok: 200 };
    }
  }

  async status(client: HttpClient, m: Member): Promise<ClusterStatus> {
    const a = await client.request(m.port, 'GET', '/api/v1/cluster', undefined, 1_000);
    if (a.status !== 200) throw new Error(`${m.label}: status ${a.status} ${a.body}`);
    return JSON.parse(a.body) as ClusterStatus;
  }

  async setup(client: HttpClient): Promise<void> {
    const leader = await this.leader(client);
    const post = async (p: string, body: unknown, ok: number) => {
      const a = await client.request(leader.port, 'POST', p, JSON.stringify(body));
      if (a.status !== ok) throw new Error(`DMQ setup ${p}: ${a.status} ${a.body}`);
    };
    await post('/api/v1/brokers', { brokerId: 1, host: '127.0.0.1', port: 9191 }, 200);
    for (let k = 0; k < KEYS; k++)
      await post(
        '/api/v1/topics',
        { name: `bench-${k}`, partitions: 1, replicationFactor: 1 },
        201,
      );
  }

  async leader(client: HttpClient): Promise<Member> {
    return pollUntil('DMQ: an agreed leader', async () => {
      const running = this.cluster.nodes.filter((n) => n.running);
      const views = await Promise.all(running.map((n) => this.status(client, this.member(n.id))));
      const leaderId = views[0]?.leaderId;
      if (leaderId === null || leaderId === undefined) return undefined;
      if (views.some((v) => v.leaderId !== leaderId)) return undefined;
      return running.some((n) => n.id === leaderId) ? this.member(leaderId) : undefined;
    });
  }

  async caughtUp(client: HttpClient, leader: Member): Promise<void> {
    const target = (await this.status(client, leader)).commitIndex;
    await pollUntil('DMQ: nodes caught up', async () => {
      const views = await Promise.all(
        this.members.filter((m) => m.running).map((m) => this.status(client, m)),
      );
      return views.every((v) => v.appliedIndex >= target) ? true : undefined;
    });
  }

  async kill(member: Member): Promise<void> {
    await this.node(member).kill('SIGKILL');
  }

  async restart(member: Member): Promise<void> {
    await this.node(member).start();
  }

  electedAfter(since: number): number | undefined {
    const times = this.cluster.nodes.flatMap((n) =>
      n.lines
        .filter((l) => l.msg === 'Raft role changed' && l['role'] === 'leader')
        .map((l) => Date.parse(String(l['time'])))
        .filter((t) => t >= since),
    );
    return times.length === 0 ? undefined : Math.min(...times);
  }

  async stop(): Promise<void> {
    await this.cluster.stop();
  }

  private member(id: number): Member {
    const m = this.members[this.cluster.nodes.findIndex((n) => n.id === id)];
    if (m === undefined) throw new Error(`no DMQ node ${id}`);
    return m;
  }

  private node(member: Member) {
    const n = this.cluster.nodes[this.members.indexOf(member)];
    if (n === undefined) throw new Error(`not a DMQ node: ${member.label}`);
    return n;
  }
}

// ---- CPU from /proc ----

const ownTicks = (): number => {
  const u = process.cpuUsage();
  return ((u.user + u.system) / 1e6) * CLOCK_TICKS;
};

interface CpuSnapshot {
  readonly at: number;
  readonly members: number[];
  readonly bench: number;
  readonly machine: number;
}

const cpuSnapshot = (system: System): CpuSnapshot => ({
  at: performance.now(),
  members: system.members.map((m) => processTicks(m.pid)),
  bench: ownTicks(),
  machine: machineBusyTicks(),
});

/** % of one core per process group between two snapshots. */
interface CpuUse {
  readonly leader: number;
  readonly followers: number;
  readonly bench: number;
  readonly rest: number;
  readonly machine: number;
  /** CPU ms of all members between the snapshots. */
  readonly serverMs: number;
}

function cpuUse(before: CpuSnapshot, after: CpuSnapshot, leaderIndex: number): CpuUse {
  const secs = (after.at - before.at) / 1_000;
  const pct = (ticks: number) => (ticks / CLOCK_TICKS / secs) * 100;
  const deltas = after.members.map((t, i) => t - (before.members[i] ?? 0));
  const leader = deltas[leaderIndex] ?? 0;
  const all = deltas.reduce((a, b) => a + b, 0);
  const bench = after.bench - before.bench;
  const machine = after.machine - before.machine;
  return {
    leader: pct(leader),
    followers: pct(all - leader),
    bench: pct(bench),
    // Never below 0 (the per-process and machine counters are sampled a moment apart).
    rest: Math.max(0, pct(machine - all - bench)),
    machine: pct(machine),
    serverMs: (all / CLOCK_TICKS) * 1_000,
  };
}

/** A process seen by the {@link ProcessWatcher}: CPU ticks when first and last seen. */
interface SeenProcess {
  readonly name: string;
  readonly ppid: number;
  /** 0 for a process that started during the watch (all its CPU time counts). */
  readonly first: number;
  readonly last: number;
}

/**
 * Scans /proc every second in a worker thread (so the reads never delay a measured request)
 * and keeps every process's CPU ticks at its first and last sighting: what else ran on the
 * machine, short-lived processes included (up to their last second).
 */
class ProcessWatcher {
  private readonly worker = new Worker(
    `
    const { parentPort } = require('node:worker_threads');
    const fs = require('node:fs');
    const seen = new Map();
    function scan(initial) {
      for (const entry of fs.readdirSync('/proc')) {
        if (!/^\\d+$/.test(entry)) continue;
        try {
          const stat = fs.readFileSync('/proc/' + entry + '/stat', 'utf8');
          const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
          const ticks = Number(f[11]) + Number(f[12]);
          const known = seen.get(entry);
          if (known !== undefined) { known.last = ticks; continue; }
          const cmd = fs.readFileSync('/proc/' + entry + '/cmdline', 'utf8').split('\\0').filter(Boolean);
          const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
          const name = cmd.length === 0 ? '[' + comm + ']' : cmd.join(' ').slice(0, 90);
          seen.set(entry, { name, ppid: Number(f[1]), first: initial ? ticks : 0, last: ticks });
        } catch {}
      }
    }
    scan(true);
    const timer = setInterval(() => scan(false), 1000);
    parentPort.on('message', (what) => {
      scan(false);
      if (what === 'stop') clearInterval(timer);
      parentPort.postMessage([...seen]);
    });
    `,
    { eval: true },
  );

  /** Every process seen so far, after a fresh scan. */
  async snapshot(): Promise<Map<number, SeenProcess>> {
    return this.ask('snapshot');
  }

  async stop(): Promise<Map<number, SeenProcess>> {
    const seen = await this.ask('stop');
    await this.worker.terminate();
    return seen;
  }

  private async ask(what: 'snapshot' | 'stop'): Promise<Map<number, SeenProcess>> {
    const answer = new Promise<Array<[string, SeenProcess]>>((resolve) =>
      this.worker.once('message', resolve),
    );
    this.worker.postMessage(what);
    const seen = await answer;
    return new Map(seen.map(([pid, proc]) => [Number(pid), proc]));
  }
}

const watcher = new ProcessWatcher();

/** Processes not started by this bench, by name: CPU ticks used between two snapshots. */
function othersBetween(
  before: Map<number, SeenProcess>,
  after: Map<number, SeenProcess>,
): Array<{ name: string; count: number; ticks: number }> {
  const byName = new Map<string, { count: number; ticks: number }>();
  for (const [pid, proc] of after) {
    if (ourPids.has(pid) || ourPids.has(proc.ppid)) continue; // ours, or a child of ours
    const ticks = proc.last - (before.get(pid)?.last ?? proc.first);
    if (ticks <= 0) continue;
    // One name for every PostgreSQL backend of a database (their titles end with the client).
    const name = proc.name.replace(/ \d+\.\d+\.\d+\.\d+\(\d+\).*$/, '');
    const seen = byName.get(name) ?? { count: 0, ticks: 0 };
    seen.count += 1;
    seen.ticks += ticks;
    byName.set(name, seen);
  }
  return [...byName].map(([name, o]) => ({ name, ...o })).sort((x, y) => y.ticks - x.ticks);
}

/** "N % (top: name x %, …)" of the other processes over `secs`. */
function describeOthers(
  others: ReadonlyArray<{ name: string; count: number; ticks: number }>,
  secs: number,
  top = 6,
): { pct: number; text: string } {
  const pct = (ticks: number) => (ticks / CLOCK_TICKS / secs) * 100;
  const total = pct(others.reduce((sum, o) => sum + o.ticks, 0));
  const named = others
    .filter((o) => pct(o.ticks) >= 0.5)
    .slice(0, top)
    .map((o) => `${o.count > 1 ? `${o.count}× ` : ''}\`${o.name}\` ${pct(o.ticks).toFixed(1)} %`);
  return {
    pct: total,
    text: named.length === 0 ? 'nothing ≥ 0.5 % of a core' : named.join('; '),
  };
}

/** Every process this bench started (nodes, etcd members, itself, its launcher). */
const ourPids = new Set<number>([process.pid, process.ppid]);
const ours = (system: System): void => {
  for (const m of system.members) if (m.pid !== undefined) ourPids.add(m.pid);
};

// ---- the workloads ----

const p = (values: readonly number[], q: number): number => quantile(values, q);
const max = (values: readonly number[]): number =>
  values.length === 0 ? Number.NaN : values.reduce((x, y) => Math.max(x, y), -Infinity);
const mean = (values: readonly number[]): number =>
  values.length === 0 ? Number.NaN : values.reduce((x, y) => x + y, 0) / values.length;

async function once(
  client: HttpClient,
  system: System,
  member: Member,
  workload: Workload,
  key: number,
  seq: number,
  timeoutMs?: number,
): Promise<void> {
  const r = system.request(workload, key, seq);
  const a = await client.request(member.port, r.method, r.path, r.body, timeoutMs);
  if (a.status !== r.ok) throw new Error(`${member.label} ${r.method} ${r.path}: ${a.status}`);
}

let seqCounter = 1;

interface Sequential {
  readonly latencies: number[];
  /** Per request: observations and seconds of each of the system's histograms. */
  readonly breakdown: Totals[];
}

async function sequential(
  client: HttpClient,
  system: System,
  leader: Member,
  workload: Workload,
): Promise<Sequential> {
  for (let i = 0; i < WARMUP_OPS; i++)
    await once(client, system, leader, workload, i % KEYS, seqCounter++);
  const before = await histogramTotals(client, system, leader);
  const latencies: number[] = [];
  for (let i = 0; i < ops; i++) {
    const started = performance.now();
    await once(client, system, leader, workload, i % KEYS, seqCounter++);
    latencies.push(performance.now() - started);
  }
  const after = await histogramTotals(client, system, leader);
  return { latencies, breakdown: perOp(before, after, ops) };
}

interface Throughput {
  readonly opsPerSec: number;
  readonly latencies: number[];
  readonly errors: number;
  readonly cpu: CpuUse;
  readonly cpuUsPerOp: number;
  readonly breakdown: Totals[];
}

async function closedLoop(
  client: HttpClient,
  system: System,
  leader: Member,
  workload: Workload,
  durationMs: number,
): Promise<{ latencies: number[]; errors: number; secs: number }> {
  const latencies: number[] = [];
  let errors = 0;
  const startedAt = performance.now();
  const endAt = startedAt + durationMs;
  await Promise.all(
    Array.from({ length: clients }, async (_, c) => {
      while (performance.now() < endAt) {
        const started = performance.now();
        try {
          await once(client, system, leader, workload, c % KEYS, seqCounter++);
          latencies.push(performance.now() - started);
        } catch {
          errors += 1;
        }
      }
    }),
  );
  return { latencies, errors, secs: (performance.now() - startedAt) / 1_000 };
}

async function throughput(
  client: HttpClient,
  system: System,
  leader: Member,
  workload: Workload,
): Promise<Throughput> {
  await closedLoop(client, system, leader, workload, WARMUP_MS);
  const leaderIndex = system.members.indexOf(leader);
  const before = await histogramTotals(client, system, leader);
  const cpuBefore = cpuSnapshot(system);
  const run = await closedLoop(client, system, leader, workload, seconds * 1_000);
  const cpuAfter = cpuSnapshot(system);
  const after = await histogramTotals(client, system, leader);
  const cpu = cpuUse(cpuBefore, cpuAfter, leaderIndex);
  return {
    opsPerSec: run.latencies.length / run.secs,
    latencies: run.latencies,
    errors: run.errors,
    cpu,
    cpuUsPerOp: (cpu.serverMs * 1_000) / run.latencies.length,
    breakdown: perOp(before, after, run.latencies.length),
  };
}

// ---- failover ----

interface FailoverRun {
  readonly electedMs: number;
  readonly ackMs: number;
  readonly attempts: number;
  readonly timedOut: number;
}

/**
 * One client writing back to back to `current`; on a failed request it sends the write to
 * every member every 10 ms (1 s timeout each) until one acknowledges it, then continues there.
 */
class FailoverWriter {
  readonly acks: Array<{ at: number; member: Member }> = [];
  attempts = 0;
  timedOut = 0;
  private stopped = false;
  private readonly outstanding = new Set<Promise<void>>();
  private readonly loop: Promise<void>;

  constructor(
    private readonly client: HttpClient,
    private readonly system: System,
    private current: Member,
  ) {
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      try {
        await once(this.client, this.system, this.current, 'write', 0, seqCounter++, 2_000);
        this.acks.push({ at: Date.now(), member: this.current });
      } catch {
        const winner = await this.hedge();
        if (winner !== undefined) this.current = winner;
      }
    }
  }

  private async hedge(): Promise<Member | undefined> {
    let winner: Member | undefined;
    const inFlight = new Map<Member, number>();
    while (winner === undefined && !this.stopped) {
      for (const m of this.system.members) {
        if ((inFlight.get(m) ?? 0) >= ATTEMPT_TIMEOUT_MS / HEDGE_EVERY_MS) continue;
        inFlight.set(m, (inFlight.get(m) ?? 0) + 1);
        this.attempts += 1;
        const attempt = once(
          this.client,
          this.system,
          m,
          'write',
          0,
          seqCounter++,
          ATTEMPT_TIMEOUT_MS,
        ).then(
          () => {
            this.acks.push({ at: Date.now(), member: m });
            winner ??= m;
          },
          (err: unknown) => {
            if (err instanceof Error && err.message === 'timeout') this.timedOut += 1;
          },
        );
        const tracked = attempt.finally(() => {
          inFlight.set(m, (inFlight.get(m) ?? 1) - 1);
          this.outstanding.delete(tracked);
        });
        this.outstanding.add(tracked);
      }
      await sleep(HEDGE_EVERY_MS);
    }
    return winner;
  }

  /** When the `count`-th write acknowledged after `after` (by a member but `except`) was. */
  async acknowledged(
    after: number,
    count: number,
    except?: Member,
    timeoutMs = 30_000,
  ): Promise<number> {
    return pollUntil(
      'failover: acknowledged write',
      () => {
        const later = this.acks.filter((a) => a.at > after && a.member !== except);
        return later.length >= count ? (later[0] as { at: number }).at : undefined;
      },
      timeoutMs,
      1,
    );
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
    await Promise.all([...this.outstanding]);
  }
}

async function failover(client: HttpClient, system: System): Promise<FailoverRun[]> {
  const results: FailoverRun[] = [];
  for (let run = 0; run < runs; run++) {
    const leader = await system.leader(client);
    await system.caughtUp(client, leader);
    const writer = new FailoverWriter(client, system, leader);
    await writer.acknowledged(0, 5);
    const killedAt = Date.now();
    const killed = system.kill(leader);
    // The first write a survivor acknowledged (an answer the old leader sent just before
    // SIGKILL landed may still arrive after `killedAt`: not the new leader's).
    const ackAt = await writer.acknowledged(killedAt, 1, leader);
    await writer.stop();
    await killed;
    const electedAt = await pollUntil(
      `${system.name}: new leader in the logs`,
      () => system.electedAfter(killedAt),
      5_000,
    );
    results.push({
      electedMs: electedAt - killedAt,
      ackMs: ackAt - killedAt,
      attempts: writer.attempts,
      timedOut: writer.timedOut,
    });
    process.stderr.write(
      `${system.name} failover ${run + 1}/${runs}: leader ${electedAt - killedAt} ms, ` +
        `first write ${ackAt - killedAt} ms (${writer.attempts} attempts, ${writer.timedOut} timed out)\n`,
    );
    await system.restart(leader);
    ours(system);
  }
  await system.caughtUp(client, await system.leader(client));
  return results;
}

// ---- one system, every phase ----

interface SystemResult {
  readonly name: string;
  readonly version: string;
  readonly histograms: readonly Histogram[];
  readonly latency: Map<Workload, Sequential>;
  readonly throughput: Map<Workload, Throughput>;
  readonly failover: FailoverRun[];
  /** CPU over the latency and throughput phases, by group. */
  readonly cpu: CpuUse | undefined;
  readonly sizes: Map<Workload, { request: number; response: number }>;
  readonly wallSecs: number;
  readonly others: OtherWork[];
}

/** What processes not started by this bench used during one phase. */
interface OtherWork {
  readonly phase: string;
  readonly pct: number;
  readonly text: string;
}

async function measure(
  start: () => Promise<System>,
  version: (client: HttpClient, leader: Member) => Promise<string>,
): Promise<SystemResult> {
  const began = performance.now();
  const system = await start();
  const client = new HttpClient();
  try {
    const leader = await system.leader(client);
    await system.setup(client);
    await system.caughtUp(client, leader);
    const sizes = new Map<Workload, { request: number; response: number }>();
    for (const w of WORKLOADS) {
      const r = system.request(w, 0, 1);
      const a = await client.request(leader.port, r.method, r.path, r.body);
      sizes.set(w, {
        request: Buffer.byteLength(r.body ?? ''),
        response: Buffer.byteLength(a.body),
      });
    }
    const latency = new Map<Workload, Sequential>();
    const tput = new Map<Workload, Throughput>();
    const others: OtherWork[] = [];
    /** Runs `body` and records what other processes used meanwhile. */
    const phase = async <T>(name: string, body: () => Promise<T>): Promise<T> => {
      const before = await watcher.snapshot();
      const startedAt = performance.now();
      const result = await body();
      const secs = (performance.now() - startedAt) / 1_000;
      others.push({
        phase: name,
        ...describeOthers(othersBetween(before, await watcher.snapshot()), secs, 3),
      });
      return result;
    };
    const cpuBefore = cpuSnapshot(system);
    if (only.has('latency')) {
      await phase('sequential', async () => {
        for (const w of WORKLOADS) {
          process.stderr.write(`${system.name}: sequential ${w}\n`);
          latency.set(w, await sequential(client, system, leader, w));
        }
      });
    }
    if (only.has('throughput')) {
      for (const w of WORKLOADS) {
        process.stderr.write(`${system.name}: ${clients} clients, ${w}, ${seconds} s\n`);
        tput.set(
          w,
          await phase(`${clients} clients ${w}`, () => throughput(client, system, leader, w)),
        );
      }
    }
    const cpu =
      only.has('latency') || only.has('throughput')
        ? cpuUse(cpuBefore, cpuSnapshot(system), system.members.indexOf(leader))
        : undefined;
    const v = await version(client, leader);
    const fo = only.has('failover') ? await phase('failover', () => failover(client, system)) : [];
    return {
      name: system.name,
      version: v,
      histograms: system.histograms,
      latency,
      throughput: tput,
      failover: fo,
      cpu,
      sizes,
      wallSecs: (performance.now() - began) / 1_000,
      others,
    };
  } finally {
    client.close();
    await system.stop();
  }
}

// ---- report ----

const f2 = (v: number): string => ms(v, 2);
const n0 = (v: number): string => Math.round(v).toLocaleString('en-US');

function gitDescribe(): string {
  try {
    const rev = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], {
      encoding: 'utf8',
    }).trim();
    return dirty === '' ? rev : `${rev} (+ uncommitted changes in the working tree)`;
  } catch {
    return 'unknown';
  }
}

function debianVersion(pkg: string): string {
  try {
    return execFileSync('dpkg-query', ['-W', '-f=${Version}', pkg], { encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

async function main(): Promise<void> {
  if (!existsSync(ETCD))
    throw new Error(`${ETCD} not found: apt-get install -y etcd-server etcd-client (Debian's 3.4)`);
  const dmqConfig = loadConfig({ DMQ_NODE_ID: '1', DMQ_PEERS: '1=127.0.0.1:1' });
  const startedAt = new Date();
  const machineBefore = machineBusyTicks();
  const wallBefore = performance.now();

  let etcdFlags = '';
  const etcd = () =>
    measure(
      async () => {
        const s = await EtcdSystem.start();
        etcdFlags = s.flags;
        ours(s);
        return s;
      },
      async (client, leader) => {
        const a = await client.request(leader.port, 'GET', '/version', undefined);
        return `etcd ${(JSON.parse(a.body) as { etcdserver?: string }).etcdserver ?? '?'}`;
      },
    );
  const dmq = () =>
    measure(
      async () => {
        const s = await DmqSystem.start();
        ours(s);
        return s;
      },
      () => Promise.resolve(`DMQ ${gitDescribe()}`),
    );
  const results =
    first === 'etcd' ? [await etcd(), await dmq()] : [await dmq(), await etcd()].reverse();
  const [e, d] = results as [SystemResult, SystemResult];
  const both = [e, d];

  const wallSecs = (performance.now() - wallBefore) / 1_000;
  const machinePct = ((machineBusyTicks() - machineBefore) / CLOCK_TICKS / wallSecs) * 100;
  const overall = describeOthers(othersBetween(new Map(), await watcher.stop()), wallSecs);

  const etcdVersionLine = execFileSync(ETCD, ['--version'], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => /Version/.test(l))
    .join(', ');

  const out: string[] = [
    '### etcd 3.4 comparison — `npm run bench -- etcd-compare`',
    '',
    `Measured ${startedAt.toISOString()} (${first} first), Node ${process.version}, ` +
      `${os.cpus().length} cores. ${e.version} (Debian etcd-server ${debianVersion('etcd-server')}: ${etcdVersionLine}); ` +
      `${d.version}.`,
    '',
    `- etcd: 3 members on loopback, temp data dirs, \`${etcdFlags}\` ` +
      '(WAL fdatasync before a proposal is acknowledged, as always in etcd; check-quorum is always on in etcd). ' +
      `Requests through the JSON gateway (grpc-gateway, which re-issues each request as a gRPC call to the member itself).`,
    `- DMQ: 3 node processes (\`node --import tsx src/main.ts\`), temp data dirs, \`DMQ_BACKUP=off\`, ` +
      `config defaults: heartbeat ${dmqConfig.raft.heartbeatIntervalMs} ms, election timeout ` +
      `${dmqConfig.raft.electionTimeoutMs} ms (randomized to [${dmqConfig.raft.electionTimeoutMs}, ` +
      `${2 * dmqConfig.raft.electionTimeoutMs})), pre-vote and check-quorum on, snapshot every ` +
      `${dmqConfig.raft.snapshotEveryEntries} entries; the Raft log is fdatasynced before an entry counts ` +
      'as persisted (group commit).',
    `- Both: one client implementation (\`node:http\`, keep-alive \`http.Agent\`, TCP_NODELAY), ` +
      `every request to the leader, ${KEYS} keys / topics (\`bench-k\`, 1 partition, RF 1). ` +
      'Bytes per request → response body: ' +
      WORKLOADS.map(
        (w) =>
          `${w} ${both.map((r) => `${r.name} ${r.sizes.get(w)?.request ?? 0} → ${r.sizes.get(w)?.response ?? 0}`).join(', ')}`,
      ).join('; ') +
      '.',
    '- Workloads: write = etcd `POST /v3/kv/put` / DMQ `PUT /api/v1/topics/{name}/config`; ' +
      'read (linearizable) = etcd `POST /v3/kv/range` / DMQ `GET /api/v1/topics/{name}`; ' +
      'local read (no consensus, per-request cost of the HTTP stack) = etcd `range` with ' +
      '`serializable: true` / DMQ `?consistency=stale`.',
    '',
  ];

  if (only.has('latency')) {
    out.push(
      `**Sequential latency**: 1 client, ${ops} requests each (after ${WARMUP_OPS} of warm-up), ms:`,
      '',
      table(
        ['workload', ...both.map((r) => `${r.name} p50 / p99 / max`)],
        WORKLOADS.map((w) => [
          w,
          ...both.map((r) => {
            const s = r.latency.get(w)?.latencies ?? [];
            return `${f2(p(s, 0.5))} / ${f2(p(s, 0.99))} / ${f2(max(s))}`;
          }),
        ]),
      ),
      '',
    );
  }
  if (only.has('throughput')) {
    const rows: string[][] = [];
    for (const w of WORKLOADS) {
      for (const r of both) {
        const t = r.throughput.get(w);
        if (t === undefined) continue;
        rows.push([
          w,
          r.name,
          `**${n0(t.opsPerSec)}**`,
          `${f2(p(t.latencies, 0.5))} / ${f2(p(t.latencies, 0.99))}`,
          String(t.errors),
          n0(t.cpu.leader),
          n0(t.cpu.followers),
          n0(t.cpu.bench),
          n0(t.cpu.rest),
          n0(t.cpuUsPerOp),
        ]);
      }
    }
    out.push(
      `**Throughput**: ${clients} concurrent clients, closed loop, ${seconds} s per workload (after ${WARMUP_MS / 1000} s of warm-up). ` +
        'CPU in % of one core (the machine has 200 %); "rest" is everything else on the machine (other work, kernel); ' +
        'server CPU per op = CPU time of all 3 members / acknowledged ops:',
      '',
      table(
        [
          'workload',
          'system',
          'ops/s',
          'p50 / p99 ms',
          'errors',
          'CPU leader',
          'CPU 2 followers',
          'CPU bench client',
          'CPU rest',
          'server CPU µs/op',
        ],
        rows,
      ),
      '',
    );
  }
  // Where the time goes: the servers' own histograms, per request.
  const cell = (t: Totals | undefined): string =>
    t === undefined || t.count === 0
      ? '—'
      : `${f2((t.seconds / t.count) * 1_000)} × ${t.count.toFixed(2)}`;
  for (const r of both) {
    const columns: Array<{ title: string; latencies: number[]; breakdown: Totals[] }> = [];
    for (const w of WORKLOADS) {
      const s = r.latency.get(w);
      if (s !== undefined) columns.push({ title: `${w}, 1 client`, ...s });
    }
    const t = r.throughput.get('write');
    if (t !== undefined) columns.push({ title: `write, ${clients} clients`, ...t });
    if (columns.length === 0) continue;
    out.push(
      `Where a request's time goes, ${r.name} (server histograms from /metrics: mean ms × observations per request):`,
      '',
      table(
        ['', ...columns.map((c) => c.title)],
        [
          ['client-observed latency, mean', ...columns.map((c) => f2(mean(c.latencies)))],
          ...r.histograms.map((h, i) => [h.label, ...columns.map((c) => cell(c.breakdown[i]))]),
        ],
      ),
      '',
    );
  }
  if (only.has('failover')) {
    const col = (r: SystemResult, f: (x: FailoverRun) => number) => r.failover.map(f);
    const pm = (v: number[]) => `${n0(p(v, 0.5))} / ${n0(max(v))}`;
    out.push(
      `**Failover**: ${runs} runs each of kill -9 on the leader while one client writes back to back; ` +
        `on its first failure the client sends the write to every member every ${HEDGE_EVERY_MS} ms ` +
        `(each attempt ${ATTEMPT_TIMEOUT_MS} ms timeout) until one acknowledges. ms after the kill, p50 / max:`,
      '',
      table(
        [
          'system (heartbeat / election timeout)',
          'new leader in office (logs)',
          'first acknowledged write',
          'attempts (timed out) per run, p50',
        ],
        both.map((r) => [
          r.name === 'etcd'
            ? `etcd (${etcdHeartbeatMs} / ${etcdElectionMs} ms)`
            : `DMQ (${dmqConfig.raft.heartbeatIntervalMs} / ${dmqConfig.raft.electionTimeoutMs} ms)`,
          pm(col(r, (x) => x.electedMs)),
          `**${pm(col(r, (x) => x.ackMs))}**`,
          `${n0(
            p(
              col(r, (x) => x.attempts),
              0.5,
            ),
          )} (${n0(
            p(
              col(r, (x) => x.timedOut),
              0.5,
            ),
          )})`,
        ]),
      ),
      '',
      both
        .map(
          (r) => `${r.name} runs (first write, ms): ${r.failover.map((x) => x.ackMs).join(', ')}.`,
        )
        .join(' '),
      '',
    );
  }
  out.push(
    'CPU by process group over the latency and throughput phases of each system (% of one core):',
    '',
    table(
      ['system', 'wall s (all phases)', 'leader', '2 followers', 'bench client', 'rest of machine'],
      both.map((r) =>
        r.cpu === undefined
          ? [r.name, n0(r.wallSecs), 'n/a', 'n/a', 'n/a', 'n/a']
          : [
              r.name,
              n0(r.wallSecs),
              n0(r.cpu.leader),
              n0(r.cpu.followers),
              n0(r.cpu.bench),
              n0(r.cpu.rest),
            ],
      ),
    ),
    '',
    'Other work during each phase (processes not started by this bench, seen every second; % of one core):',
    '',
    ...both.map(
      (r) =>
        `- ${r.name}: ` +
        r.others
          .map((o) => `${o.phase} ${o.pct.toFixed(1)} %${o.pct >= 5 ? ` (${o.text})` : ''}`)
          .join('; ') +
        '.',
    ),
    '',
    `Whole bench: ${n0(wallSecs)} s, machine ${n0(machinePct)} % busy on average (of 200 %); ` +
      `other processes ${overall.pct.toFixed(1)} %: ${overall.text}.`,
  );
  console.log(out.join('\n'));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
