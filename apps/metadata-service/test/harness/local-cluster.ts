import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { MetadataClient } from '@dmq/metadata-client';

const MAIN = path.resolve(__dirname, '../../src/main.ts');

/** One JSON log line of a node. */
export type LogLine = Record<string, unknown> & { msg?: string; level?: string };

interface LogWaiter {
  predicate: (line: LogLine) => boolean;
  resolve: (line: LogLine) => void;
}

/** A metadata node running as a real child process on loopback. */
export class NodeProcess {
  child: ChildProcess | undefined;
  readonly lines: LogLine[] = [];
  private waiters: LogWaiter[] = [];
  private exitWaiters: Array<(code: number | null) => void> = [];

  constructor(
    readonly id: number,
    readonly port: number,
    readonly dataDir: string,
    private readonly env: Record<string, string>,
  ) {}

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  get url(): string {
    return `http://${this.address}`;
  }

  get running(): boolean {
    return (
      this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null
    );
  }

  /** Starts the process; resolves once its HTTP server listens. */
  async start(extraEnv: Record<string, string> = {}): Promise<void> {
    const child = spawn(process.execPath, ['--import', 'tsx', MAIN], {
      env: { ...process.env, ...this.env, ...extraEnv, DMQ_DATA_DIR: this.dataDir },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    const onLine = (text: string) => {
      let line: LogLine;
      try {
        line = JSON.parse(text) as LogLine;
      } catch {
        line = { msg: text, level: 'raw' };
      }
      this.lines.push(line);
      for (const waiter of [...this.waiters]) {
        if (waiter.predicate(line)) {
          this.waiters.splice(this.waiters.indexOf(waiter), 1);
          waiter.resolve(line);
        }
      }
    };
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', onLine);
    createInterface({ input: child.stderr as NodeJS.ReadableStream }).on('line', onLine);
    child.on('exit', (code) => {
      for (const resolve of this.exitWaiters.splice(0)) resolve(code);
    });
    await Promise.race([
      this.waitForLog((l) => l.msg === 'HTTP server listening', 30_000),
      this.exited().then((code) => {
        throw new Error(`node ${this.id} exited with ${code} during start:\n${this.tail(30)}`);
      }),
    ]);
  }

  /** Resolves with the first log line (past lines included) that matches. */
  waitForLog(
    predicate: (line: LogLine) => boolean,
    timeoutMs = 20_000,
    fromIndex = 0,
  ): Promise<LogLine> {
    const seen = this.lines.slice(fromIndex).find(predicate);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const waiter: LogWaiter = {
        predicate,
        resolve: (line) => {
          clearTimeout(timer);
          resolve(line);
        },
      };
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        reject(
          new Error(
            `node ${this.id}: no matching log line within ${timeoutMs} ms:\n${this.tail(30)}`,
          ),
        );
      }, timeoutMs);
      // A waiter nobody awaits any more (the loser of a Promise.any) must not keep the test
      // process alive until its deadline.
      timer.unref();
      this.waiters.push(waiter);
    });
  }

  exited(): Promise<number | null> {
    if (this.child === undefined || !this.running)
      return Promise.resolve(this.child?.exitCode ?? null);
    return new Promise((resolve) => this.exitWaiters.push(resolve));
  }

  /** Sends `signal` and waits for the process to end. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<number | null> {
    if (!this.running) return this.child?.exitCode ?? null;
    const done = this.exited();
    this.child?.kill(signal);
    return done;
  }

  tail(count: number): string {
    return this.lines
      .slice(-count)
      .map((l) => JSON.stringify(l))
      .join('\n');
  }
}

/** Finds `count` free TCP ports on 127.0.0.1. */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<net.Server>((resolve) => {
          const server = net.createServer();
          server.listen(0, '127.0.0.1', () => resolve(server));
        }),
    ),
  );
  const ports = servers.map((s) => (s.address() as net.AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  return ports;
}

export interface LocalClusterOptions {
  readonly size?: number;
  /** Extra environment for every node. */
  readonly env?: Record<string, string>;
  /** Extra environment for some nodes, by id (after `env`; kept across restarts). */
  readonly nodeEnv?: Readonly<Record<number, Record<string, string>>>;
}

/**
 * Calls `probe` until it returns a value other than `undefined` (or `timeoutMs` passes: then
 * throws, naming `what` and the last error). Waits `intervalMs` between calls.
 */
export async function pollUntil<T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 20_000,
  intervalMs = 25,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const why = lastError === undefined ? '' : `: last error ${String(lastError)}`;
      throw new Error(`${what}: not within ${timeoutMs} ms${why}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** A cluster of metadata nodes as child processes with their own data directories. */
export class LocalCluster {
  private constructor(
    readonly nodes: NodeProcess[],
    readonly root: string,
    readonly peers: string,
    private readonly env: Record<string, string> = {},
  ) {}

  /**
   * Starts one more node process that joins the running cluster (`DMQ_JOIN=true`, its
   * `DMQ_PEERS` = the cluster's plus itself). It is not a member until an operator adds it
   * with `POST /cluster/members`.
   */
  async startJoiningNode(extraEnv: Record<string, string> = {}): Promise<NodeProcess> {
    const [port] = await freePorts(1);
    if (port === undefined) throw new Error('no free port');
    const id = Math.max(...this.nodes.map((n) => n.id)) + 1;
    const node = new NodeProcess(id, port, path.join(this.root, `node-${id}`), {
      ...this.baseEnv(id, `${this.peers},${id}=127.0.0.1:${port}`),
      DMQ_JOIN: 'true',
      ...extraEnv,
    });
    this.nodes.push(node);
    await node.start();
    return node;
  }

  private baseEnv(id: number, peers: string): Record<string, string> {
    return {
      DMQ_NODE_ID: String(id),
      DMQ_PEERS: peers,
      DMQ_HTTP_HOST: '127.0.0.1',
      DMQ_BACKUP: 'off',
      DMQ_LOG_LEVEL: 'info',
      DMQ_CLUSTER_SECRET: 'test-secret',
      ...this.env,
    };
  }

  static async start(options: LocalClusterOptions = {}): Promise<LocalCluster> {
    const size = options.size ?? 3;
    const ports = await freePorts(size);
    const peers = ports.map((port, i) => `${i + 1}=127.0.0.1:${port}`).join(',');
    const root = mkdtempSync(path.join(os.tmpdir(), 'dmq-cluster-'));
    const cluster = new LocalCluster([], root, peers, options.env);
    cluster.nodes.push(
      ...ports.map(
        (port, i) =>
          new NodeProcess(i + 1, port, path.join(root, `node-${i + 1}`), {
            ...cluster.baseEnv(i + 1, peers),
            ...options.nodeEnv?.[i + 1],
          }),
      ),
    );
    const nodes = cluster.nodes;
    try {
      await Promise.all(nodes.map((n) => n.start()));
    } catch (err) {
      await cluster.stop();
      throw err;
    }
    return cluster;
  }

  node(id: number): NodeProcess {
    const node = this.nodes.find((n) => n.id === id);
    if (node === undefined) throw new Error(`no node ${id}`);
    return node;
  }

  /** A client that knows every node (or only `ids`). */
  client(ids?: number[]): MetadataClient {
    const nodes = this.nodes.filter((n) => ids === undefined || ids.includes(n.id));
    return new MetadataClient({
      nodes: nodes.map((n) => ({ id: n.id, address: n.address })),
      maxAttempts: 50,
      deadlineMs: 30_000,
      initialBackoffMs: 20,
      maxBackoffMs: 200,
    });
  }

  /**
   * Resolves with the leader's id once every running node agrees on one leader
   * (asks each node's `/cluster`, with a deadline).
   */
  async waitForLeader(timeoutMs = 20_000, exclude: number[] = []): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    const client = this.client();
    try {
      while (Date.now() < deadline) {
        const running = this.nodes.filter((n) => n.running && !exclude.includes(n.id));
        const views = await Promise.all(
          running.map((n) =>
            client.clusterStatus({ node: n.id, deadlineMs: 1_000 }).then(
              (s) => s.leaderId,
              () => null,
            ),
          ),
        );
        const leader = views[0];
        if (
          leader !== null &&
          leader !== undefined &&
          !exclude.includes(leader) &&
          views.every((v) => v === leader)
        ) {
          return leader;
        }
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    } finally {
      await client.close();
    }
    throw new Error(
      `no agreed leader within ${timeoutMs} ms:\n${this.nodes.map((n) => n.tail(10)).join('\n')}`,
    );
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.kill('SIGKILL')));
    rmSync(this.root, { recursive: true, force: true });
  }
}
