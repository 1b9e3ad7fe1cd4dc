/**
 * `npm run bench -- restore [--partitions=300000] [--partitions-per-topic=1000]`: disaster
 * recovery end to end. A backup of N partitions (6 brokers, RF 3) is written to a database of
 * its own as a full backup (BackupWriter, the rows made by the state machine); then a
 * brand-new 3-node cluster starts with `DMQ_RESTORE_FROM_BACKUP=on` on it. Measured from the
 * start of the node processes: the restore committed (`Restored from backup`), every node
 * applied it, the backup rebased on the restored cluster (`backup_state.generation` 1); the
 * nodes' resident memory after; and the restored state checked against the backup (topic
 * and partition counts through the API). Prints a Markdown section.
 */
import { randomBytes } from 'node:crypto';
import { BackupWriter, createPrismaClient, migrate } from '@dmq/persistence-prisma';
import { MetadataStateMachine, encodeCommand, type Command } from '@dmq/state-machine';
import { Queue } from 'bullmq';
import { toBatch } from '../src/backup/backup-batch';
import { createTestDatabase, scrapeMetric } from '../test/harness/backup-fixtures';
import { LocalCluster, pollUntil, type LogLine } from '../test/harness/local-cluster';
import { ms, numberFlag, table } from './bench-util';

const REDIS_URL = process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379';
const CLUSTER_ID = 'restore-bench';

async function main(): Promise<void> {
  const partitions = numberFlag('partitions', 300_000);
  const perTopic = numberFlag('partitions-per-topic', 1_000);
  const topics = Math.ceil(partitions / perTopic);
  const timeoutMs = numberFlag('timeout-s', 900) * 1000;
  const db = await createTestDatabase('restore_bench');
  const queueName = `dmq-bench-restore-${randomBytes(4).toString('hex')}`;
  let cluster: LocalCluster | undefined;
  try {
    // The lost cluster's backup.
    await migrate({ databaseUrl: db.url });
    const built = performance.now();
    const machine = new MetadataStateMachine();
    let index = 0;
    const now = Date.UTC(2026, 0, 1);
    const apply = (command: Command) => {
      const result = machine.apply(++index, encodeCommand(command));
      if (!result.ok) throw new Error(`${command.type}: ${result.error.message}`);
    };
    for (let b = 1; b <= 6; b++) {
      apply({ type: 'RegisterBroker', timestampMs: now, brokerId: b, host: '10.0.0.1', port: b });
    }
    for (let t = 0; t < topics; t++) {
      apply({
        type: 'CreateTopic',
        timestampMs: now,
        name: `topic-${t}`,
        partitions: Math.min(perTopic, partitions - t * perTopic),
        replicationFactor: 3,
        config: { 'retention.ms': '604800000' },
      });
    }
    const rows = machine.toBackupRows();
    const buildMs = performance.now() - built;
    const prisma = createPrismaClient({ databaseUrl: db.url });
    const writer = new BackupWriter(prisma, {
      clusterId: CLUSTER_ID,
      transactionTimeoutMs: 600_000,
    });
    const written = performance.now();
    await writer.write([toBatch({ ...rows, full: true })]);
    const writeMs = performance.now() - written;
    await prisma.$disconnect();

    // The new cluster, with every Raft log gone.
    const started = performance.now();
    cluster = await LocalCluster.start({
      env: {
        DMQ_BACKUP: 'on',
        DATABASE_URL: db.url,
        REDIS_URL,
        DMQ_BACKUP_QUEUE: queueName,
        DMQ_CLUSTER_ID: CLUSTER_ID,
        DMQ_RESTORE_FROM_BACKUP: 'on',
        DMQ_BROKER_SESSION_TIMEOUT_MS: '3600000',
      },
    });
    const running = cluster;
    const isRestored = (l: LogLine) =>
      typeof l.msg === 'string' && l.msg.startsWith('Restored from backup');
    const restoredLine = await Promise.any(
      running.nodes.map((n) => n.waitForLog(isRestored, timeoutMs)),
    ).catch((err: unknown) => {
      throw new Error(
        `no restore within ${timeoutMs / 1000} s: ${String(err)}\n${running.nodes.map((n) => n.tail(40)).join('\n')}`,
      );
    });
    const restoredMs = performance.now() - started;
    const restoreIndex = Number(restoredLine['index']);
    const client = running.client();
    try {
      await pollUntil(
        'every node applied the restore',
        async () => {
          const views = await Promise.all(
            running.nodes.map((n) => client.clusterStatus({ node: n.id, deadlineMs: 5_000 })),
          );
          return views.every((v) => v.appliedIndex >= restoreIndex) ? true : undefined;
        },
        timeoutMs,
        50,
      );
      const appliedMs = performance.now() - started;
      await pollUntil(
        'the backup rebased on the restored cluster',
        async () => {
          const [row] = await db.query<{ generation: number }>(
            'SELECT generation FROM backup_state',
          );
          return row?.generation === 1 ? true : undefined;
        },
        timeoutMs,
        100,
      );
      const rebasedMs = performance.now() - started;

      // The restored state, through the API of a follower (linearizable read).
      const listed = await client.listTopics();
      const restoredPartitions = listed.reduce((sum, t) => sum + t.partitions.length, 0);
      if (listed.length !== topics || restoredPartitions !== partitions) {
        throw new Error(
          `restored ${listed.length} topics / ${restoredPartitions} partitions, ` +
            `expected ${topics} / ${partitions}`,
        );
      }
      const rss = await Promise.all(
        running.nodes.map(
          async (n) =>
            ((await scrapeMetric(n.url, 'dmq_process_resident_memory_bytes')) ?? Number.NaN) /
            2 ** 20,
        ),
      );
      const entryBytes = Number(restoredLine['entryBytes'] ?? Number.NaN);
      // Where the time went, from the restoring node's log (pino's epoch-ms `time`).
      const startedAt = Date.now() - (performance.now() - started);
      const at = (predicate: (l: LogLine) => boolean): string => {
        for (const n of running.nodes) {
          const line = n.lines.find(predicate);
          if (line !== undefined && typeof line['time'] === 'string') {
            return `${ms(Date.parse(line['time']) - startedAt)} ms`;
          }
        }
        return 'n/a';
      };
      const msgStarts = (prefix: string) => (l: LogLine) =>
        typeof l.msg === 'string' && l.msg.startsWith(prefix);
      const dump = process.argv.find((a) => a.startsWith('--dump-log='));
      if (dump !== undefined) {
        const { writeFileSync } = await import('node:fs');
        writeFileSync(
          dump.slice('--dump-log='.length),
          running.nodes.flatMap((n) => n.lines.map((l) => JSON.stringify(l))).join('\n'),
        );
      }
      const timeline = [
        ['first leader', at((l) => l['role'] === 'leader' && l.msg === 'Raft role changed')],
        ['backup database ready', at(msgStarts('backup database ready'))],
        ['restore part 1 committed', at(msgStarts('restore part 1 of'))],
        ['last part committed', at(isRestored)],
      ];

      console.log(`## Disaster recovery: restore of ${partitions.toLocaleString('en')} partitions

Node ${process.version}; 3 node processes on loopback, PostgreSQL and Redis local; ${topics} topics × ${perTopic} partitions, RF 3, 6 brokers.

${table(
  ['step', 'time'],
  [
    ['rows built by the state machine (bench only)', `${ms(buildMs)} ms`],
    ['full backup written by BackupWriter (the lost cluster had done this)', `${ms(writeMs)} ms`],
    ['node processes started → restore committed (`Restored from backup`)', `${ms(restoredMs)} ms`],
    ['→ every node applied it', `${ms(appliedMs)} ms`],
    ['→ backup rebased on the restored cluster (generation 1)', `${ms(rebasedMs)} ms`],
  ],
)}

Timeline: ${timeline.map(([what, when]) => `${what} ${when}`).join('; ')}.

Restore entry ${Number.isNaN(entryBytes) ? 'size not logged' : `${(entryBytes / 2 ** 20).toFixed(1)} MiB`}; resident memory after, per node: ${rss.map((r) => `${r.toFixed(0)} MiB`).join(', ')}. Check: the API lists ${listed.length} topics and ${restoredPartitions} partitions.
`);
    } finally {
      await client.close();
    }
  } finally {
    await cluster?.stop();
    const queue = new Queue(queueName, { connection: { url: REDIS_URL } });
    await queue.obliterate({ force: true }).catch(() => undefined);
    await queue.close();
    await db.drop();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
