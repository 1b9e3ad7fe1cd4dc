import { decodeConfChange } from '../core/conf-change';
import type { ConfChange } from '../core/conf-change';
import {
  InvariantViolation,
  LeadershipLostError,
  NodeStoppedError,
  NotLeaderError,
  ProposalDroppedError,
} from '../core/errors';
import type { Message, SnapshotChunk } from '../core/messages';
import type { RaftOptions } from '../core/raft';
import { RawNode } from '../core/raw-node';
import type { ProposalPosition, Ready, SoftState, Status } from '../core/raw-node';
import { NONE } from '../core/types';
import type { ConfState, NodeId, SnapshotMeta } from '../core/types';
import type { LogStorage } from '../storage/log-storage';
import type { SnapshotStore, SnapshotWriter } from '../storage/snapshot-store';
import { silentLogger, systemClock } from './ports';
import type { Clock, Logger, StateMachine, TimerHandle, Transport } from './ports';

/** Options of a {@link RaftNode}. Durations are in milliseconds and mapped onto ticks. */
export interface RaftNodeOptions<Result> {
  readonly id: NodeId;
  readonly storage: LogStorage;
  readonly stateMachine: StateMachine<Result>;
  readonly snapshotStore: SnapshotStore;
  readonly transport: Transport;
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** One core tick every `tickMs`. Default 50. */
  readonly tickMs?: number;
  /** Election timeout in ticks (randomized in [n, 2n)). Default 10 (500 ms at 50 ms ticks). */
  readonly electionTicks?: number;
  /** Heartbeat interval in ticks. Default 1. */
  readonly heartbeatTicks?: number;
  /** Seed of the election-timeout PRNG. Default: derived from the id and the clock. */
  readonly randomSeed?: number;
  /** Core options passed through (pre-vote, check-quorum, read mode, flow control). */
  readonly raft?: Partial<
    Pick<
      RaftOptions,
      | 'preVote'
      | 'checkQuorum'
      | 'readOnly'
      | 'maxSizePerMsg'
      | 'maxInflightMsgs'
      | 'maxInflightBytes'
      | 'maxCommittedSizePerReady'
      | 'maxLearnerLag'
      | 'maxUncommittedEntriesSize'
    >
  >;
  /** Take a snapshot (and compact the log) every this many applied entries; 0 = never. Default 10 000. */
  readonly snapshotEvery?: number;
  /** Bytes per InstallSnapshot chunk. Default 64 KiB. */
  readonly snapshotChunkBytes?: number;
  /** Unacknowledged snapshot chunks in flight per follower (flow control). Default 4. */
  readonly snapshotWindow?: number;
  /** A snapshot stream (or a read, or a transfer) without progress for this long fails. Default 4 election timeouts. */
  readonly requestTimeoutMs?: number;
}

/** A snapshot the node took, as {@link RaftNode.snapshotNow} reports it. */
export interface TakenSnapshot {
  readonly index: number;
  readonly term: number;
  /** Size of the image; 0 when no new snapshot was needed (nothing applied since the last). */
  readonly bytes: number;
}

/** What a committed proposal reports. */
export interface Committed<Result> extends ProposalPosition {
  /** What the state machine's `apply` returned (undefined for membership changes). */
  readonly result: Result;
}

type Input =
  | { readonly kind: 'tick' }
  | { readonly kind: 'message'; readonly message: Message }
  | { readonly kind: 'propose'; readonly data: Uint8Array; readonly waiter: Waiter<unknown> }
  | { readonly kind: 'conf-change'; readonly change: ConfChange; readonly waiter: Waiter<unknown> }
  | { readonly kind: 'read'; readonly context: number }
  | { readonly kind: 'transfer'; readonly target: NodeId; readonly fail: (error: Error) => void }
  | { readonly kind: 'snapshot-report'; readonly to: NodeId; readonly success: boolean }
  | { readonly kind: 'unreachable'; readonly to: NodeId }
  | { readonly kind: 'install-snapshot'; readonly meta: SnapshotMeta }
  | { readonly kind: 'snapshot-now' };

interface Waiter<Result> {
  resolve(value: Committed<Result>): void;
  reject(error: Error): void;
}

interface PendingProposal {
  readonly term: number;
  readonly waiter: Waiter<unknown>;
}

interface PendingRead {
  index: number | undefined;
  readonly resolve: (index: number) => void;
  readonly reject: (error: Error) => void;
  readonly timer: TimerHandle;
}

interface OutgoingSnapshot {
  readonly meta: SnapshotMeta;
  ackedOffset: number;
  failed: boolean;
  wake: (() => void) | undefined;
}

interface IncomingSnapshot {
  readonly from: NodeId;
  readonly meta: SnapshotMeta;
  readonly writer: SnapshotWriter;
  nextOffset: number;
}

/**
 * Runs a {@link RawNode} for real: ticks from a {@link Clock}, messages over a
 * {@link Transport}, the log in a {@link LogStorage}, the application in a
 * {@link StateMachine}, snapshots in a {@link SnapshotStore}. The only async code of the
 * library. One loop, never re-entered:
 *
 *   step queued inputs → Ready → persist (+ fsync) → send → apply → advance
 *
 * Inputs that arrive while a Ready is being persisted wait for the next turn, which is what
 * batches concurrent proposals into one append and one fsync (group commit).
 *
 * Proposal outcomes: the promise resolves once the entry is committed *and* applied, with
 * the state machine's result; it rejects with `NotLeaderError` (not the leader: carries the
 * leader id), `ProposalDroppedError` (refused before entering the log; `reason`
 * `'uncommitted-limit'` when commits stall and the leader's unapplied entries reached
 * `maxUncommittedEntriesSize`), `LeadershipLostError`
 * (this node lost leadership before the entry committed: it may or may not commit — retry
 * idempotently) or `NodeStoppedError`.
 */
export class RaftNode<Result = unknown> {
  readonly id: NodeId;
  private readonly options: RaftNodeOptions<Result>;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly tickMs: number;
  private readonly electionTicks: number;
  private readonly requestTimeoutMs: number;
  private raw!: RawNode;
  private inputs: Input[] = [];
  private looping = false;
  private stopped = false;
  /** `acksBeyondLog` when last logged, and when (see warnOfForeignLogs). */
  private acksBeyondLogWarned = 0;
  private acksBeyondLogWarnedAt = Number.NEGATIVE_INFINITY;
  private started = false;
  /** The core exists and the transport is hooked up (the end of `start()`). */
  private listening = false;
  private tickTimer: TimerHandle | undefined;
  private loopDone: Promise<void> = Promise.resolve();
  private idleWaiters: (() => void)[] = [];
  private fatal: Error | undefined;

  private readonly proposals = new Map<number, PendingProposal>();
  private readonly reads = new Map<number, PendingRead>();
  private nextReadContext = 1;
  private applied = 0;
  private snapshotIndex = 0;
  private appliedConf: ConfState = { voters: [], learners: [] };
  private soft: SoftState = { lead: NONE, role: 'follower' };
  private readonly leaderListeners = new Set<(soft: SoftState) => void>();
  private readonly transferWaiters = new Set<{ target: NodeId; done: (ok: boolean) => void }>();
  private readonly outgoing = new Map<NodeId, OutgoingSnapshot>();
  private incoming: IncomingSnapshot | undefined;
  private snapshotWaiters: {
    resolve: (taken: TakenSnapshot) => void;
    reject: (error: Error) => void;
  }[] = [];

  constructor(options: RaftNodeOptions<Result>) {
    this.options = options;
    this.id = options.id;
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger ?? silentLogger;
    this.tickMs = options.tickMs ?? 50;
    this.electionTicks = options.electionTicks ?? 10;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 4 * this.electionTicks * this.tickMs;
    if (this.tickMs <= 0) throw new RangeError('tickMs must be > 0');
  }

  /**
   * Starts the node: restores the latest snapshot into the state machine, replays the log up
   * to the known commit index, then starts ticking and listening.
   */
  async start(): Promise<void> {
    if (this.started) throw new InvariantViolation('RaftNode already started');
    this.started = true;
    const { storage, stateMachine, snapshotStore } = this.options;
    const started = this.clock.now();
    const meta = storage.snapshotMeta();
    this.appliedConf = storage.initialState().conf;
    if (meta.index > 0) {
      await stateMachine.restore(snapshotStore.read(meta.index), meta);
      this.appliedConf = meta.conf;
    }
    this.applied = meta.index;
    this.snapshotIndex = meta.index;
    this.raw = new RawNode({
      id: this.id,
      storage,
      electionTick: this.electionTicks,
      heartbeatTick: this.options.heartbeatTicks ?? 1,
      randomSeed:
        this.options.randomSeed ?? (this.id * 2654435761 + Math.floor(this.clock.now())) >>> 0,
      ...this.options.raft,
    });
    // Replay: committed entries after the snapshot go back through the state machine.
    const commit = this.raw.status().commit;
    const replayStarted = this.clock.now();
    while (this.applied < commit && this.raw.hasReady()) {
      const ready = this.raw.ready();
      await this.handleReady(ready);
      this.raw.advance(ready);
    }
    const replayed = this.applied - meta.index;
    this.logger.info(
      {
        nodeId: this.id,
        entries: replayed,
        snapshotIndex: meta.index,
        commit,
        replayMs: Math.round(this.clock.now() - replayStarted),
        startMs: Math.round(this.clock.now() - started),
      },
      `Replayed ${replayed} Raft log entries`,
    );
    this.options.transport.onMessage((message) => this.onMessage(message));
    this.listening = true;
    this.scheduleTick();
    this.kick();
  }

  // -------------------------------------------------------------------------------------
  // Public API

  /** Proposes a command. Resolves when it is committed and applied (see class doc). */
  propose(data: Uint8Array): Promise<Committed<Result>> {
    return new Promise<Committed<Result>>((resolve, reject) => {
      if (this.rejectIfStopped(reject)) return;
      this.push({ kind: 'propose', data, waiter: { resolve, reject } as Waiter<unknown> });
    });
  }

  /** Proposes a single-server membership change. Resolves when it is committed. */
  proposeConfChange(change: ConfChange): Promise<Committed<undefined>> {
    return new Promise<Committed<undefined>>((resolve, reject) => {
      if (this.rejectIfStopped(reject)) return;
      this.push({ kind: 'conf-change', change, waiter: { resolve, reject } as Waiter<unknown> });
    });
  }

  /**
   * Adds a voter the safe way (thesis §4.2.1): as a learner first, promoted once it has caught
   * up. Resolves when the promotion is committed.
   */
  async addVoter(nodeId: NodeId, pollMs = this.tickMs * this.electionTicks): Promise<void> {
    await this.proposeConfChange({ type: 'add-learner', nodeId });
    const deadline = this.clock.now() + this.requestTimeoutMs * 10;
    for (;;) {
      try {
        await this.proposeConfChange({ type: 'promote', nodeId });
        return;
      } catch (error) {
        const retry =
          error instanceof ProposalDroppedError && error.reason === 'learner-not-caught-up';
        if (!retry || this.clock.now() > deadline) throw error;
        await new Promise<void>((resolve) => this.clock.setTimeout(resolve, pollMs));
      }
    }
  }

  /**
   * Linearizable read barrier (ReadIndex, thesis §6.4): resolves with an index once this
   * node's state machine has applied it and it is at least the commit index at the time of the
   * call, as confirmed by the leader. Serve the read from the local state machine afterwards.
   * Works on followers (forwarded to the leader).
   */
  readIndex(): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      if (this.rejectIfStopped(reject)) return;
      const context = this.nextReadContext++;
      const timer = this.clock.setTimeout(() => {
        if (this.reads.delete(context))
          reject(new ProposalDroppedError('read-not-ready', 'read index timed out'));
      }, this.requestTimeoutMs);
      this.reads.set(context, { index: undefined, resolve, reject, timer });
      this.push({ kind: 'read', context });
    });
  }

  /**
   * Hands leadership to `target` (§3.10). Resolves true once this node sees `target` lead,
   * false if that did not happen within the request timeout.
   */
  transferLeadership(target: NodeId): Promise<boolean> {
    return new Promise<boolean>((resolve, reject) => {
      if (this.rejectIfStopped(reject)) return;
      const waiter = {
        target,
        done: (ok: boolean): void => {
          this.clock.clearTimeout(timer);
          this.transferWaiters.delete(waiter);
          resolve(ok);
        },
      };
      const timer = this.clock.setTimeout(() => waiter.done(false), this.requestTimeoutMs);
      this.transferWaiters.add(waiter);
      this.push({
        kind: 'transfer',
        target,
        fail: (error) => {
          this.clock.clearTimeout(timer);
          this.transferWaiters.delete(waiter);
          reject(error);
        },
      });
    });
  }

  /**
   * Snapshots the applied state now and compacts the log up to it (an operator's
   * `POST /cluster/snapshot`), between two turns of the loop. Resolves with the snapshot
   * taken, or the latest one when nothing was applied since.
   */
  snapshotNow(): Promise<TakenSnapshot> {
    return new Promise<TakenSnapshot>((resolve, reject) => {
      if (this.rejectIfStopped(reject)) return;
      this.snapshotWaiters.push({ resolve, reject });
      this.push({ kind: 'snapshot-now' });
    });
  }

  /**
   * The transport could not deliver to `to` (a failed connection or request; etcd's
   * `ReportUnreachable`). A leader then stops pipelining appends into it (replicate → probe)
   * and probes once per heartbeat until it answers. Safe to call from any callback, any
   * number of times; ignored before `start()` completes and after `stop()`.
   */
  reportUnreachable(to: NodeId): void {
    if (this.stopped || !this.listening) return;
    this.push({ kind: 'unreachable', to });
  }

  /** Called with the new soft state whenever the leader or this node's role changes. */
  onLeaderChange(listener: (soft: SoftState) => void): () => void {
    this.leaderListeners.add(listener);
    return () => this.leaderListeners.delete(listener);
  }

  status(): Status & { readonly appliedConf: ConfState; readonly snapshotIndex: number } {
    return {
      ...this.raw.status(),
      applied: this.applied,
      appliedConf: this.appliedConf,
      snapshotIndex: this.snapshotIndex,
    };
  }

  isLeader(): boolean {
    return this.soft.role === 'leader';
  }

  leaderId(): NodeId {
    return this.soft.lead;
  }

  /** Resolves once the loop has nothing queued (tests use it to let the node settle). */
  idle(): Promise<void> {
    if (!this.looping && this.inputs.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * Stops the node: optionally hands leadership to the most up-to-date voter first (graceful
   * shutdown), stops ticking, lets the current loop turn finish and fails everything pending
   * with NodeStoppedError. Does not close the storage (its owner does).
   */
  async stop(options: { transferLeadership?: boolean } = {}): Promise<void> {
    if (this.stopped) return;
    if (options.transferLeadership === true && this.started && this.isLeader()) {
      const target = this.bestTransferTarget();
      if (target !== NONE) await this.transferLeadership(target).catch(() => false);
    }
    this.stopped = true;
    if (this.tickTimer !== undefined) this.clock.clearTimeout(this.tickTimer);
    await this.loopDone;
    const error = new NodeStoppedError();
    for (const [, pending] of this.proposals) pending.waiter.reject(error);
    this.proposals.clear();
    for (const input of this.inputs) this.failInput(input, error);
    this.inputs = [];
    for (const [, read] of this.reads) {
      this.clock.clearTimeout(read.timer);
      read.reject(error);
    }
    this.reads.clear();
    for (const waiter of [...this.transferWaiters]) waiter.done(false);
    for (const waiter of this.snapshotWaiters.splice(0)) waiter.reject(error);
    for (const session of this.outgoing.values()) this.failSession(session);
    if (this.incoming !== undefined) await this.incoming.writer.abort();
    this.incoming = undefined;
    this.notifyIdle();
  }

  // -------------------------------------------------------------------------------------
  // Loop

  private rejectIfStopped(reject: (error: Error) => void): boolean {
    if (this.fatal !== undefined) reject(this.fatal);
    else if (this.stopped || !this.started)
      reject(new NodeStoppedError(this.started ? undefined : 'the Raft node is not started'));
    else return false;
    return true;
  }

  private onMessage(message: Message): void {
    if (this.stopped) return;
    if (message.to !== this.id) return;
    if (message.type === 'snapshot-ack')
      this.onSnapshotAck(message.from, message.snapshotIndex, message.nextOffset, message.rejected);
    this.push({ kind: 'message', message });
  }

  private scheduleTick(): void {
    if (this.stopped) return;
    this.tickTimer = this.clock.setTimeout(() => {
      this.push({ kind: 'tick' });
      this.scheduleTick();
    }, this.tickMs);
  }

  private push(input: Input): void {
    this.inputs.push(input);
    this.kick();
  }

  private kick(): void {
    if (this.looping || this.stopped) return;
    this.looping = true;
    this.loopDone = this.loop().then(
      () => undefined,
      (error: unknown) => this.die(error),
    );
  }

  private async loop(): Promise<void> {
    try {
      while (!this.stopped) {
        const inputs = this.inputs;
        this.inputs = [];
        for (const input of inputs) this.stepInput(input);
        this.warnOfForeignLogs();
        if (this.snapshotWaiters.length > 0) await this.serveSnapshotRequests();
        if (!this.raw.hasReady()) {
          if (this.inputs.length === 0) break;
          continue;
        }
        const ready = this.raw.ready();
        const installs = await this.handleReady(ready);
        this.raw.advance(ready);
        for (const meta of installs) this.inputs.push({ kind: 'install-snapshot', meta });
        await this.maybeSnapshot();
      }
    } finally {
      this.looping = false;
      if (this.inputs.length > 0 && !this.stopped) this.kick();
      else this.notifyIdle();
    }
  }

  /**
   * Logs (at most once a minute) when the core ignored acknowledgements beyond its log: a
   * follower holds a log this cluster did not build, and will not be replicated to.
   */
  private warnOfForeignLogs(): void {
    // Runs on every turn of the loop: read the core's counter, not a whole status().
    const { acksBeyondLog, lastAckBeyondLogFrom } = this.raw.raft;
    if (acksBeyondLog === this.acksBeyondLogWarned) return;
    const lastIndex = this.raw.raft.log.lastIndex();
    const now = this.clock.now();
    if (now - this.acksBeyondLogWarnedAt < 60_000) return;
    this.acksBeyondLogWarned = acksBeyondLog;
    this.acksBeyondLogWarnedAt = now;
    this.logger.warn(
      { nodeId: this.id, peer: lastAckBeyondLogFrom, lastIndex, acksBeyondLog },
      `node ${lastAckBeyondLogFrom} acknowledged entries beyond this leader's log: it holds a ` +
        'Raft log this cluster did not build (was it kept while the other data directories ' +
        'were wiped?). It is not replicated to; stop it, and wipe its data directory or restore ' +
        'the others from it.',
    );
  }

  private notifyIdle(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }

  /** A storage or state-machine failure: the node cannot continue safely. */
  private die(error: unknown): void {
    const fatal = error instanceof Error ? error : new InvariantViolation(String(error));
    this.fatal = fatal;
    this.logger.error({ nodeId: this.id, err: fatal }, 'Raft node stopped on a fatal error');
    this.stopped = true;
    if (this.tickTimer !== undefined) this.clock.clearTimeout(this.tickTimer);
    for (const [, pending] of this.proposals) pending.waiter.reject(fatal);
    this.proposals.clear();
    for (const input of this.inputs) this.failInput(input, fatal);
    this.inputs = [];
    this.notifyIdle();
  }

  private failInput(input: Input, error: Error): void {
    if (input.kind === 'propose' || input.kind === 'conf-change') input.waiter.reject(error);
    else if (input.kind === 'transfer') input.fail(error);
  }

  private stepInput(input: Input): void {
    const raw = this.raw;
    switch (input.kind) {
      case 'tick':
        raw.tick();
        return;
      case 'message':
        raw.step(input.message);
        return;
      case 'propose':
      case 'conf-change':
        try {
          const position =
            input.kind === 'propose'
              ? raw.propose(input.data)
              : raw.proposeConfChange(input.change);
          this.proposals.set(position.index, { term: position.term, waiter: input.waiter });
        } catch (error) {
          input.waiter.reject(
            error instanceof Error ? error : new InvariantViolation(String(error)),
          );
        }
        return;
      case 'read':
        raw.readIndex(input.context);
        return;
      case 'transfer':
        try {
          raw.transferLeadership(input.target);
        } catch (error) {
          input.fail(error instanceof Error ? error : new InvariantViolation(String(error)));
        }
        return;
      case 'snapshot-report':
        raw.reportSnapshot(input.to, input.success);
        return;
      case 'unreachable':
        raw.reportUnreachable(input.to);
        return;
      case 'install-snapshot':
        raw.installSnapshot(input.meta);
        return;
      case 'snapshot-now':
        return; // served by the loop between two Readies
    }
  }

  /** Persist → send → apply, in the order the Ready demands. Returns snapshots to install. */
  private async handleReady(ready: Ready): Promise<SnapshotMeta[]> {
    const { storage, stateMachine, snapshotStore, transport } = this.options;
    // 1. Persist.
    if (ready.snapshot !== undefined) {
      const meta = ready.snapshot;
      const started = this.clock.now();
      await stateMachine.restore(snapshotStore.read(meta.index), meta);
      await storage.applySnapshot(meta);
      this.applied = meta.index;
      this.snapshotIndex = meta.index;
      this.appliedConf = meta.conf;
      this.logger.info(
        {
          nodeId: this.id,
          index: meta.index,
          term: meta.term,
          ms: Math.round(this.clock.now() - started),
        },
        'Installed the snapshot received from the leader',
      );
      for (const [index, pending] of this.proposals) {
        if (index <= meta.index) {
          this.proposals.delete(index);
          pending.waiter.reject(new LeadershipLostError(index, pending.term, false));
        }
      }
    }
    if (ready.entries.length > 0) storage.append(ready.entries);
    if (ready.hardState !== undefined) storage.setHardState(ready.hardState);
    if (ready.mustSync) await storage.sync();
    // 2. Send (only now: votes and acknowledgements promise what was just made durable).
    for (const message of ready.messages) transport.send(message.to, message);
    for (const request of ready.snapshotsToSend) {
      this.logger.info(
        { nodeId: this.id, to: request.to, index: request.meta.index },
        'Sending a snapshot to a follower whose entries were compacted',
      );
      void this.streamSnapshot(request.to, request.term, request.meta);
    }
    const installs: SnapshotMeta[] = [];
    for (const chunk of ready.snapshotChunks) {
      const meta = await this.receiveChunk(chunk);
      if (meta !== undefined) installs.push(meta);
    }
    // 3. Apply.
    for (const entry of ready.committedEntries) {
      let result: unknown = undefined;
      if (entry.kind === 'conf-change') {
        this.appliedConf = decodeConfChange(entry.data).conf;
      } else if (entry.data.length > 0) {
        result = await stateMachine.apply(entry);
      }
      this.applied = entry.index;
      const pending = this.proposals.get(entry.index);
      if (pending !== undefined) {
        this.proposals.delete(entry.index);
        if (pending.term === entry.term)
          pending.waiter.resolve({ index: entry.index, term: entry.term, result });
        else pending.waiter.reject(new LeadershipLostError(entry.index, pending.term, true));
      }
    }
    // After applying: entries this Ready commits resolve before a step-down fails the rest.
    if (ready.softState !== undefined) this.onSoftState(ready.softState);
    // 4. Reads.
    for (const state of ready.readStates) {
      const read = this.reads.get(state.context);
      if (read !== undefined) read.index = state.index;
    }
    for (const context of ready.readFailures) {
      const read = this.reads.get(context);
      if (read === undefined) continue;
      this.reads.delete(context);
      this.clock.clearTimeout(read.timer);
      const leader = this.raw.raft.lead;
      read.reject(
        leader === this.id
          ? new ProposalDroppedError('read-not-ready')
          : new NotLeaderError(leader),
      );
    }
    for (const [context, read] of this.reads) {
      if (read.index !== undefined && read.index <= this.applied) {
        this.reads.delete(context);
        this.clock.clearTimeout(read.timer);
        read.resolve(read.index);
      }
    }
    return installs;
  }

  private onSoftState(soft: SoftState): void {
    const wasLeader = this.soft.role === 'leader';
    this.soft = soft;
    this.logger.info(
      { nodeId: this.id, term: this.raw.raft.term, leader: soft.lead, role: soft.role },
      'Raft role changed',
    );
    if (wasLeader && soft.role !== 'leader') {
      // Leadership lost: our uncommitted entries may or may not survive. Fail them now so
      // clients retry against the new leader, rather than wait for an outcome we may never see.
      for (const [index, pending] of this.proposals)
        pending.waiter.reject(new LeadershipLostError(index, pending.term, false));
      this.proposals.clear();
      for (const session of this.outgoing.values()) this.failSession(session);
    }
    for (const waiter of [...this.transferWaiters])
      if (soft.lead === waiter.target) waiter.done(true);
    for (const listener of this.leaderListeners) listener(soft);
  }

  private bestTransferTarget(): NodeId {
    let best: NodeId = NONE;
    let bestMatch = -1;
    for (const [id, progress] of this.raw.status().progress) {
      if (id === this.id || !this.appliedConf.voters.includes(id)) continue;
      if (progress.match > bestMatch) {
        best = id;
        bestMatch = progress.match;
      }
    }
    return best;
  }

  // -------------------------------------------------------------------------------------
  // Snapshots

  /** Log compaction (§5): snapshot the state machine at the applied index, then compact. */
  private async maybeSnapshot(): Promise<void> {
    const every = this.options.snapshotEvery ?? 10_000;
    if (every <= 0 || this.applied - this.snapshotIndex < every) return;
    await this.takeSnapshot();
  }

  private async serveSnapshotRequests(): Promise<void> {
    const waiters = this.snapshotWaiters;
    this.snapshotWaiters = [];
    try {
      const taken =
        this.applied > this.snapshotIndex
          ? await this.takeSnapshot()
          : { ...this.options.storage.snapshotMeta(), bytes: 0 };
      for (const waiter of waiters)
        waiter.resolve({ index: taken.index, term: taken.term, bytes: taken.bytes });
    } catch (error) {
      for (const waiter of waiters) waiter.reject(error as Error);
    }
  }

  /** Writes the state machine's image at the applied index, then compacts the log to it. */
  private async takeSnapshot(): Promise<TakenSnapshot> {
    const index = this.applied;
    const meta: SnapshotMeta = {
      index,
      term: this.options.storage.term(index),
      conf: this.appliedConf,
    };
    const started = this.clock.now();
    const writer = await this.options.snapshotStore.create(meta);
    let bytes = 0;
    try {
      for await (const chunk of this.options.stateMachine.snapshot()) {
        bytes += chunk.length;
        await writer.write(chunk);
      }
      await writer.commit();
    } catch (error) {
      await writer.abort();
      throw error;
    }
    await this.options.storage.applySnapshot(meta);
    this.snapshotIndex = index;
    this.logger.info(
      {
        nodeId: this.id,
        index,
        term: meta.term,
        bytes,
        ms: Math.round(this.clock.now() - started),
      },
      'Raft snapshot taken, log compacted',
    );
    return { index, term: meta.term, bytes };
  }

  /** Leader side of InstallSnapshot: streams chunks with a window of unacknowledged ones. */
  private async streamSnapshot(to: NodeId, term: number, meta: SnapshotMeta): Promise<void> {
    const previous = this.outgoing.get(to);
    if (previous !== undefined) this.failSession(previous);
    const session: OutgoingSnapshot = { meta, ackedOffset: 0, failed: false, wake: undefined };
    this.outgoing.set(to, session);
    const chunkBytes = this.options.snapshotChunkBytes ?? 64 * 1024;
    const window = (this.options.snapshotWindow ?? 4) * chunkBytes;
    let success = false;
    try {
      let offset = 0;
      let pending: Uint8Array | undefined;
      const sendChunk = async (data: Uint8Array, done: boolean): Promise<void> => {
        while (!session.failed && offset - session.ackedOffset >= window)
          await this.waitForAck(session);
        if (session.failed) return;
        this.options.transport.send(to, {
          type: 'snapshot-chunk',
          from: this.id,
          to,
          term,
          snapshotIndex: meta.index,
          snapshotTerm: meta.term,
          voters: [...meta.conf.voters],
          learners: [...meta.conf.learners],
          offset,
          data,
          done,
        });
        offset += data.length;
      };
      for await (const chunk of rechunk(this.options.snapshotStore.read(meta.index), chunkBytes)) {
        if (pending !== undefined) await sendChunk(pending, false);
        pending = chunk;
        if (session.failed) break;
      }
      await sendChunk(pending ?? new Uint8Array(0), true);
      while (!session.failed && session.ackedOffset < offset) await this.waitForAck(session);
      success = !session.failed;
    } catch (error) {
      this.logger.warn(
        { nodeId: this.id, to, index: meta.index, err: error },
        'snapshot stream failed',
      );
    } finally {
      if (this.outgoing.get(to) === session) this.outgoing.delete(to);
      if (!this.stopped) {
        if (!success)
          this.logger.warn(
            { nodeId: this.id, to, index: meta.index },
            'snapshot not delivered; will retry',
          );
        this.push({ kind: 'snapshot-report', to, success });
      }
    }
  }

  private waitForAck(session: OutgoingSnapshot): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = this.clock.setTimeout(() => {
        session.failed = true;
        resolve();
      }, this.requestTimeoutMs);
      session.wake = () => {
        this.clock.clearTimeout(timer);
        session.wake = undefined;
        resolve();
      };
    });
  }

  private failSession(session: OutgoingSnapshot): void {
    session.failed = true;
    session.wake?.();
  }

  private onSnapshotAck(from: NodeId, index: number, nextOffset: number, rejected: boolean): void {
    const session = this.outgoing.get(from);
    if (session?.meta.index !== index) return;
    if (rejected) session.failed = true;
    else session.ackedOffset = Math.max(session.ackedOffset, nextOffset);
    session.wake?.();
  }

  /** Follower side: writes chunks in order into the SnapshotStore, acknowledging each. */
  private async receiveChunk(chunk: SnapshotChunk): Promise<SnapshotMeta | undefined> {
    const meta: SnapshotMeta = {
      index: chunk.snapshotIndex,
      term: chunk.snapshotTerm,
      conf: { voters: chunk.voters, learners: chunk.learners },
    };
    const ack = (nextOffset: number, rejected: boolean): void =>
      this.options.transport.send(chunk.from, {
        type: 'snapshot-ack',
        from: this.id,
        to: chunk.from,
        term: chunk.term,
        snapshotIndex: chunk.snapshotIndex,
        nextOffset,
        rejected,
      });
    if (chunk.offset === 0) {
      if (this.incoming !== undefined) await this.incoming.writer.abort();
      this.incoming = {
        from: chunk.from,
        meta,
        writer: await this.options.snapshotStore.create(meta),
        nextOffset: 0,
      };
    }
    const incoming = this.incoming;
    if (
      incoming?.meta.index !== chunk.snapshotIndex ||
      incoming.from !== chunk.from ||
      incoming.nextOffset !== chunk.offset
    ) {
      if (
        incoming !== undefined &&
        incoming.nextOffset > chunk.offset &&
        incoming.meta.index === chunk.snapshotIndex
      ) {
        ack(incoming.nextOffset, false); // a duplicate: already written
        return undefined;
      }
      ack(incoming?.nextOffset ?? 0, true);
      return undefined;
    }
    await incoming.writer.write(chunk.data);
    incoming.nextOffset += chunk.data.length;
    if (chunk.done) {
      await incoming.writer.commit();
      this.incoming = undefined;
    }
    ack(incoming.nextOffset, false);
    return chunk.done ? meta : undefined;
  }
}

/** Re-cuts a stream of byte pieces into chunks of exactly `size` bytes (the last may be shorter). */
async function* rechunk(
  pieces: AsyncIterable<Uint8Array>,
  size: number,
): AsyncIterable<Uint8Array> {
  let buffer = new Uint8Array(size);
  let filled = 0;
  for await (const piece of pieces) {
    let at = 0;
    while (at < piece.length) {
      const take = Math.min(size - filled, piece.length - at);
      buffer.set(piece.subarray(at, at + take), filled);
      filled += take;
      at += take;
      if (filled === size) {
        yield buffer;
        buffer = new Uint8Array(size);
        filled = 0;
      }
    }
  }
  if (filled > 0) yield buffer.subarray(0, filled);
}
