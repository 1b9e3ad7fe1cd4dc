import { MemoryStorage } from '../storage/memory-storage';
import type { Message } from './messages';
import type { RaftOptions } from './raft';
import { RawNode } from './raw-node';
import type { Ready } from './raw-node';
import type { ConfState, Entry, NodeId, SnapshotMeta } from './types';

/** One node of a {@link TestCluster}: the core, its storage, what it applied. */
export interface TestNode {
  readonly id: NodeId;
  raw: RawNode;
  storage: MemoryStorage;
  applied: Entry[];
  readonly readStates: { context: number; index: number }[];
  readonly readFailures: number[];
  readonly readies: Ready[];
}

/**
 * A synchronous in-memory network of RawNodes for unit tests (etcd's `network`): messages
 * are queued and delivered by {@link stabilize}; links can be cut and nodes isolated. No time
 * passes unless a test ticks.
 */
export class TestCluster {
  readonly nodes = new Map<NodeId, TestNode>();
  queue: Message[] = [];
  private readonly cut = new Set<string>();
  /** Every message delivered, for assertions on traffic. */
  readonly delivered: Message[] = [];
  /** Optional filter: return false to drop a message. */
  filter: ((m: Message) => boolean) | undefined;
  /** Optional rewrite applied to each delivered message (after `filter`). */
  rewrite: ((m: Message) => Message) | undefined;

  constructor(
    ids: readonly NodeId[],
    private readonly options: Partial<RaftOptions> = {},
    conf: ConfState = { voters: ids, learners: [] },
  ) {
    for (const id of ids) this.addNode(id, conf);
  }

  addNode(id: NodeId, conf: ConfState, storage = new MemoryStorage({ conf })): TestNode {
    const node: TestNode = {
      id,
      raw: new RawNode({ randomSeed: id * 7919, ...this.options, id, storage }),
      storage,
      applied: [],
      readStates: [],
      readFailures: [],
      readies: [],
    };
    this.nodes.set(id, node);
    return node;
  }

  node(id: NodeId): TestNode {
    const node = this.nodes.get(id);
    if (node === undefined) throw new Error(`no node ${id}`);
    return node;
  }

  raw(id: NodeId): RawNode {
    return this.node(id).raw;
  }

  /** Restarts a node from its storage (volatile state lost). */
  restart(id: NodeId): void {
    const node = this.node(id);
    node.raw = new RawNode({
      randomSeed: id * 7919 + 1,
      ...this.options,
      id,
      storage: node.storage,
    });
    const snapshotIndex = node.storage.snapshotMeta().index;
    node.applied = node.applied.filter((e) => e.index <= snapshotIndex);
  }

  isolate(id: NodeId): void {
    for (const other of this.nodes.keys()) {
      if (other !== id) {
        this.cutLink(id, other);
      }
    }
  }

  cutLink(a: NodeId, b: NodeId): void {
    this.cut.add(`${a}-${b}`);
    this.cut.add(`${b}-${a}`);
  }

  heal(): void {
    this.cut.clear();
  }

  /** Processes one node's Ready like the driver: persist → send → apply → advance. */
  processReady(id: NodeId): boolean {
    const node = this.node(id);
    if (!node.raw.hasReady()) return false;
    const rd = node.raw.ready();
    node.readies.push(rd);
    const snapshot = rd.snapshot;
    if (snapshot !== undefined) {
      node.storage.applySnapshotSync(snapshot);
      node.applied = node.applied.filter((e) => e.index <= snapshot.index);
    }
    node.storage.append(rd.entries);
    if (rd.hardState !== undefined) node.storage.setHardState(rd.hardState);
    for (const m of rd.messages) this.queue.push(m);
    for (const e of rd.committedEntries) node.applied.push(e);
    node.readStates.push(...rd.readStates);
    node.readFailures.push(...rd.readFailures);
    for (const request of rd.snapshotsToSend)
      this.sendSnapshot(id, request.to, request.term, request.meta);
    node.raw.advance(rd);
    return true;
  }

  /** Streams a snapshot in one chunk; the receiver installs it when the chunk arrives. */
  private sendSnapshot(from: NodeId, to: NodeId, term: number, meta: SnapshotMeta): void {
    this.queue.push({
      type: 'snapshot-chunk',
      from,
      to,
      term,
      snapshotIndex: meta.index,
      snapshotTerm: meta.term,
      voters: [...meta.conf.voters],
      learners: [...meta.conf.learners],
      offset: 0,
      data: new Uint8Array(0),
      done: true,
    });
  }

  /** Delivers one message (if its link is up). */
  deliver(original: Message): void {
    if (this.cut.has(`${original.from}-${original.to}`)) return;
    if (this.filter !== undefined && !this.filter(original)) return;
    const m = this.rewrite !== undefined ? this.rewrite(original) : original;
    const node = this.nodes.get(m.to);
    if (node === undefined) return;
    this.delivered.push(m);
    node.raw.step(m);
    // The "driver" of the receiver assembles snapshot chunks and installs them.
    this.processReady(m.to);
    if (m.type === 'snapshot-chunk' && m.done && node.raw.raft.lead === m.from) {
      node.raw.installSnapshot({
        index: m.snapshotIndex,
        term: m.snapshotTerm,
        conf: { voters: m.voters, learners: m.learners },
      });
      this.node(m.from).raw.reportSnapshot(m.to, true);
    }
  }

  /** Delivers messages and processes readies until nothing is left to do. */
  stabilize(maxRounds = 10_000): void {
    for (let round = 0; round < maxRounds; round++) {
      let progressed = false;
      for (const id of this.nodes.keys()) progressed = this.processReady(id) || progressed;
      const queue = this.queue;
      this.queue = [];
      for (const m of queue) {
        this.deliver(m);
        progressed = true;
      }
      if (!progressed) return;
    }
    throw new Error('cluster did not stabilize');
  }

  tick(id: NodeId, times = 1): void {
    for (let i = 0; i < times; i++) this.raw(id).tick();
  }

  tickAll(times = 1): void {
    for (let i = 0; i < times; i++) {
      for (const node of this.nodes.values()) node.raw.tick();
      this.stabilize();
    }
  }

  /** Makes `id` campaign and run the election to completion. */
  elect(id: NodeId): void {
    this.raw(id).campaign();
    this.stabilize();
  }

  leaders(): NodeId[] {
    return [...this.nodes.values()].filter((n) => n.raw.isLeader()).map((n) => n.id);
  }

  /** Proposes `text` on `id` (which must lead) and returns its position. */
  propose(id: NodeId, text: string): { index: number; term: number } {
    return this.raw(id).propose(new TextEncoder().encode(text));
  }

  appliedTexts(id: NodeId): string[] {
    return this.node(id)
      .applied.filter((e) => e.kind === 'normal' && e.data.length > 0)
      .map((e) => new TextDecoder().decode(e.data));
  }
}
