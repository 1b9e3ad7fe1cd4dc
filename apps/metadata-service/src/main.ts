/**
 * One metadata node: `node apps/metadata-service/dist/main.js` (or `tsx …/src/main.ts`),
 * configured by the environment (see config/config.ts and the README).
 *
 * Start-up order: config → logger → data-dir identity → Raft log and snapshots → replay →
 * backup (never blocking) → HTTP. Shutdown order (SIGTERM/SIGINT): refuse API requests (503,
 * Retry-After; the Raft routes stay open) → hand leadership over and stop Raft → close HTTP →
 * backup workers and queue → Prisma/Redis → storage.
 */
import http from 'node:http';
import path from 'node:path';
import express from 'express';
import { Counter, Gauge } from 'prom-client';
import {
  EMPTY_CONF_STATE,
  FileLogStorage,
  FileSnapshotStore,
  NONE,
  RaftNode,
  decodeMessage,
  encodeMessage,
  type Transport,
} from '@dmq/raft-core';
import { ErrorCode } from '@dmq/api-contracts';
import type { ApplyResult } from '@dmq/state-machine';
import { ConfigError, configWarnings, loadConfig, type ServiceConfig } from './config/config';
import { createLogger } from './observability/logger';
import { ServiceMetrics } from './observability/metrics';
import { PeerTransport } from './raft-transport/peer-transport';
import { MetadataState } from './node/metadata-state';
import { MetadataNode } from './node/metadata-node';
import { StaticPeerDirectory } from './node/peer-directory';
import { timedStorage } from './node/timed-storage';
import { RetryAfterPolicy } from './node/retry-after-policy';
import { ensureClusterIdentity } from './node/cluster-identity';
import { BrokerLiveness } from './brokers/broker-liveness';
import { ChangeNotifier } from './brokers/change-notifier';
import { createApp } from './http/create-app';
import { LeaderForwarder } from './http/leader-forwarder';
import { ApiError } from './http/api-error';
import { startBackup } from './backup/start-backup';

async function main(): Promise<void> {
  let config: ServiceConfig;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`dmq-metadata: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const startedAt = performance.now();
  // Built later, but every log line from the start says the term and role once known.
  const late: { raft?: RaftNode<ApplyResult>; node?: MetadataNode; metrics?: ServiceMetrics } = {};
  const logger = createLogger({
    nodeId: config.nodeId,
    level: config.logLevel,
    raft: () => {
      if (late.raft === undefined) return undefined;
      const status = late.raft.status();
      return { term: status.term, role: status.role };
    },
  });
  for (const warning of configWarnings(config)) logger.warn(warning);
  process.on('uncaughtException', (err) => {
    logger.fatal({ err }, 'uncaught exception: exiting');
    process.exit(1);
  });
  process.on('unhandledRejection', (err) => {
    logger.fatal({ err }, 'unhandled rejection: exiting');
    process.exit(1);
  });

  await ensureClusterIdentity(config.dataDir, config.clusterId, config.nodeId);
  // A brand-new data dir is bootstrapped with DMQ_PEERS as the voters, unless the node joins a
  // running cluster (DMQ_JOIN): then it starts with no configuration and learns it from the
  // leader's log (conf-change entries carry the whole configuration), so it never campaigns
  // as a voter of a configuration the cluster does not have.
  const fileStorage = await FileLogStorage.open(path.join(config.dataDir, 'raft'), {
    conf: config.join ? EMPTY_CONF_STATE : { voters: config.peers.map((p) => p.id), learners: [] },
  });
  const storage = timedStorage(fileStorage, (seconds) =>
    late.metrics?.fsyncSeconds.observe(seconds),
  );
  const snapshotStore = await FileSnapshotStore.open(path.join(config.dataDir, 'snapshots'));
  const state = new MetadataState();

  const peerTransport: PeerTransport = new PeerTransport({
    nodeId: config.nodeId,
    clusterId: config.clusterId,
    clusterSecret: config.clusterSecret,
    addressOf: (id: number): string | undefined => peers.addressOf(id),
    logger: logger.child({ component: 'transport' }),
    requestTimeoutMs: Math.max(2_000, config.raft.electionTimeoutMs * 4),
    // etcd's ReportUnreachable: the leader stops pipelining appends into a peer it cannot
    // reach (replicate → probe) rather than fill the void until the peer rejects them.
    onUnreachable: (id) => late.raft?.reportUnreachable(id),
  });
  const peers: StaticPeerDirectory = new StaticPeerDirectory(
    config.peers,
    (id) => peerTransport.stats(id)?.lastContactAt,
  );
  const transport: Transport = {
    send: (to, message) => peerTransport.send(to, encodeMessage(message)),
    onMessage: (handler) =>
      peerTransport.onMessage((from, bytes) => {
        let message;
        try {
          message = decodeMessage(bytes);
        } catch (err) {
          logger.warn({ from, err: (err as Error).message }, 'dropped an undecodable Raft message');
          return;
        }
        handler(message);
      }),
  };

  const tickMs = config.raft.heartbeatIntervalMs;
  const raftNode = new RaftNode<ApplyResult>({
    id: config.nodeId,
    storage,
    stateMachine: state,
    snapshotStore,
    transport,
    logger: logger.child({ component: 'raft' }),
    tickMs,
    heartbeatTicks: 1,
    electionTicks: Math.max(3, Math.round(config.raft.electionTimeoutMs / tickMs)),
    snapshotEvery: config.raft.snapshotEveryEntries,
    raft: { preVote: true, checkQuorum: true },
  });
  late.raft = raftNode;
  // Retry-After of every 503 this node answers: 0 while a leader is known or expected within
  // an election, 1 s once it has been without one for longer (subscribed before start()).
  const retryAfter = new RetryAfterPolicy({ electionTimeoutMs: config.raft.electionTimeoutMs });
  raftNode.onLeaderChange((soft) =>
    retryAfter.leaderChanged(soft.lead === NONE ? undefined : soft.lead),
  );
  await raftNode.start();
  const counts = state.current.counts();
  logger.info(
    {
      snapshotIndex: raftNode.status().snapshotIndex,
      ...counts,
      startupMs: Math.round(performance.now() - startedAt),
    },
    `State rebuilt: ${counts.topics} topics, ${counts.partitions} partitions, ${counts.brokers} brokers`,
  );

  // Broker sessions (leader only) and push notices.
  const liveness = new BrokerLiveness({
    sessionTimeoutMs: config.brokers.sessionTimeoutMs,
    now: () => performance.now(),
    fence: (brokerId, brokerEpoch) => {
      if (late.node === undefined) return Promise.reject(new Error('node not ready'));
      return late.node.fenceBroker(brokerId, brokerEpoch);
    },
    logger: logger.child({ component: 'liveness' }),
  });
  const notifier = new ChangeNotifier({
    clusterId: config.clusterId,
    logger: logger.child({ component: 'push' }),
  });

  const backup = await startBackup({
    config,
    state,
    raft: raftNode,
    logger: logger.child({ component: 'backup' }),
  });

  const metadataNode = new MetadataNode({
    nodeId: config.nodeId,
    clusterId: config.clusterId,
    raft: raftNode,
    state,
    liveness,
    backup,
    peers,
    snapshots: {
      snapshotNow: async () => {
        const meta = await raftNode.snapshotNow();
        return { index: meta.index, term: meta.term, bytes: meta.bytes };
      },
    },
    commitTimeoutMs: config.raft.commitTimeoutMs,
    wallClock: () => Date.now(),
    observeProposal: (seconds, outcome) =>
      late.metrics?.proposalSeconds.observe({ outcome }, seconds),
  });
  late.node = metadataNode;

  raftNode.onLeaderChange((soft) => {
    if (soft.role === 'leader') {
      liveness.becameLeader(
        state.current.brokers().map((b) => ({
          brokerId: b.brokerId,
          brokerEpoch: b.brokerEpoch,
          fenced: b.status === 'FENCED',
        })),
      );
    } else {
      liveness.steppedDown();
    }
  });
  const livenessTimer = setInterval(
    () => liveness.check(),
    Math.max(100, Math.min(1_000, config.brokers.heartbeatIntervalMs / 2)),
  );
  livenessTimer.unref();

  let noticeScheduled = false;
  state.onApplied(() => {
    if (noticeScheduled || !raftNode.isLeader()) return;
    noticeScheduled = true;
    setImmediate(() => {
      noticeScheduled = false;
      const targets = state.current
        .brokers()
        .filter((b) => b.status === 'ONLINE' && b.pushEndpoint !== null)
        .map((b) => ({ brokerId: b.brokerId, url: b.pushEndpoint as string }));
      if (targets.length > 0) notifier.notify(state.version, targets);
    });
  });

  const metrics = new ServiceMetrics(
    config.nodeId,
    () => {
      const s = metadataNode.clusterStatus();
      return {
        term: s.term,
        role: s.role,
        commitIndex: s.commitIndex,
        appliedIndex: s.appliedIndex,
        snapshotIndex: s.snapshotIndex,
        uncommittedBytes: raftNode.status().uncommittedSize,
        peers: s.members.filter((m) => m.id !== config.nodeId),
      };
    },
    () => {
      const b = backup.status();
      return { lagEntries: b.lagEntries, lagMs: b.lagMs };
    },
  );
  late.metrics = metrics;
  // Backup producer counters (per node: only the leader's ever grow).
  for (const [name, help, key] of [
    [
      'dmq_backup_jobs_enqueued_total',
      'Backup jobs this node enqueued (as leader).',
      'jobsEnqueued',
    ],
    ['dmq_backup_full_resyncs_total', 'Full backup resyncs this node enqueued.', 'fullResyncs'],
    [
      'dmq_backup_catch_ups_total',
      'Backup catch-ups (leader change, Redis/PostgreSQL back).',
      'catchUps',
    ],
    [
      'dmq_backup_dead_letter_repairs_total',
      'Full backup resyncs this node enqueued to repair the gap of a dead-lettered job.',
      'deadLetterRepairs',
    ],
  ] as const) {
    new Counter({
      name,
      help,
      registers: [metrics.registry],
      collect() {
        this.reset();
        this.inc(backup.counters()[key]);
      },
    });
  }
  new Gauge({
    name: 'dmq_backup_dead_letters',
    help: 'Dead-lettered backup jobs in the queue (GET /api/v1/backup/dead-letters; -1 when unknown).',
    registers: [metrics.registry],
    collect() {
      this.set(backup.deadLetterCount() ?? -1);
    },
  });

  const forwarder = new LeaderForwarder({
    nodeId: config.nodeId,
    addressOf: (id) => peers.addressOf(id),
    timeoutMs: config.raft.commitTimeoutMs + 2_000,
  });
  const app = express();
  app.disable('x-powered-by');
  app.use(peerTransport.router());
  // Shutdown closes the API first but keeps the Raft routes (same server) open until the
  // driver has handed leadership over: the transfer needs the followers' answers.
  let draining = false;
  app.use((_req: express.Request, res: express.Response, next: express.NextFunction) => {
    if (!draining) return next();
    const refusal = new ApiError(ErrorCode.NO_LEADER, 'this node is shutting down');
    res.setHeader('Connection', 'close');
    res.setHeader('Retry-After', String(retryAfter.seconds(refusal.code)));
    res.status(refusal.status).json(refusal.toBody());
  });
  app.use(
    createApp({
      api: metadataNode,
      logger: logger.child({ component: 'http' }),
      ...(config.apiToken === undefined ? {} : { apiToken: config.apiToken }),
      forwarder,
      observe: metrics.observeHttp,
      metricsText: () => metrics.text(),
      retryAfterSeconds: (code, retryLater) => retryAfter.seconds(code, retryLater),
    }),
  );
  const server = http.createServer(app);
  // Long-polls wait up to 60 s: let them, but bound everything else.
  server.requestTimeout = 90_000;
  server.headersTimeout = 20_000;
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.httpPort, config.httpHost, () => {
      server.off('error', reject);
      resolve();
    });
  });
  logger.info(
    {
      host: config.httpHost,
      port: config.httpPort,
      startupMs: Math.round(performance.now() - startedAt),
    },
    'HTTP server listening',
  );

  let stopping = false;
  const shutdown = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    const force = setTimeout(() => {
      logger.error('graceful shutdown took too long: exiting');
      process.exit(1);
    }, 15_000);
    force.unref();
    draining = true;
    clearInterval(livenessTimer);
    await raftNode.stop({ transferLeadership: true });
    server.close();
    server.closeIdleConnections();
    await peerTransport.flush();
    peerTransport.close();
    forwarder.close();
    notifier.close();
    await backup.close();
    await storage.close();
    server.closeAllConnections();
    logger.info({ signal }, 'stopped');
    logger.flush();
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

main().catch((err: unknown) => {
  process.stderr.write(`dmq-metadata: failed to start: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
