import { decodeConfChange } from '../core/conf-change';
import type { ConfChange } from '../core/conf-change';
import { NotLeaderError, ProposalDroppedError } from '../core/errors';
import type { Message } from '../core/messages';
import { Prng } from '../core/prng';
import { RawNode } from '../core/raw-node';
import type { Ready } from '../core/raw-node';

import type { ConfState, Entry, NodeId, SnapshotMeta } from '../core/types';
import { LogMatchingChecker, SafetyViolation, mixEntry } from './checker';
import { SimDisk } from './sim-disk';

/** Knobs of one simulated run. Probabilities are per simulation step. */
export interface SimulationOptions {
  readonly seed: number;
  /** Cluster size (all voters at start). Default 3. */
  readonly nodes?: number;
  /** Steps of the faulty phase; the liveness phase follows. Default 1500. */
  readonly steps?: number;
  /** Steps the healed cluster gets to elect a leader and commit a proposal. Default 400. */
  readonly livenessSteps?: number;
  readonly dropRate?: number;
  readonly duplicateRate?: number;
  /** Messages take 1 + [0, maxDelay) steps: random delays reorder them. Default 4. */
  readonly maxDelay?: number;
  readonly crashRate?: number;
  readonly restartRate?: number;
  readonly partitionRate?: number;
  readonly healRate?: number;
  readonly proposeRate?: number;
  /** Chance per step that a random node starts a linearizable read (ReadIndex). */
  readonly readRate?: number;
  readonly confChangeRate?: number;
  readonly transferRate?: number;
  readonly compactRate?: number;
  /** Chance per step that a pending fsync completes (slow disks keep Readies in flight). */
  readonly syncRate?: number;
  /**
   * The core's `maxUncommittedEntriesSize`. Default: 64 bytes (8 proposals; a conf change
   * entry is about 30) for half the seeds, so stalled leaders run into it before check-quorum
   * deposes them, and 0 (no limit) for the other half, so long uncommitted tails and their
   * conflicts stay covered.
   */
  readonly maxUncommittedEntriesSize?: number;
}

export interface SimulationStats {
  steps: number;
  ticks: number;
  proposals: number;
  acknowledged: number;
  lost: number;
  messages: number;
  dropped: number;
  crashes: number;
  lostWrites: number;
  elections: number;
  confChanges: number;
  transfers: number;
  snapshotsSent: number;
  snapshotsInstalled: number;
  compactions: number;
  reads: number;
  readsServed: number;
  /** Proposals the leader refused with `'uncommitted-limit'`. */
  uncommittedDrops: number;
}

export interface SimulationResult {
  readonly ok: boolean;
  readonly seed: number;
  readonly nodes: number;
  readonly stats: SimulationStats;
  /** The broken property and what happened, when `ok` is false. */
  readonly failure?: string;
  /** One command line that replays this run. */
  readonly repro: string;
}

/** A one-line command that reruns a seed. */
export function reproCommand(seed: number, nodes: number, steps: number): string {
  return `npm run sim -- --seed ${seed} --nodes ${nodes} --steps ${steps}`;
}

interface Proposal {
  readonly id: number;
  readonly index: number;
  readonly term: number;
  readonly hash: number;
}

interface Assembly {
  readonly from: NodeId;
  readonly meta: SnapshotMeta;
  nextOffset: number;
  parts: Uint8Array[];
}

interface SimNode {
  readonly id: NodeId;
  raw: RawNode | undefined;
  readonly disk: SimDisk;
  /** Durable snapshot store: index → image. */
  readonly snapshots: Map<number, Uint8Array>;
  inbox: Message[];
  owedTicks: number;
  /** A Ready written to disk whose fsync has not completed. */
  inFlight: Ready | undefined;
  /** State machine: chained hash of every applied entry, and the index applied. */
  smIndex: number;
  smHash: number;
  appliedConf: ConfState;
  proposals: Map<number, Proposal>;
  assembly: Assembly | undefined;
  /** Leader side: snapshot streams awaiting the follower's final ack (to → [index, started]). */
  outgoing: Map<NodeId, { index: number; size: number; startedAt: number }>;
  snapshotReports: { to: NodeId; success: boolean }[];
  /** Peers a message could not reach over a cut link, reported at the next turn. */
  unreachable: Set<NodeId>;
  leaderTerm: number;
  /** Reads in progress: context → the highest acknowledged index when the read started. */
  reads: Map<number, number>;
}

const CHUNK_BYTES = 512;
const ELECTION_TICK = 10;

/**
 * Deterministic simulation of a Raft cluster (FoundationDB / TigerBeetle style): one seeded
 * PRNG drives a lossy, reordering, duplicating, partitionable network, crashes with torn
 * unsynced writes, restarts, membership changes, leadership transfers and log compaction,
 * while invariant checkers run after every step.
 *
 * It drives the same {@link RawNode} the driver runs, through a synchronous harness that
 * follows the driver's loop exactly (inputs → Ready → write → fsync → send → apply →
 * advance; inputs that arrive while a Ready is in flight are queued). Running the async
 * `RaftNode` itself over a simulated clock would add nothing the core does not already see
 * (the driver's own logic is covered by its spec with a manual clock) but would make every
 * step cost several promise turns, i.e. far fewer seeds per CI minute.
 */
export class Simulation {
  private readonly prng: Prng;
  private readonly options: Required<SimulationOptions>;
  private readonly nodes = new Map<NodeId, SimNode>();
  private network: { at: number; m: Message }[] = [];
  /** Cut links "a-b" (directional). */
  private readonly cut = new Set<string>();
  private now = 0;
  private nextProposalId = 1;
  private nextReadContext = 1;
  private maxAcknowledgedIndex = 0;
  private readonly logMatching = new LogMatchingChecker();
  private readonly leaderOfTerm = new Map<number, NodeId>();
  /** State Machine Safety: state hash after applying each index, and the entry term there. */
  private readonly appliedAt = new Map<number, { term: number; stateHash: number }>();
  private maxApplied = 0;
  private readonly acknowledged: Proposal[] = [];
  private faulty = true;
  readonly stats: SimulationStats = {
    steps: 0,
    ticks: 0,
    proposals: 0,
    acknowledged: 0,
    lost: 0,
    messages: 0,
    dropped: 0,
    crashes: 0,
    lostWrites: 0,
    elections: 0,
    confChanges: 0,
    transfers: 0,
    snapshotsSent: 0,
    snapshotsInstalled: 0,
    compactions: 0,
    reads: 0,
    readsServed: 0,
    uncommittedDrops: 0,
  };

  constructor(options: SimulationOptions) {
    this.options = {
      nodes: 3,
      steps: 1500,
      livenessSteps: 400,
      dropRate: 0.05,
      duplicateRate: 0.02,
      maxDelay: 4,
      crashRate: 0.004,
      restartRate: 0.05,
      partitionRate: 0.004,
      healRate: 0.02,
      proposeRate: 0.3,
      readRate: 0.1,
      confChangeRate: 0.004,
      transferRate: 0.003,
      compactRate: 0.01,
      syncRate: 0.7,
      maxUncommittedEntriesSize: (options.seed >>> 1) % 2 === 0 ? 64 : 0,
      ...options,
    };
    this.prng = new Prng(options.seed);
    const voters = Array.from({ length: this.options.nodes }, (_, i) => i + 1);
    for (const id of voters) this.createNode(id, { voters, learners: [] });
  }

  /** Runs the faulty phase, then the liveness phase. Never throws: failures are in the result. */
  run(): SimulationResult {
    const { seed, nodes, steps } = this.options;
    const repro = reproCommand(seed, nodes, steps);
    try {
      for (let i = 0; i < steps; i++) this.step();
      this.checkLiveness();
      return { ok: true, seed, nodes, stats: this.stats, repro };
    } catch (error) {
      const failure =
        error instanceof Error
          ? `${error.name}: ${error.message} (step ${this.stats.steps})`
          : String(error);
      return { ok: false, seed, nodes, stats: this.stats, failure, repro };
    }
  }

  // -------------------------------------------------------------------------------------
  // Nodes

  private createNode(id: NodeId, bootstrap: ConfState): void {
    const disk = new SimDisk(bootstrap, (event) => {
      if (event.kind === 'append') this.logMatching.append(id, event.entries);
      else this.resetLogMatching(id, disk);
    });
    const node: SimNode = {
      id,
      raw: undefined,
      disk,
      snapshots: new Map(),
      inbox: [],
      owedTicks: 0,
      inFlight: undefined,
      smIndex: 0,
      smHash: 0,
      appliedConf: bootstrap,
      proposals: new Map(),
      assembly: undefined,
      outgoing: new Map(),
      snapshotReports: [],
      unreachable: new Set(),
      leaderTerm: 0,
      reads: new Map(),
    };
    this.nodes.set(id, node);
    this.resetLogMatching(id, disk);
    this.start(node);
  }

  private resetLogMatching(id: NodeId, disk: SimDisk): void {
    const meta = disk.snapshotMeta();
    const entries =
      disk.lastIndex() >= disk.firstIndex()
        ? disk.entries(disk.firstIndex(), disk.lastIndex() + 1, Infinity)
        : [];
    this.logMatching.reset(id, meta.index, meta.term, entries);
  }

  /** Boots a node from its disk: snapshot into the state machine, then replay via Readies. */
  private start(node: SimNode): void {
    const meta = node.disk.snapshotMeta();
    if (meta.index > 0) {
      const image = node.snapshots.get(meta.index);
      if (image === undefined)
        throw new SafetyViolation('durability', `node ${node.id} lost snapshot ${meta.index}`);
      this.restoreStateMachine(node, meta, image);
    } else {
      node.smIndex = 0;
      node.smHash = 0;
      node.appliedConf = node.disk.initialState().conf;
    }
    node.raw = new RawNode({
      id: node.id,
      storage: node.disk,
      electionTick: ELECTION_TICK,
      heartbeatTick: 1,
      randomSeed: this.prng.nextUint32(),
      maxSizePerMsg: 2048,
      maxInflightMsgs: 8,
      maxLearnerLag: 5,
      maxUncommittedEntriesSize: this.options.maxUncommittedEntriesSize,
    });
  }

  private crash(node: SimNode): void {
    this.stats.crashes++;
    this.stats.lostWrites += node.disk.crash(this.prng);
    node.raw = undefined;
    node.inbox = [];
    node.owedTicks = 0;
    node.inFlight = undefined;
    node.proposals.clear(); // the driver would reject them with NodeStoppedError
    node.assembly = undefined;
    node.outgoing.clear();
    node.snapshotReports = [];
    node.unreachable.clear();
    node.leaderTerm = 0;
    node.reads.clear();
  }

  private alive(): SimNode[] {
    return [...this.nodes.values()].filter((n) => n.raw !== undefined);
  }

  // -------------------------------------------------------------------------------------
  // One step

  private step(): void {
    this.stats.steps++;
    this.now++;
    if (this.faulty) this.injectFaults();
    this.deliverDue();
    const tick = this.now % 2 === 0;
    for (const node of this.nodes.values()) {
      if (node.raw === undefined) continue;
      if (tick) node.owedTicks++;
      this.runNode(node);
    }
    this.checkStep();
  }

  private injectFaults(): void {
    const o = this.options;
    const p = this.prng;
    const all = [...this.nodes.values()];
    if (p.chance(o.crashRate)) {
      // Half the crashes hit a node with writes awaiting fsync: the interesting case.
      const unsynced = this.alive().filter((n) => n.disk.hasUnsynced());
      const victims = unsynced.length > 0 && p.chance(0.5) ? unsynced : this.alive();
      if (victims.length > 0) this.crash(p.pick(victims));
    }
    for (const node of all) {
      if (node.raw === undefined && p.chance(o.restartRate)) this.start(node);
    }
    if (p.chance(o.partitionRate)) this.partition();
    if (p.chance(o.healRate)) this.cut.clear();
    if (p.chance(o.confChangeRate)) this.changeMembership();
    if (p.chance(o.transferRate)) this.transfer();
    for (const node of all) if (p.chance(o.compactRate)) this.compact(node);
    if (p.chance(o.proposeRate)) this.propose();
    if (p.chance(o.readRate)) this.startRead();
  }

  private partition(): void {
    const ids = [...this.nodes.keys()];
    this.cut.clear();
    if (this.prng.chance(0.5)) {
      // Isolate one node.
      const isolated = this.prng.pick(ids);
      for (const other of ids) if (other !== isolated) this.cutBoth(isolated, other);
    } else {
      // Random split (possibly asymmetric: one direction only).
      const side = new Map(ids.map((id) => [id, this.prng.chance(0.5)]));
      const oneWay = this.prng.chance(0.2);
      for (const a of ids) {
        for (const b of ids) {
          if (side.get(a) && !side.get(b)) {
            this.cut.add(`${a}-${b}`);
            if (!oneWay) this.cut.add(`${b}-${a}`);
          }
        }
      }
    }
  }

  private cutBoth(a: NodeId, b: NodeId): void {
    this.cut.add(`${a}-${b}`);
    this.cut.add(`${b}-${a}`);
  }

  private send(m: Message): void {
    this.stats.messages++;
    if (this.cut.has(`${m.from}-${m.to}`)) {
      // A transport sees a cut link fail (no connection) and tells the sender, like the app's
      // PeerTransport; a random drop below is a silent loss nobody notices.
      this.nodes.get(m.from)?.unreachable.add(m.to);
      this.stats.dropped++;
      return;
    }
    if (this.faulty && this.prng.chance(this.options.dropRate)) {
      this.stats.dropped++;
      return;
    }
    const copies = this.faulty && this.prng.chance(this.options.duplicateRate) ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      this.network.push({ at: this.now + 1 + this.prng.nextInt(this.options.maxDelay), m });
    }
  }

  private deliverDue(): void {
    const due: Message[] = [];
    const later: { at: number; m: Message }[] = [];
    for (const item of this.network) {
      if (item.at <= this.now) due.push(item.m);
      else later.push(item);
    }
    this.network = later;
    for (const m of due) {
      const node = this.nodes.get(m.to);
      if (node?.raw === undefined) continue;
      if (m.type === 'snapshot-ack')
        this.onSnapshotAck(node, m.from, m.snapshotIndex, m.nextOffset, m.rejected);
      node.inbox.push(m);
    }
  }

  /** The driver loop, one turn: complete an in-flight Ready, or step inputs and take one. */
  private runNode(node: SimNode): void {
    const raw = node.raw;
    if (raw === undefined) return;
    if (node.inFlight !== undefined) {
      if (!this.prng.chance(this.options.syncRate)) return; // fsync still running
      node.disk.syncNow();
      this.completeReady(node, raw, node.inFlight);
      node.inFlight = undefined;
    }
    for (; node.owedTicks > 0; node.owedTicks--) {
      raw.tick();
      this.stats.ticks++;
    }
    for (const report of node.snapshotReports) raw.reportSnapshot(report.to, report.success);
    node.snapshotReports = [];
    for (const to of node.unreachable) raw.reportUnreachable(to);
    node.unreachable.clear();
    const inbox = node.inbox;
    node.inbox = [];
    for (const m of inbox) raw.step(m);
    this.noticeLeadership(node, raw);
    if (!raw.hasReady()) return;
    const rd = raw.ready();
    // Persist: snapshot first (atomic, durable), then entries and hard state (unsynced).
    if (rd.snapshot !== undefined) {
      const image = node.snapshots.get(rd.snapshot.index);
      if (image === undefined)
        throw new SafetyViolation(
          'snapshot',
          `node ${node.id} has no image for ${rd.snapshot.index}`,
        );
      node.disk.applySnapshotSync(rd.snapshot);
      this.restoreStateMachine(node, rd.snapshot, image);
      this.stats.snapshotsInstalled++;
    }
    node.disk.append(rd.entries);
    for (const entry of rd.entries) {
      // Like the driver: a pending proposal whose index is overwritten by another term's entry
      // will never commit there (rejected with LeadershipLostError).
      const proposal = node.proposals.get(entry.index);
      if (proposal !== undefined && proposal.term !== entry.term) {
        node.proposals.delete(entry.index);
        this.stats.lost++;
      }
    }
    if (rd.hardState !== undefined) node.disk.setHardState(rd.hardState);
    node.inFlight = rd;
    if (!rd.mustSync && !node.disk.hasUnsynced()) {
      this.completeReady(node, raw, rd);
      node.inFlight = undefined;
    }
  }

  private completeReady(node: SimNode, raw: RawNode, rd: Ready): void {
    for (const m of rd.messages) this.send(m);
    for (const request of rd.snapshotsToSend)
      this.sendSnapshot(node, request.to, request.term, request.meta);
    let install: SnapshotMeta | undefined;
    for (const chunk of rd.snapshotChunks) install = this.receiveChunk(node, chunk) ?? install;
    for (const entry of rd.committedEntries) this.apply(node, entry);
    for (const state of rd.readStates) {
      // Linearizability of ReadIndex (§6.4): the read index covers every write acknowledged
      // before the read started.
      const minIndex = node.reads.get(state.context);
      if (minIndex === undefined) continue;
      node.reads.delete(state.context);
      if (state.index < minIndex) {
        throw new SafetyViolation(
          'linearizable-read',
          `node ${node.id} got read index ${state.index} below acknowledged index ${minIndex}`,
        );
      }
      this.stats.readsServed++;
    }
    for (const context of rd.readFailures) node.reads.delete(context);
    raw.advance(rd);
    if (install !== undefined) raw.installSnapshot(install);
  }

  private noticeLeadership(node: SimNode, raw: RawNode): void {
    if (!raw.isLeader()) {
      node.leaderTerm = 0;
      return;
    }
    const term = raw.raft.term;
    if (node.leaderTerm === term) return;
    node.leaderTerm = term;
    this.stats.elections++;
    // Election Safety (§3.4): at most one leader per term, ever.
    const known = this.leaderOfTerm.get(term);
    if (known !== undefined && known !== node.id) {
      throw new SafetyViolation(
        'election-safety',
        `nodes ${known} and ${node.id} both led term ${term}`,
      );
    }
    this.leaderOfTerm.set(term, node.id);
    // Leader Completeness (§3.6): the new leader holds every entry applied anywhere.
    const log = raw.raft.log;
    const compacted = log.firstIndex() - 1;
    for (let index = compacted + 1; index <= this.maxApplied; index++) {
      const applied = this.appliedAt.get(index);
      if (applied !== undefined && log.termOrZero(index) !== applied.term) {
        throw new SafetyViolation(
          'leader-completeness',
          `leader ${node.id} of term ${term} has term ${log.termOrZero(index)} at committed index ${index} (term ${applied.term})`,
        );
      }
    }
    for (const ack of this.acknowledged) this.checkAckInLeader(ack, node, raw);
  }

  private checkAckInLeader(ack: Proposal, node: SimNode, raw: RawNode): void {
    const log = raw.raft.log;
    if (ack.index < log.firstIndex()) return; // compacted: covered by the state hash check
    if (log.termOrZero(ack.index) !== ack.term) {
      throw new SafetyViolation(
        'acknowledged-proposal-lost',
        `proposal ${ack.id} acknowledged at ${ack.index}@${ack.term} is missing from leader ${node.id} (term ${raw.raft.term})`,
      );
    }
  }

  // -------------------------------------------------------------------------------------
  // State machine

  private apply(node: SimNode, entry: Entry): void {
    if (entry.index !== node.smIndex + 1) {
      throw new SafetyViolation(
        'apply-order',
        `node ${node.id} applied ${entry.index} after ${node.smIndex}`,
      );
    }
    node.smIndex = entry.index;
    node.smHash = mixEntry(node.smHash, entry.term, entry.kind, entry.data);
    if (entry.kind === 'conf-change') node.appliedConf = decodeConfChange(entry.data).conf;
    // State Machine Safety (§3.6.3): every node applies the same entry at each index.
    const seen = this.appliedAt.get(entry.index);
    if (seen === undefined) {
      this.appliedAt.set(entry.index, { term: entry.term, stateHash: node.smHash });
      this.maxApplied = Math.max(this.maxApplied, entry.index);
    } else if (seen.stateHash !== node.smHash || seen.term !== entry.term) {
      throw new SafetyViolation(
        'state-machine-safety',
        `node ${node.id} applied a different entry at ${entry.index}`,
      );
    }
    const proposal = node.proposals.get(entry.index);
    if (proposal !== undefined) {
      node.proposals.delete(entry.index);
      if (
        proposal.term === entry.term &&
        proposal.hash === mixEntry(0, entry.term, entry.kind, entry.data)
      ) {
        this.stats.acknowledged++;
        this.acknowledged.push(proposal);
        this.maxAcknowledgedIndex = Math.max(this.maxAcknowledgedIndex, proposal.index);
        for (const other of this.alive()) {
          if (other.raw?.isLeader() === true && other.raw.raft.term > proposal.term)
            this.checkAckInLeader(proposal, other, other.raw);
        }
      } else {
        this.stats.lost++; // the driver rejects it with LeadershipLostError
      }
    }
  }

  private snapshotImage(index: number, hash: number): Uint8Array {
    // 8 meaningful bytes padded to a few chunks, so snapshots really stream in pieces.
    const image = new Uint8Array(8 + (index % 5) * 400);
    const view = new DataView(image.buffer);
    view.setUint32(0, index);
    view.setUint32(4, hash);
    for (let i = 8; i < image.length; i++) image[i] = (index + i) & 0xff;
    return image;
  }

  private restoreStateMachine(node: SimNode, meta: SnapshotMeta, image: Uint8Array): void {
    const view = new DataView(image.buffer, image.byteOffset, image.byteLength);
    if (view.getUint32(0) !== meta.index)
      throw new SafetyViolation('snapshot', `image/meta mismatch at ${meta.index}`);
    node.smIndex = meta.index;
    node.smHash = view.getUint32(4);
    node.appliedConf = meta.conf;
    const seen = this.appliedAt.get(meta.index);
    if (seen !== undefined && seen.stateHash !== node.smHash) {
      throw new SafetyViolation(
        'state-machine-safety',
        `node ${node.id} restored a snapshot diverging at ${meta.index}`,
      );
    }
  }

  /** Log compaction: snapshot the state machine at the applied index, then compact. */
  private compact(node: SimNode): void {
    const raw = node.raw;
    if (raw === undefined || node.inFlight !== undefined) return;
    const meta = node.disk.snapshotMeta();
    if (node.smIndex - meta.index < 10) return;
    const index = node.smIndex;
    const term = node.disk.term(index);
    node.snapshots.set(index, this.snapshotImage(index, node.smHash));
    for (const old of [...node.snapshots.keys()]) if (old < meta.index) node.snapshots.delete(old);
    node.disk.applySnapshotSync({ index, term, conf: node.appliedConf });
    this.stats.compactions++;
  }

  // -------------------------------------------------------------------------------------
  // Snapshot streaming (the driver's job; simplified: all chunks at once, final ack)

  private sendSnapshot(node: SimNode, to: NodeId, term: number, meta: SnapshotMeta): void {
    const image = node.snapshots.get(meta.index);
    if (image === undefined)
      throw new SafetyViolation('snapshot', `leader ${node.id} has no image for ${meta.index}`);
    this.stats.snapshotsSent++;
    node.outgoing.set(to, { index: meta.index, size: image.length, startedAt: this.now });
    for (let offset = 0; offset < image.length || offset === 0; offset += CHUNK_BYTES) {
      const data = image.subarray(offset, offset + CHUNK_BYTES);
      this.send({
        type: 'snapshot-chunk',
        from: node.id,
        to,
        term,
        snapshotIndex: meta.index,
        snapshotTerm: meta.term,
        voters: [...meta.conf.voters],
        learners: [...meta.conf.learners],
        offset,
        data,
        done: offset + CHUNK_BYTES >= image.length,
      });
      if (image.length === 0) break;
    }
  }

  private receiveChunk(
    node: SimNode,
    chunk: Extract<Message, { type: 'snapshot-chunk' }>,
  ): SnapshotMeta | undefined {
    const meta: SnapshotMeta = {
      index: chunk.snapshotIndex,
      term: chunk.snapshotTerm,
      conf: { voters: chunk.voters, learners: chunk.learners },
    };
    if (chunk.offset === 0) node.assembly = { from: chunk.from, meta, nextOffset: 0, parts: [] };
    const assembly = node.assembly;
    const ack = (nextOffset: number, rejected: boolean): void =>
      this.send({
        type: 'snapshot-ack',
        from: node.id,
        to: chunk.from,
        term: chunk.term,
        snapshotIndex: chunk.snapshotIndex,
        nextOffset,
        rejected,
      });
    if (
      assembly?.meta.index !== chunk.snapshotIndex ||
      assembly.from !== chunk.from ||
      assembly.nextOffset !== chunk.offset
    ) {
      node.assembly = undefined;
      ack(0, true);
      return undefined;
    }
    assembly.parts.push(chunk.data);
    assembly.nextOffset += chunk.data.length;
    if (!chunk.done) return undefined;
    const image = new Uint8Array(assembly.nextOffset);
    let at = 0;
    for (const part of assembly.parts) {
      image.set(part, at);
      at += part.length;
    }
    node.snapshots.set(meta.index, image);
    node.assembly = undefined;
    ack(image.length, false);
    return meta;
  }

  private onSnapshotAck(
    leader: SimNode,
    from: NodeId,
    index: number,
    nextOffset: number,
    rejected: boolean,
  ): void {
    const session = leader.outgoing.get(from);
    if (session?.index !== index) return;
    if (!rejected && nextOffset < session.size) return;
    leader.outgoing.delete(from);
    leader.snapshotReports.push({ to: from, success: !rejected });
  }

  private expireSnapshotSessions(): void {
    for (const node of this.nodes.values()) {
      for (const [to, session] of node.outgoing) {
        if (this.now - session.startedAt > 60) {
          node.outgoing.delete(to);
          node.snapshotReports.push({ to, success: false });
        }
      }
    }
  }

  // -------------------------------------------------------------------------------------
  // Client activity

  private leaders(): SimNode[] {
    return this.alive().filter((n) => n.raw?.isLeader() === true && n.inFlight === undefined);
  }

  private propose(): (Proposal & { node: SimNode }) | undefined {
    const leaders = this.leaders();
    if (leaders.length === 0) return undefined;
    const node = this.prng.pick(leaders);
    const raw = node.raw;
    if (raw === undefined) return undefined;
    const id = this.nextProposalId++;
    const data = new Uint8Array(8);
    new DataView(data.buffer).setUint32(0, id);
    new DataView(data.buffer).setUint32(4, this.options.seed >>> 0);
    try {
      const position = raw.propose(data);
      this.stats.proposals++;
      const proposal = {
        id,
        index: position.index,
        term: position.term,
        hash: mixEntry(0, position.term, 'normal', data),
      };
      node.proposals.set(position.index, proposal);
      return { ...proposal, node };
    } catch (error) {
      if (error instanceof ProposalDroppedError && error.reason === 'uncommitted-limit')
        this.stats.uncommittedDrops++;
      if (error instanceof ProposalDroppedError || error instanceof NotLeaderError)
        return undefined;
      throw error;
    }
  }

  private startRead(): void {
    const candidates = this.alive().filter((n) => n.inFlight === undefined);
    if (candidates.length === 0) return;
    const node = this.prng.pick(candidates);
    const context = this.nextReadContext++;
    node.reads.set(context, this.maxAcknowledgedIndex);
    node.raw?.readIndex(context);
    this.stats.reads++;
  }

  private changeMembership(): void {
    const leaders = this.leaders();
    if (leaders.length === 0) return;
    const node = this.prng.pick(leaders);
    const raw = node.raw;
    if (raw === undefined) return;
    const conf = raw.status().conf;
    const all = [...this.nodes.keys()];
    const outsiders = all.filter((id) => !conf.voters.includes(id) && !conf.learners.includes(id));
    let change: ConfChange;
    const learner = conf.learners[0];
    if (learner !== undefined) change = { type: 'promote', nodeId: learner };
    else if (outsiders.length > 0 && (conf.voters.length < 3 || this.prng.chance(0.5))) {
      change = { type: 'add-learner', nodeId: this.prng.pick(outsiders) };
    } else if (conf.voters.length >= 3)
      change = { type: 'remove', nodeId: this.prng.pick(conf.voters) };
    else return;
    try {
      raw.proposeConfChange(change);
      this.stats.confChanges++;
    } catch (error) {
      if (!(error instanceof ProposalDroppedError || error instanceof NotLeaderError)) throw error;
    }
  }

  private transfer(): void {
    const leaders = this.leaders();
    if (leaders.length === 0) return;
    const node = this.prng.pick(leaders);
    const raw = node.raw;
    if (raw === undefined) return;
    const targets = raw.status().conf.voters.filter((id) => id !== node.id);
    if (targets.length === 0) return;
    try {
      raw.transferLeadership(this.prng.pick(targets));
      this.stats.transfers++;
    } catch (error) {
      if (!(error instanceof ProposalDroppedError || error instanceof NotLeaderError)) throw error;
    }
  }

  // -------------------------------------------------------------------------------------
  // Checks

  private checkStep(): void {
    this.expireSnapshotSessions();
    for (const node of this.alive()) {
      const raw = node.raw;
      if (raw === undefined) continue;
      const log = raw.raft.log;
      if (!(log.applied <= log.committed && log.committed <= log.lastIndex())) {
        throw new SafetyViolation(
          'log-invariants',
          `node ${node.id}: applied ${log.applied} commit ${log.committed} last ${log.lastIndex()}`,
        );
      }
      this.checkUncommittedSize(node, raw);
    }
  }

  /**
   * The leader's uncommitted-size accounting (etcd's): within the limit (the sim's entries
   * are all smaller than it), and never more than the payload its log holds after `applied`
   * (it may be less: entries of earlier terms are not counted).
   */
  private checkUncommittedSize(node: SimNode, raw: RawNode): void {
    const counted = raw.raft.uncommittedSize;
    if (counted === 0) return;
    const limit = this.options.maxUncommittedEntriesSize;
    const log = raw.raft.log;
    let unapplied = 0;
    if (raw.isLeader())
      for (const entry of log.slice(log.applied + 1, log.lastIndex() + 1, Infinity))
        unapplied += entry.data.byteLength;
    if (counted > unapplied || (limit > 0 && counted > limit)) {
      throw new SafetyViolation(
        'uncommitted-size',
        `node ${node.id} (${raw.raft.role}) counts ${counted} uncommitted bytes; its log holds ${unapplied} after applied ${log.applied}, limit ${limit}`,
      );
    }
  }

  /** After healing everything, a leader must emerge and commit a proposal within a bound. */
  private checkLiveness(): void {
    this.faulty = false;
    this.cut.clear();
    for (const node of this.nodes.values()) if (node.raw === undefined) this.start(node);
    let committedAt = -1;
    let target: (Proposal & { node: SimNode }) | undefined;
    let proposedAt = 0;
    for (let i = 0; i < this.options.livenessSteps; i++) {
      this.step();
      if (target === undefined) {
        target = this.propose();
        proposedAt = i;
      } else if (target.node.smIndex >= target.index) {
        const applied = this.appliedAt.get(target.index);
        if (applied?.term === target.term) {
          committedAt = i;
          break;
        }
        target = undefined; // lost to a leader change: propose again
      } else if (i - proposedAt > 100) {
        // The proposer may have left the cluster (a removed leader never learns the outcome):
        // a client times out and retries with the current leader.
        target = undefined;
      }
    }
    if (committedAt < 0) {
      const roles = [...this.nodes.values()]
        .map(
          (n) =>
            `${n.id}:${n.raw?.raft.role ?? 'down'}@${n.raw?.raft.term ?? '-'}${n.raw?.status().conf.voters.includes(n.id) === true ? '' : '(non-voter)'}`,
        )
        .join(' ');
      throw new SafetyViolation(
        'liveness',
        `no proposal committed within ${this.options.livenessSteps} steps after healing [${roles}]`,
      );
    }
  }
}

/** Runs one seed. */
export function runSimulation(options: SimulationOptions): SimulationResult {
  return new Simulation(options).run();
}
