import { clusterStatusSchema } from '@dmq/api-contracts';
import type { BackupReader, BackupWriter } from '@dmq/persistence-prisma';
import type { RaftNode } from '@dmq/raft-core';
import { encodeCommand, restoreCommandFromBackupRows, type ApplyResult } from '@dmq/state-machine';
import type { Logger } from 'pino';
import type { ServiceConfig } from '../config/config';
import type { MetadataState } from '../node/metadata-state';
import { toBatch } from './backup-batch';

/** Stable codes of the reasons a restore from backup does not happen. */
export type RestoreRefusalCode =
  | 'restore/node-has-log'
  | 'restore/peer-has-log'
  | 'restore/state-not-empty'
  | 'restore/backup-empty'
  | 'restore/cluster-mismatch'
  | 'restore/rejected';

/** Why a restore from backup was refused; `code` is stable, the message says what to do. */
export class RestoreRefusedError extends Error {
  override readonly name = 'RestoreRefusedError';
  constructor(
    readonly code: RestoreRefusalCode,
    message: string,
  ) {
    super(message);
  }
}

export interface RestoreFromBackupOptions {
  readonly config: ServiceConfig;
  readonly state: MetadataState;
  readonly raft: RaftNode<ApplyResult>;
  readonly reader: BackupReader;
  readonly writer: BackupWriter;
  /** Resolves once the backup database is migrated (or the backup is closing). */
  readonly migrated: Promise<void>;
  /** This node had neither a Raft log nor a snapshot when it started (brand-new data dir). */
  readonly startedWithoutLog: boolean;
  /** Fires when the node shuts down. */
  readonly signal: AbortSignal;
  /** Told the index of the full backup written by the rebase after the restore. */
  readonly rebased: (index: number) => void;
  readonly logger: Logger;
  /** How long to wait for each peer's `/cluster`. Default 2 000 ms. */
  readonly peerTimeoutMs?: number;
}

/** What a peer said about its log. */
interface PeerLog {
  readonly id: number;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  readonly snapshotIndex: number;
}

/**
 * Disaster recovery, the `DMQ_RESTORE_FROM_BACKUP=on` opt-in: bootstraps a brand-new cluster
 * from the PostgreSQL backup as ONE committed `RestoreFromBackup` command.
 *
 * It runs on the node that started with a brand-new data directory, once it leads and has
 * committed the first entry of its term (so it has applied everything committed before).
 * It refuses — logging why, at error level, with the code of {@link RestoreRefusedError} —
 * when this node started with a log, when any peer reports a log (a snapshot, or a commit or
 * applied index beyond this leader's log: it was not built by this cluster), when the state is
 * not empty (someone else restored, or clients wrote first), when the backup belongs to
 * another cluster id, or when the backup is empty. Peers that do not answer are asked again
 * until they do: every node must be seen without a log.
 *
 * After the command commits, the backup is rebased on the restored cluster (its Raft indices
 * start again from 1, below the rows' indices) with a full backup of the restored state. The
 * restored state has the next backup generation: should this node crash before the rebase,
 * the next leader's catch-up finds the backup of an older generation and rebases it, and the
 * lost cluster's jobs still in Redis are dropped by the writer.
 *
 * @returns the index of the committed command, or undefined when there was nothing to do.
 */
export async function restoreFromBackup(
  options: RestoreFromBackupOptions,
): Promise<number | undefined> {
  const { config, state, raft, logger, signal } = options;
  try {
    if (!options.startedWithoutLog) {
      const status = raft.status();
      throw new RestoreRefusedError(
        'restore/node-has-log',
        `node ${config.nodeId} started with a Raft log (last index ${status.lastIndex}, ` +
          `snapshot index ${status.snapshotIndex}): a restore only bootstraps a cluster whose ` +
          'logs are all gone. Unset DMQ_RESTORE_FROM_BACKUP.',
      );
    }
    await options.migrated;
    for (;;) {
      if (signal.aborted) return undefined;
      await leadership(raft, signal);
      if (signal.aborted) return undefined;
      assertEmpty(state);
      const term = raft.status().term;
      try {
        // The first commit of the term: everything committed before is applied here now.
        await raft.readIndex();
      } catch {
        continue;
      }
      if (!raft.isLeader() || raft.status().term !== term) continue;
      assertEmpty(state);
      const unreachable = await checkPeers(options, raft.status().lastIndex);
      if (unreachable.length > 0) {
        logger.warn(
          { unreachable },
          `restore waits: cannot yet verify that nodes ${unreachable.join(', ')} have no Raft log`,
        );
        await delay(1_000, signal);
        continue;
      }
      const contents = await options.reader.readAll();
      if (contents.state === null) {
        throw new RestoreRefusedError(
          'restore/backup-empty',
          'the backup database holds no backup (backup_state is empty): nothing to restore',
        );
      }
      if (contents.state.clusterId !== config.clusterId) {
        throw new RestoreRefusedError(
          'restore/cluster-mismatch',
          `the backup belongs to cluster ${contents.state.clusterId}; this is cluster ` +
            `${config.clusterId}. Start the nodes with DMQ_CLUSTER_ID=${contents.state.clusterId}.`,
        );
      }
      const plan = restoreCommandFromBackupRows(contents, {
        timestampMs: Date.now(),
        sourceVersion: contents.state.backedUpIndex,
        sourceGeneration: contents.state.generation,
      });
      for (const repair of plan.repairs.slice(0, 100))
        logger.warn({ repair }, 'backup row repaired');
      if (plan.repairs.length > 100)
        logger.warn({ more: plan.repairs.length - 100 }, 'more backup rows repaired');
      if (!raft.isLeader() || raft.status().term !== term) continue;
      assertEmpty(state);
      const committed = await raft.propose(encodeCommand(plan.command));
      if (!committed.result.ok) {
        if (state.current.counts().topics > 0 || state.current.counts().brokers > 0) {
          throw new RestoreRefusedError(
            'restore/state-not-empty',
            `the restore was rejected: ${committed.result.error.message}`,
          );
        }
        throw new RestoreRefusedError(
          'restore/rejected',
          `the restore was rejected: ${committed.result.error.message}`,
        );
      }
      const counts = state.current.counts();
      logger.info(
        {
          index: committed.index,
          sourceVersion: contents.state.backedUpIndex,
          brokers: counts.brokers,
          topics: counts.topics,
          partitions: counts.partitions,
          repairs: plan.repairs.length,
        },
        `Restored from backup: ${counts.topics} topics, ${counts.partitions} partitions, ` +
          `${counts.brokers} brokers (brokers FENCED, partitions leaderless until they register)`,
      );
      await rebase(options);
      return committed.index;
    }
  } catch (err) {
    if (err instanceof RestoreRefusedError) {
      logger.error({ code: err.code }, `Restore from backup refused: ${err.message}`);
      return undefined;
    }
    throw err;
  }
}

function assertEmpty(state: MetadataState): void {
  const counts = state.current.counts();
  if (counts.brokers > 0 || counts.topics > 0) {
    throw new RestoreRefusedError(
      'restore/state-not-empty',
      `the cluster's state is not empty (${counts.brokers} brokers, ${counts.topics} topics ` +
        `at version ${counts.version}): it was restored already, or written to first`,
    );
  }
}

/** Resolves when this node leads (at once if it does) or the signal fires. */
function leadership(raft: RaftNode<ApplyResult>, signal: AbortSignal): Promise<void> {
  if (raft.isLeader() || signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      unlisten();
      signal.removeEventListener('abort', done);
      resolve();
    };
    const unlisten = raft.onLeaderChange((soft) => {
      if (soft.role === 'leader') done();
    });
    signal.addEventListener('abort', done);
  });
}

function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done);
  });
}

/**
 * Asks every peer for its `/cluster` view. Throws {@link RestoreRefusedError} naming the first
 * peer that has a log; returns the ids of the peers that did not answer.
 */
async function checkPeers(
  options: RestoreFromBackupOptions,
  ownLastIndex: number,
): Promise<number[]> {
  const peers = options.config.peers.filter((p) => p.id !== options.config.nodeId);
  const answers = await Promise.all(
    peers.map(async (peer): Promise<PeerLog | number> => {
      try {
        const response = await fetch(`http://${peer.address}/api/v1/cluster`, {
          signal: AbortSignal.timeout(options.peerTimeoutMs ?? 2_000),
        });
        if (!response.ok) return peer.id;
        const status = clusterStatusSchema.parse(await response.json());
        return {
          id: peer.id,
          commitIndex: status.commitIndex,
          appliedIndex: status.appliedIndex,
          snapshotIndex: status.snapshotIndex,
        };
      } catch {
        return peer.id;
      }
    }),
  );
  for (const answer of answers) {
    if (typeof answer === 'number') continue;
    if (
      answer.snapshotIndex > 0 ||
      answer.commitIndex > ownLastIndex ||
      answer.appliedIndex > ownLastIndex
    ) {
      throw new RestoreRefusedError(
        'restore/peer-has-log',
        `node ${answer.id} still has a Raft log (commit index ${answer.commitIndex}, snapshot ` +
          `index ${answer.snapshotIndex}; this leader's log ends at ${ownLastIndex}). The ` +
          'backup is read back only for a cluster whose logs are all gone: wipe every data ' +
          'directory first, or keep the cluster and unset DMQ_RESTORE_FROM_BACKUP.',
      );
    }
  }
  return answers.filter((answer): answer is number => typeof answer === 'number');
}

/** Replaces the backup with the restored state (retried until PostgreSQL answers). */
async function rebase(options: RestoreFromBackupOptions): Promise<void> {
  let delayMs = 500;
  while (!options.signal.aborted) {
    const rows = options.state.current.toBackupRows();
    try {
      await options.writer.rebase(toBatch({ ...rows, full: true }));
      options.rebased(rows.version);
      options.logger.info({ index: rows.version }, 'backup rebased on the restored cluster');
      return;
    } catch (err) {
      options.logger.warn(
        { err: (err as Error).message, retryInMs: delayMs },
        'backup rebase after the restore failed; will retry',
      );
      await delay(delayMs, options.signal);
      delayMs = Math.min(30_000, delayMs * 2);
    }
  }
}
