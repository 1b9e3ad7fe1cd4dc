import { clusterStatusSchema } from '@dmq/api-contracts';
import type {
  BackupContents,
  BackupReader,
  BackupStateRow,
  BackupWriter,
} from '@dmq/persistence-prisma';
import {
  LeadershipLostError,
  NONE,
  NotLeaderError,
  ProposalDroppedError,
  type RaftNode,
} from '@dmq/raft-core';
import {
  encodeCommand,
  restoreCommandFromBackupRows,
  splitRestoreCommand,
  type ApplyResult,
  type RestorePlan,
  type RestoreFromBackupValue,
} from '@dmq/state-machine';
import type { Logger } from 'pino';
import type { ServiceConfig } from '../config/config';
import type { MetadataState } from '../node/metadata-state';
import { MAX_PEER_REQUEST_BYTES } from '../raft-transport/peer-transport';
import { toBatch } from './backup-batch';

/**
 * The largest restore command: what one peer request carries (the transport's
 * `MAX_PEER_REQUEST_BYTES`), less room for the message around it. About 240 bytes per
 * partition: some 2 million partitions.
 */
export const MAX_RESTORE_ENTRY_BYTES = MAX_PEER_REQUEST_BYTES - 1024 * 1024;

/** Stable codes of the reasons a restore from backup does not happen. */
export type RestoreRefusalCode =
  | 'restore/node-has-log'
  | 'restore/peer-has-log'
  | 'restore/state-not-empty'
  | 'restore/backup-empty'
  | 'restore/cluster-mismatch'
  | 'restore/rejected'
  | 'restore/too-large';

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

/**
 * Refuses (`restore/too-large`) a restore command of `bytes` bytes that one Raft entry
 * cannot carry to the followers: it would never commit.
 */
export function assertRestoreFits(
  bytes: number,
  partitions: number,
  maxEntryBytes = MAX_RESTORE_ENTRY_BYTES,
): void {
  if (bytes <= maxEntryBytes) return;
  throw new RestoreRefusedError(
    'restore/too-large',
    `the restore command would be ${bytes} bytes (${partitions} partitions), more than the ` +
      `${maxEntryBytes} bytes one Raft entry can carry to the followers: nothing was restored.`,
  );
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
  /** Largest restore command (one Raft entry). Default {@link MAX_RESTORE_ENTRY_BYTES}. */
  readonly maxEntryBytes?: number;
  /** Most partitions in one part of the restore. Default `RESTORE_PARTITIONS_PER_PART`. */
  readonly partitionsPerPart?: number;
  /** How long to wait for each peer's `/cluster`. Default 2 000 ms. */
  readonly peerTimeoutMs?: number;
}

/** What a peer said about its log. */
interface PeerLog {
  readonly id: number;
  readonly lastIndex: number;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  readonly snapshotIndex: number;
}

/** Another node's `RestoreFromBackup` was applied here while this node waited: not a refusal. */
class RestoredElsewhere extends Error {
  constructor(readonly index: number) {
    super(`RestoreFromBackup applied at index ${index}`);
  }
}

/** How long the leader waits before asking peers that did not answer again. */
const PEER_RETRY_MS = 1_000;

/**
 * Disaster recovery, the `DMQ_RESTORE_FROM_BACKUP=on` opt-in: bootstraps a brand-new cluster
 * from the PostgreSQL backup as committed `RestoreFromBackup` commands: one, or parts of whole
 * topics (`partitionsPerPart`) that keep every entry quick to apply. The backup is read and
 * the parts prepared once, before leading. A leader that finds a restore left in the middle
 * (its leader lost the lead) aborts it and starts over.
 *
 * It runs on the node that started with a brand-new data directory, once it leads and has
 * committed the first entry of its term (so it has applied everything committed before).
 * It refuses — logging why, at error level, with the code of {@link RestoreRefusedError} —
 * when this node started with a log, when any peer reports a log (a snapshot, or a last,
 * commit or applied index beyond this leader's log: it was not built by this cluster), when
 * the state is not empty (someone else restored, or clients wrote first), when the backup
 * belongs to another cluster id, or when the backup is empty. Peers that do not answer are
 * asked again every second until they do: every node must be seen without a log.
 *
 * Every wait (for the backup database, for leadership, between two rounds of peer checks)
 * ends at once when the state stops being empty: entries of another node's log arrived (a
 * node still had its log and leads now), or clients wrote first — refused with
 * `restore/state-not-empty`; or another node's restore was applied here — logged at info
 * level, nothing to do. A leader that finds a peer with a log hands leadership to that peer
 * after refusing, so the cluster keeps that log rather than this node's empty one.
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
  // Registered first: a restore applied here by another leader is told apart from other entries.
  let restoredAt: number | undefined;
  const unsubscribe = state.onApplied((index, result) => {
    if (restoredAt === undefined && isRestoreResult(result)) restoredAt = index;
  });
  /** A peer with a log, found while this node led in `term`: leadership goes to it. */
  let handOverTo: { peer: PeerLog; term: number } | undefined;

  /**
   * Throws when the state is no longer empty (checked after every wait). A restore in parts
   * left in the middle (its node lost leadership) counts as empty: the next leader with the
   * opt-in aborts it and starts over.
   */
  const assertEmpty = (): void => {
    const counts = state.current.counts();
    if (counts.brokers === 0 && counts.topics === 0) return;
    if (state.current.restoreInProgress() !== undefined) return;
    if (restoredAt !== undefined) throw new RestoredElsewhere(restoredAt);
    const status = raft.status();
    const source =
      status.lead !== NONE && status.lead !== config.nodeId
        ? `entries of node ${status.lead}'s Raft log (the leader in term ${status.term}) were ` +
          'applied here: a node still had its log, and the cluster keeps it'
        : 'clients wrote to this cluster first, or a node still had its log';
    throw new RestoreRefusedError(
      'restore/state-not-empty',
      `the cluster's state is not empty (${counts.brokers} brokers, ${counts.topics} topics ` +
        `at version ${counts.version}): ${source}. Nothing was read back from the backup. ` +
        'Unset DMQ_RESTORE_FROM_BACKUP; to restore anyway, stop every node and wipe every ' +
        'data directory first.',
    );
  };

  /**
   * Waits until `done()` holds or `ms` pass, re-checking the state after every event (a state
   * change, a role or leader change, the end of `also`). Returns false when shutting down.
   */
  const waitUntil = async (
    done: () => boolean,
    ms?: number,
    also?: Promise<unknown>,
  ): Promise<boolean> => {
    const deadline = ms === undefined ? undefined : Date.now() + ms;
    for (;;) {
      if (signal.aborted) return false;
      assertEmpty();
      if (done()) return true;
      const left = deadline === undefined ? undefined : deadline - Date.now();
      if (left !== undefined && left <= 0) return true;
      await nextEvent(options, left, also);
    }
  };

  /**
   * Proposes `entry` and waits for its outcome; undefined when it was not committed under
   * this node's leadership (lost, dropped, not the leader): the caller starts over.
   */
  const proposeAsLeader = async (
    entry: Uint8Array,
  ): Promise<{ index: number; result: ApplyResult } | undefined> => {
    try {
      return await raft.propose(entry);
    } catch (err) {
      const leadershipMoved =
        err instanceof LeadershipLostError ||
        err instanceof NotLeaderError ||
        err instanceof ProposalDroppedError;
      if (signal.aborted) return undefined; // shutting down
      if (!leadershipMoved) throw err;
      logger.warn(
        { err: (err as Error).message },
        'a restore entry was not committed under this leadership; the restore starts over',
      );
      return undefined;
    }
  };

  /**
   * Empties a restore left in the middle (`AbortRestoreFromBackup`); the index it committed
   * at, or undefined when it was not committed under this leadership.
   */
  const abortPartialRestore = async (): Promise<number | undefined> => {
    const aborted = await proposeAsLeader(
      encodeCommand({ type: 'AbortRestoreFromBackup', timestampMs: Date.now() }),
    );
    if (aborted === undefined) return undefined;
    if (!aborted.result.ok) {
      throw new RestoreRefusedError(
        'restore/rejected',
        `could not abort the unfinished restore: ${aborted.result.error.message}`,
      );
    }
    return aborted.index;
  };

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
    let migrated = false;
    const settled = options.migrated.then(
      () => (migrated = true),
      () => (migrated = true),
    );
    if (!(await waitUntil(() => migrated, undefined, settled))) return undefined;
    await options.migrated; // a failure ends the restore, as it always did
    // Read and prepared once, before leading: reading a large backup and encoding it holds
    // the event loop for a while, and a leader doing that loses its leadership (the restore
    // then went round in circles, every new leader reading the backup again).
    const prepared = prepare(options);
    prepared.catch(() => undefined); // awaited (and its refusal reported) in the loop
    for (;;) {
      if (!(await waitUntil(() => raft.isLeader()))) return undefined;
      const term = raft.status().term;
      const leads = (): boolean => raft.isLeader() && raft.status().term === term;
      try {
        // The first commit of the term: everything committed before is applied here now.
        await raft.readIndex();
      } catch {
        continue;
      }
      if (signal.aborted) return undefined;
      assertEmpty();
      if (!leads()) continue;
      // A restore in parts that its leader left in the middle: this cluster was bootstrapped
      // by that restore, every log in it is this cluster's, so the peers are not asked again;
      // the partial restore is aborted and done over below.
      const resuming = state.current.restoreInProgress() !== undefined;
      if (!resuming) {
        const ownLastIndex = raft.status().lastIndex;
        const peers = await askPeers(options);
        if (signal.aborted) return undefined;
        assertEmpty();
        const withLog = peers.find(
          (peer): peer is PeerLog => typeof peer !== 'number' && hasLog(peer, ownLastIndex),
        );
        if (withLog !== undefined) {
          if (leads()) handOverTo = { peer: withLog, term };
          throw new RestoreRefusedError(
            'restore/peer-has-log',
            `node ${withLog.id} still has a Raft log (last index ${withLog.lastIndex}, commit ` +
              `index ${withLog.commitIndex}, snapshot index ${withLog.snapshotIndex}; this ` +
              `leader's log ends at ${ownLastIndex}). The backup is read back only for a cluster ` +
              `whose logs are all gone: nothing was restored, and the cluster keeps node ` +
              `${withLog.id}'s log. Unset DMQ_RESTORE_FROM_BACKUP; to restore anyway, stop ` +
              'every node and wipe every data directory first.',
          );
        }
        const unreachable = peers.filter((peer): peer is number => typeof peer === 'number');
        if (unreachable.length > 0) {
          logger.warn(
            { unreachable },
            `restore waits: cannot yet verify that nodes ${unreachable.join(', ')} have no Raft log`,
          );
          if (!(await waitUntil(() => !leads(), PEER_RETRY_MS))) return undefined;
          continue;
        }
      }
      if (!leads()) continue;
      const { contents, plan, entries } = await prepared;
      if (signal.aborted) return undefined;
      assertEmpty();
      if (!leads()) continue;
      // A restore another leader left in the middle (or this node, before it lost the lead).
      if (state.current.restoreInProgress() !== undefined) {
        const progress = state.current.restoreInProgress();
        const aborted = await abortPartialRestore();
        if (aborted === undefined) continue;
        logger.warn(
          { ...progress, index: aborted },
          'aborted a restore left unfinished by a previous leader; starting it over',
        );
      }
      let committed: { index: number; result: ApplyResult } | undefined;
      for (const [i, entry] of entries.entries()) {
        if (signal.aborted) return undefined;
        committed = leads() ? await proposeAsLeader(entry) : undefined;
        if (committed === undefined) break; // leadership lost: start over when leading again
        if (!committed.result.ok) {
          const partial = state.current.restoreInProgress() !== undefined;
          const notEmpty = !partial && state.current.counts().topics > 0;
          // Never leave the cluster refusing every write for a restore that will not finish.
          if (partial) await abortPartialRestore();
          throw new RestoreRefusedError(
            notEmpty ? 'restore/state-not-empty' : 'restore/rejected',
            `the restore was rejected: ${committed.result.error.message}`,
          );
        }
        if (entries.length > 1)
          logger.info(
            { part: i + 1, parts: entries.length, index: committed.index },
            `restore part ${i + 1} of ${entries.length} committed`,
          );
      }
      if (committed === undefined || state.current.restoreInProgress() !== undefined) continue;
      const counts = state.current.counts();
      logger.info(
        {
          index: committed.index,
          sourceVersion: contents.state.backedUpIndex,
          brokers: counts.brokers,
          topics: counts.topics,
          partitions: counts.partitions,
          repairs: plan.repairs.length,
          parts: entries.length,
          entryBytes: entries.reduce((sum, entry) => sum + entry.length, 0),
        },
        `Restored from backup: ${counts.topics} topics, ${counts.partitions} partitions, ` +
          `${counts.brokers} brokers (brokers FENCED, partitions leaderless until they register)`,
      );
      await rebase(options);
      return committed.index;
    }
  } catch (err) {
    if (err instanceof RestoredElsewhere) {
      logger.info(
        { index: err.index },
        `Restore from backup done by another node (RestoreFromBackup applied at index ` +
          `${err.index}): nothing to do on this node. Unset DMQ_RESTORE_FROM_BACKUP.`,
      );
      return undefined;
    }
    if (err instanceof RestoreRefusedError) {
      logger.error({ code: err.code }, `Restore from backup refused: ${err.message}`);
      if (handOverTo !== undefined) await handOver(options, handOverTo.peer, handOverTo.term);
      return undefined;
    }
    throw err;
  } finally {
    unsubscribe();
  }
}

/** The backup read back and cut into encoded parts, ready to propose. */
interface PreparedRestore {
  readonly contents: BackupContents & { readonly state: BackupStateRow };
  readonly plan: RestorePlan;
  readonly entries: Uint8Array[];
}

/**
 * Reads the backup and prepares the restore's parts (logging the repairs), yielding to the
 * event loop between the steps so that this node keeps answering its peers.
 */
async function prepare(options: RestoreFromBackupOptions): Promise<PreparedRestore> {
  const { config, logger } = options;
  const yieldNow = () => new Promise<void>((resolve) => setImmediate(resolve));
  const contents = await options.reader.readAll();
  const stored = contents.state;
  if (stored === null) {
    throw new RestoreRefusedError(
      'restore/backup-empty',
      'the backup database holds no backup (backup_state is empty): nothing to restore',
    );
  }
  if (stored.clusterId !== config.clusterId) {
    throw new RestoreRefusedError(
      'restore/cluster-mismatch',
      `the backup belongs to cluster ${stored.clusterId}; this is cluster ` +
        `${config.clusterId}. Start the nodes with DMQ_CLUSTER_ID=${stored.clusterId}.`,
    );
  }
  await yieldNow();
  const plan = restoreCommandFromBackupRows(contents, {
    timestampMs: Date.now(),
    sourceVersion: stored.backedUpIndex,
    sourceGeneration: stored.generation,
  });
  for (const repair of plan.repairs.slice(0, 100)) logger.warn({ repair }, 'backup row repaired');
  if (plan.repairs.length > 100)
    logger.warn({ more: plan.repairs.length - 100 }, 'more backup rows repaired');
  // Parts of whole topics, each a Raft entry applied in tens of milliseconds.
  const entries: Uint8Array[] = [];
  for (const command of splitRestoreCommand(plan.command, options.partitionsPerPart)) {
    await yieldNow();
    const entry = encodeCommand(command);
    assertRestoreFits(entry.length, command.partitions.length, options.maxEntryBytes);
    entries.push(entry);
  }
  logger.info(
    {
      brokers: plan.command.brokers.length,
      topics: plan.command.topics.length,
      partitions: plan.command.partitions.length,
      parts: entries.length,
    },
    'backup read and prepared for the restore',
  );
  return { contents: { ...contents, state: stored }, plan, entries };
}

/** The number fields of a `RestoreFromBackup` outcome: no other command's value has them all. */
const RESTORE_VALUE_KEYS: ReadonlyArray<keyof RestoreFromBackupValue> = [
  'brokers',
  'topics',
  'partitions',
  'part',
  'parts',
];

/**
 * The outcome of the last part of a `RestoreFromBackup` (applied entries carry no command
 * type): the restore is complete.
 */
function isRestoreResult(result: ApplyResult): boolean {
  if (!result.ok || result.replayed) return false;
  const value = result.value as unknown;
  return (
    typeof value === 'object' &&
    value !== null &&
    RESTORE_VALUE_KEYS.every(
      (key) => typeof (value as Record<string, unknown>)[key] === 'number',
    ) &&
    (value as Record<string, unknown>)['complete'] === true
  );
}

/** A log this cluster did not build: a snapshot, or entries beyond this leader's log. */
function hasLog(peer: PeerLog, ownLastIndex: number): boolean {
  return (
    peer.snapshotIndex > 0 ||
    // The commit index of a restarted node may lag (it is persisted lazily), its log does not.
    peer.lastIndex > ownLastIndex ||
    peer.commitIndex > ownLastIndex ||
    peer.appliedIndex > ownLastIndex
  );
}

/**
 * Resolves at the first of: the signal fires, the state's version moves (an applied command
 * or an installed snapshot), this node's role or leader changes, `ms` pass, `also` settles.
 */
function nextEvent(
  options: RestoreFromBackupOptions,
  ms: number | undefined,
  also: Promise<unknown> | undefined,
): Promise<void> {
  const { raft, state, signal } = options;
  return new Promise((resolve) => {
    if (signal.aborted) {
      resolve();
      return;
    }
    const stop = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const done = (): void => {
      if (stop.signal.aborted) return;
      stop.abort();
      unlisten();
      signal.removeEventListener('abort', done);
      clearTimeout(timer);
      resolve();
    };
    const unlisten = raft.onLeaderChange(done);
    signal.addEventListener('abort', done);
    if (ms !== undefined) timer = setTimeout(done, ms);
    // Spurious wake-ups (the 60 s timeout) only make the caller check again.
    void state.waitForVersion(state.version + 1, 60_000, stop.signal).then(done);
    also?.then(done, done);
  });
}

/**
 * Hands leadership to `peer`, which has the log the cluster must keep, if this node still
 * leads in `term` and the Raft core can catch the peer up from here.
 */
async function handOver(
  options: RestoreFromBackupOptions,
  peer: PeerLog,
  term: number,
): Promise<void> {
  const { raft, logger } = options;
  const status = raft.status();
  if (!raft.isLeader() || status.term !== term) return;
  const progress = status.progress.get(peer.id);
  if (
    progress === undefined ||
    progress.match > status.lastIndex ||
    progress.next - 1 > status.lastIndex
  ) {
    // The peer claims committed entries beyond this leader's log: it cannot be caught up
    // from here, and must lead instead. Operators restart the others as its followers.
    logger.warn(
      { to: peer.id, match: progress?.match ?? null, lastIndex: status.lastIndex },
      `cannot hand leadership to node ${peer.id}, whose Raft log the cluster must keep: stop ` +
        'the nodes started on an empty data directory, wipe those directories again and ' +
        `start them one at a time, without DMQ_RESTORE_FROM_BACKUP, while node ${peer.id} ` +
        'runs: they then follow it',
    );
    return;
  }
  const moved = await raft.transferLeadership(peer.id).catch(() => false);
  if (moved) {
    logger.info(
      { to: peer.id },
      `Handed leadership to node ${peer.id}, whose Raft log the cluster keeps`,
    );
  } else {
    logger.warn(
      { to: peer.id },
      `could not hand leadership to node ${peer.id}, whose Raft log the cluster must keep: ` +
        `POST /api/v1/cluster/leadership-transfer {"targetId":${peer.id}} on the leader`,
    );
  }
}

/**
 * Asks every peer for its `/cluster` view: what each said about its log, or the id of a peer
 * that did not answer.
 */
async function askPeers(options: RestoreFromBackupOptions): Promise<Array<PeerLog | number>> {
  const peers = options.config.peers.filter((p) => p.id !== options.config.nodeId);
  return Promise.all(
    peers.map(async (peer): Promise<PeerLog | number> => {
      try {
        const response = await fetch(`http://${peer.address}/api/v1/cluster`, {
          signal: AbortSignal.timeout(options.peerTimeoutMs ?? 2_000),
        });
        if (!response.ok) return peer.id;
        const status = clusterStatusSchema.parse(await response.json());
        // A node reports its own last log index as its member's matchIndex.
        const self = status.members.find((m) => m.id === status.nodeId);
        return {
          id: peer.id,
          lastIndex: self?.matchIndex ?? 0,
          commitIndex: status.commitIndex,
          appliedIndex: status.appliedIndex,
          snapshotIndex: status.snapshotIndex,
        };
      } catch {
        return peer.id;
      }
    }),
  );
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
