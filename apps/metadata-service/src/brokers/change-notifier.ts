import http from 'node:http';
import https from 'node:https';

export interface NotifierOptions {
  readonly clusterId: string;
  /** Most notices in flight at once, over all brokers (default 8). */
  readonly concurrency?: number;
  /** Per-request timeout (default 2 s). */
  readonly timeoutMs?: number;
  /** Attempts per broker and version before giving up (default 5). */
  readonly maxAttempts?: number;
  /** First retry delay; doubles per attempt (default 100 ms, at most 5 s). */
  readonly backoffMs?: number;
  readonly logger: { debug(obj: object, msg: string): void; warn(obj: object, msg: string): void };
}

export interface NoticeTarget {
  readonly brokerId: number;
  readonly url: string;
}

interface BrokerState {
  url: string;
  /** Newest version this broker should hear about. */
  wanted: number;
  /** Newest version it acknowledged. */
  delivered: number;
  attempts: number;
  busy: boolean;
}

/**
 * Pushes "metadata changed" notices (`{clusterId, version}`) to brokers that registered a
 * push endpoint, as the seed plan's "push to storage services" — best effort, never in the
 * way: `notify()` returns at once, a burst of changes becomes one notice per broker with the
 * newest version, at most `concurrency` requests run at once, failures retry with
 * exponential backoff and are dropped after `maxAttempts` (the broker's own long-poll still
 * sees the change). One slow broker holds at most one request slot at a time.
 */
export class ChangeNotifier {
  private readonly brokers = new Map<number, BrokerState>();
  private readonly ready: number[] = [];
  private inFlight = 0;
  private closed = false;
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly settings: Required<Omit<NotifierOptions, 'logger' | 'clusterId'>>;
  private readonly httpAgent = new http.Agent({ keepAlive: true });
  private readonly httpsAgent = new https.Agent({ keepAlive: true });
  private idleWaiters: Array<() => void> = [];
  readonly stats = { sent: 0, failed: 0, abandoned: 0 };

  constructor(private readonly options: NotifierOptions) {
    this.settings = {
      concurrency: 8,
      timeoutMs: 2_000,
      maxAttempts: 5,
      backoffMs: 100,
      ...options,
    };
  }

  /** Asks for `version` to reach every target (brokers not listed are forgotten). */
  notify(version: number, targets: readonly NoticeTarget[]): void {
    if (this.closed) return;
    const listed = new Set<number>();
    for (const target of targets) {
      listed.add(target.brokerId);
      let state = this.brokers.get(target.brokerId);
      if (state === undefined || state.url !== target.url) {
        state = { url: target.url, wanted: version, delivered: 0, attempts: 0, busy: false };
        this.brokers.set(target.brokerId, state);
        this.enqueue(target.brokerId);
      } else if (version > state.wanted) {
        state.wanted = version;
        state.attempts = 0;
        if (!state.busy) this.enqueue(target.brokerId);
      }
    }
    for (const id of [...this.brokers.keys()]) if (!listed.has(id)) this.brokers.delete(id);
    this.pump();
  }

  /** Resolves once nothing is queued, in flight or waiting to retry. */
  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  close(): void {
    this.closed = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
    this.wakeIdle(true);
  }

  private isIdle(): boolean {
    return this.inFlight === 0 && this.ready.length === 0 && this.timers.size === 0;
  }

  private wakeIdle(force = false): void {
    if (!force && !this.isIdle()) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }

  private enqueue(brokerId: number): void {
    if (!this.ready.includes(brokerId)) this.ready.push(brokerId);
  }

  private pump(): void {
    while (!this.closed && this.inFlight < this.settings.concurrency && this.ready.length > 0) {
      const brokerId = this.ready.shift() as number;
      const state = this.brokers.get(brokerId);
      if (state === undefined || state.busy || state.delivered >= state.wanted) continue;
      void this.deliver(brokerId, state);
    }
    this.wakeIdle();
  }

  private async deliver(brokerId: number, state: BrokerState): Promise<void> {
    state.busy = true;
    this.inFlight += 1;
    const version = state.wanted;
    try {
      await this.post(state.url, { clusterId: this.options.clusterId, version });
      state.delivered = Math.max(state.delivered, version);
      state.attempts = 0;
      this.stats.sent += 1;
      this.options.logger.debug({ brokerId, version }, 'pushed metadata change notice');
    } catch (err) {
      this.stats.failed += 1;
      state.attempts += 1;
      if (state.attempts >= this.settings.maxAttempts) {
        this.stats.abandoned += 1;
        this.options.logger.warn(
          { brokerId, version, attempts: state.attempts, err: (err as Error).message },
          'giving up pushing a change notice; the broker will see the change by long-poll',
        );
        state.delivered = Math.max(state.delivered, version);
        state.attempts = 0;
      } else {
        const delay = Math.min(5_000, this.settings.backoffMs * 2 ** (state.attempts - 1));
        const timer = setTimeout(() => {
          this.timers.delete(timer);
          this.enqueue(brokerId);
          this.pump();
        }, delay);
        timer.unref();
        this.timers.add(timer);
      }
    } finally {
      state.busy = false;
      this.inFlight -= 1;
      if (
        state.delivered < state.wanted &&
        state.attempts === 0 &&
        this.brokers.get(brokerId) === state
      ) {
        this.enqueue(brokerId);
      }
      this.pump();
    }
  }

  private post(url: string, body: object): Promise<void> {
    const payload = JSON.stringify(body);
    const target = new URL(url);
    const client = target.protocol === 'https:' ? https : http;
    return new Promise<void>((resolve, reject) => {
      const req = client.request(
        target,
        {
          method: 'POST',
          agent: target.protocol === 'https:' ? this.httpsAgent : this.httpAgent,
          timeout: this.settings.timeoutMs,
          headers: {
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(payload),
          },
        },
        (res) => {
          res.resume();
          res.on('end', () => {
            const status = res.statusCode ?? 0;
            if (status >= 200 && status < 300) resolve();
            else reject(new Error(`broker answered ${status}`));
          });
        },
      );
      req.on('timeout', () =>
        req.destroy(new Error(`no answer within ${this.settings.timeoutMs} ms`)),
      );
      req.on('error', reject);
      req.end(payload);
    });
  }
}
