import { createHistogram, type RecordableHistogram } from 'node:perf_hooks';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** A point-in-time view of Raft for the gauges, sampled at scrape time. */
export interface RaftGaugeSource {
  readonly term: number;
  readonly role: string;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  readonly snapshotIndex: number;
  /** Leader: payload bytes it appended and has not yet applied (0 on followers). */
  readonly uncommittedBytes: number;
  readonly peers: ReadonlyArray<{
    readonly id: number;
    readonly matchIndex: number | null;
    readonly lastContactMs: number | null;
  }>;
}

export interface BackupGaugeSource {
  readonly lagEntries: number | null;
  readonly lagMs: number | null;
}

const ROLES = ['leader', 'follower', 'candidate', 'pre-candidate'] as const;

/**
 * The service's Prometheus metrics, in a registry of its own (several nodes can live in one
 * test process). Gauges read their value from the sources at scrape time, so nothing on the
 * hot path updates them; histograms are observed where the work happens.
 */
export class ServiceMetrics {
  readonly registry = new Registry();
  readonly proposalSeconds: Histogram<'outcome'>;
  readonly fsyncSeconds: Histogram;
  readonly httpSeconds: Histogram<'route' | 'method' | 'status'>;
  readonly transportDropped: Counter<'peer'>;
  private readonly eventLoopDelay: EventLoopDelaySampler;

  constructor(
    nodeId: number,
    raft: () => RaftGaugeSource,
    backup: () => BackupGaugeSource,
    options: { defaultMetrics?: boolean; eventLoopResolutionMs?: number } = {},
  ) {
    this.registry.setDefaultLabels({ node: String(nodeId) });
    if (options.defaultMetrics !== false)
      collectDefaultMetrics({ register: this.registry, prefix: 'dmq_' });
    const registers = [this.registry];

    new Gauge({
      name: 'dmq_raft_term',
      help: 'Current Raft term of this node.',
      registers,
      collect() {
        this.set(raft().term);
      },
    });
    new Gauge({
      name: 'dmq_raft_role',
      help: '1 for the role this node has now, 0 for the others.',
      labelNames: ['role'] as const,
      registers,
      collect() {
        const role = raft().role;
        for (const r of ROLES) this.set({ role: r }, r === role ? 1 : 0);
      },
    });
    new Gauge({
      name: 'dmq_raft_commit_index',
      help: 'Highest log index known committed.',
      registers,
      collect() {
        this.set(raft().commitIndex);
      },
    });
    new Gauge({
      name: 'dmq_raft_applied_index',
      help: 'Highest log index applied to the state machine (the metadata version).',
      registers,
      collect() {
        this.set(raft().appliedIndex);
      },
    });
    new Gauge({
      name: 'dmq_raft_snapshot_index',
      help: 'Index of the latest snapshot.',
      registers,
      collect() {
        this.set(raft().snapshotIndex);
      },
    });
    new Gauge({
      name: 'dmq_raft_uncommitted_bytes',
      help: "Leader: payload bytes of entries appended and not yet applied; at Raft's maxUncommittedEntriesSize (default 64 MiB) new writes get 503 until followers catch up. 0 on followers.",
      registers,
      collect() {
        this.set(raft().uncommittedBytes);
      },
    });
    new Gauge({
      name: 'dmq_raft_peer_match_index',
      help: "Highest index known replicated on each peer (leader's view).",
      labelNames: ['peer'] as const,
      registers,
      collect() {
        this.reset();
        for (const p of raft().peers)
          if (p.matchIndex !== null) this.set({ peer: String(p.id) }, p.matchIndex);
      },
    });
    new Gauge({
      name: 'dmq_raft_peer_lag_entries',
      help: "Entries each peer is behind the leader's commit index.",
      labelNames: ['peer'] as const,
      registers,
      collect() {
        this.reset();
        const status = raft();
        for (const p of status.peers) {
          if (p.matchIndex !== null)
            this.set({ peer: String(p.id) }, Math.max(0, status.commitIndex - p.matchIndex));
        }
      },
    });
    new Gauge({
      name: 'dmq_raft_peer_last_contact_seconds',
      help: 'Seconds since the leader last heard from each peer.',
      labelNames: ['peer'] as const,
      registers,
      collect() {
        this.reset();
        for (const p of raft().peers)
          if (p.lastContactMs !== null) this.set({ peer: String(p.id) }, p.lastContactMs / 1000);
      },
    });
    new Gauge({
      name: 'dmq_backup_lag_entries',
      help: 'Committed entries not yet reflected in the PostgreSQL backup (-1 when unknown).',
      registers,
      collect() {
        this.set(backup().lagEntries ?? -1);
      },
    });
    new Gauge({
      name: 'dmq_backup_lag_seconds',
      help: 'Age of the oldest change not yet in the PostgreSQL backup (-1 when unknown).',
      registers,
      collect() {
        const ms = backup().lagMs;
        this.set(ms === null ? -1 : ms / 1000);
      },
    });

    // How late the event loop ran a timer that should fire every `resolution` ms. The window
    // is "since the previous scrape": collecting resets it, so with one scraper the max is the
    // worst stall of the last scrape interval (a second scraper shortens the window). Our own
    // sampler rather than perf_hooks' monitorEventLoopDelay, whose reset() also drops the
    // sample in progress (a stall that starts right after a scrape would go unreported).
    const eventLoopDelay = new EventLoopDelaySampler(options.eventLoopResolutionMs ?? 10);
    this.eventLoopDelay = eventLoopDelay;
    new Gauge({
      name: 'dmq_event_loop_delay_seconds',
      help: 'Event loop delay since the previous scrape (quantile="max", "0.99", "0.5").',
      labelNames: ['quantile'] as const,
      registers,
      collect() {
        const { max, p99, p50 } = eventLoopDelay.takeWindow();
        this.set({ quantile: 'max' }, max);
        this.set({ quantile: '0.99' }, p99);
        this.set({ quantile: '0.5' }, p50);
      },
    });

    this.proposalSeconds = new Histogram({
      name: 'dmq_raft_proposal_seconds',
      help: 'From proposing a command to its commit and apply on the leader.',
      labelNames: ['outcome'] as const,
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    });
    this.fsyncSeconds = new Histogram({
      name: 'dmq_raft_fsync_seconds',
      help: 'Duration of each Raft log sync (one per group commit).',
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    });
    this.httpSeconds = new Histogram({
      name: 'dmq_http_request_seconds',
      help: 'HTTP API latency by route, method and status.',
      labelNames: ['route', 'method', 'status'] as const,
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30, 60],
      registers,
    });
    this.transportDropped = new Counter({
      name: 'dmq_transport_messages_dropped_total',
      help: 'Raft messages dropped because a peer was unreachable or its queue full.',
      labelNames: ['peer'] as const,
      registers,
    });
  }

  /** For `createApp`'s `observe`. */
  observeHttp = (route: string, method: string, status: number, seconds: number): void => {
    this.httpSeconds.observe({ route, method, status: String(status) }, seconds);
  };

  /** Stops sampling the event loop (shutdown, tests). */
  close(): void {
    this.eventLoopDelay.close();
  }

  async text(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}

/**
 * Measures event loop stalls: a timer due every `resolutionMs` records how late it ran
 * (nanoseconds, into a perf_hooks histogram). Unref'd: it never keeps the process alive.
 */
class EventLoopDelaySampler {
  private histogram: RecordableHistogram = createHistogram();
  private expected: number;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly resolutionMs: number) {
    this.expected = performance.now() + resolutionMs;
    this.timer = setInterval(() => this.sample(), resolutionMs);
    this.timer.unref();
  }

  private sample(): void {
    const now = performance.now();
    const lateMs = Math.max(0, now - this.expected);
    this.histogram.record(Math.max(1, Math.round(lateMs * 1e6)));
    this.expected = now + this.resolutionMs;
  }

  /** The window's max, p99 and p50 in seconds (0 when empty); starts a new window. */
  takeWindow(): { max: number; p99: number; p50: number } {
    // Count the stall in progress too: a loop stuck since the last sample is stalled now.
    const pendingMs = Math.max(0, performance.now() - this.expected);
    const h = this.histogram;
    const seconds = (ns: number) => (h.count === 0 ? 0 : ns / 1e9);
    const window = {
      max: Math.max(seconds(h.max), pendingMs / 1e3),
      p99: seconds(h.percentile(99)),
      p50: seconds(h.percentile(50)),
    };
    this.histogram = createHistogram();
    return window;
  }

  close(): void {
    clearInterval(this.timer);
  }
}
