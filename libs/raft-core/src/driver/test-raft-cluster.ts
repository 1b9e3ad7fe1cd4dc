import type { ConfState, NodeId } from '../core/types';
import { MemorySnapshotStore } from '../storage/memory-snapshot-store';
import { MemoryStorage } from '../storage/memory-storage';
import { ManualClock, settle } from './manual-clock';
import { MemoryStateMachine } from './memory-state-machine';
import { MemoryNetwork } from './memory-transport';
import type { Logger } from './ports';
import { RaftNode } from './raft-node';
import type { RaftNodeOptions } from './raft-node';

export interface TestRaftClusterOptions {
  readonly logger?: Logger;
  /** Extra RaftNode options (tick length, snapshot policy…). */
  readonly node?: Partial<
    Omit<
      RaftNodeOptions<number>,
      'id' | 'storage' | 'stateMachine' | 'snapshotStore' | 'transport' | 'clock'
    >
  >;
}

/**
 * A cluster of real {@link RaftNode}s over a {@link MemoryNetwork} and a {@link ManualClock}:
 * nothing happens unless the test advances time. Storage, snapshot store and state machine of
 * each node survive `restart()` (a clean process restart).
 */
export class TestRaftCluster {
  readonly clock = new ManualClock();
  readonly network = new MemoryNetwork();
  readonly nodes = new Map<NodeId, RaftNode<number>>();
  readonly storages = new Map<NodeId, MemoryStorage>();
  readonly snapshotStores = new Map<NodeId, MemorySnapshotStore>();
  readonly stateMachines = new Map<NodeId, MemoryStateMachine>();
  readonly tickMs: number;

  constructor(
    ids: readonly NodeId[],
    private readonly options: TestRaftClusterOptions = {},
  ) {
    this.tickMs = options.node?.tickMs ?? 10;
    for (const id of ids) this.create(id, { voters: ids, learners: [] });
  }

  private create(id: NodeId, conf: ConfState): RaftNode<number> {
    if (!this.storages.has(id)) {
      this.storages.set(id, new MemoryStorage({ conf }));
      this.snapshotStores.set(id, new MemorySnapshotStore());
    }
    const stateMachine = new MemoryStateMachine();
    this.stateMachines.set(id, stateMachine);
    const node = new RaftNode<number>({
      tickMs: this.tickMs,
      randomSeed: id * 1000 + 7,
      ...this.options.node,
      ...(this.options.logger !== undefined ? { logger: this.options.logger } : {}),
      id,
      storage: this.storages.get(id) as MemoryStorage,
      snapshotStore: this.snapshotStores.get(id) as MemorySnapshotStore,
      stateMachine,
      transport: this.network.transport(id),
      clock: this.clock,
    });
    this.nodes.set(id, node);
    return node;
  }

  async start(): Promise<void> {
    for (const node of this.nodes.values()) await node.start();
  }

  /** Adds (and starts) a node that is not yet a member: it waits to be added. */
  async addNode(id: NodeId): Promise<RaftNode<number>> {
    const node = this.create(id, { voters: [], learners: [] });
    await node.start();
    return node;
  }

  node(id: NodeId): RaftNode<number> {
    const node = this.nodes.get(id);
    if (node === undefined) throw new Error(`no node ${id}`);
    return node;
  }

  stateMachine(id: NodeId): MemoryStateMachine {
    const sm = this.stateMachines.get(id);
    if (sm === undefined) throw new Error(`no node ${id}`);
    return sm;
  }

  /** Advances time by `ms` in tick-sized steps, letting messages flow between ticks. */
  async advance(ms: number): Promise<void> {
    for (let elapsed = 0; elapsed < ms; elapsed += this.tickMs) {
      await this.clock.advance(Math.min(this.tickMs, ms - elapsed));
      await this.settle();
    }
  }

  /** Lets every node and the network go quiet (no time passes). */
  async settle(): Promise<void> {
    for (let round = 0; round < 1000; round++) {
      await Promise.all([...this.nodes.values()].map((n) => n.idle()));
      await settle();
      if (!this.network.busy()) {
        await settle();
        if (!this.network.busy()) return;
      }
    }
  }

  leader(): RaftNode<number> | undefined {
    const leaders = [...this.nodes.values()].filter((n) => n.isLeader());
    return leaders.length === 1 ? leaders[0] : undefined;
  }

  /** Advances time until exactly one leader is known (at most `maxMs`). */
  async waitForLeader(maxMs = 5000): Promise<RaftNode<number>> {
    for (let elapsed = 0; elapsed <= maxMs; elapsed += this.tickMs) {
      const leader = this.leader();
      if (leader !== undefined) return leader;
      await this.advance(this.tickMs);
    }
    throw new Error(`no leader after ${maxMs} ms of simulated time`);
  }

  /** Stops a node and starts a new incarnation on the same storage. */
  async restart(id: NodeId): Promise<RaftNode<number>> {
    await this.node(id).stop();
    this.network.detach(id);
    const storage = this.storages.get(id) as MemoryStorage;
    const node = this.create(id, storage.initialState().conf);
    await node.start();
    return node;
  }

  async stop(): Promise<void> {
    for (const node of this.nodes.values()) await node.stop();
  }
}
