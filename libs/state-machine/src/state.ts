import { IdempotencyTable, type IdempotencyOptions } from './idempotency-table';
import { InvariantViolation } from './errors';
import {
  EMPTY_IDS,
  IdListInterner,
  sameIds,
  without,
  type BrokerRecord,
  type IdList,
  type PartitionRecord,
  type TopicRecord,
} from './records';

/**
 * The whole replicated state. Everything here is a deterministic function of the applied
 * commands (snapshots carry all of it), except `interner`, which only saves memory.
 */
export interface MetadataState {
  /** Raft index of the last applied entry: the metadata version. */
  version: number;
  /** The largest broker epoch ever issued: the next one is larger. */
  lastBrokerEpoch: number;
  /** Mixed into derived topic ids; changed by `RestoreFromBackup`. */
  topicIdSalt: number;
  /**
   * Which lineage of Raft indices the backup rows of this state belong to: 0 for a cluster
   * that was never restored, set by `RestoreFromBackup` to one more than the backup's (a
   * restored cluster counts its Raft indices from 1 again, so its rows must not be compared
   * with the lost cluster's).
   */
  backupGeneration: number;
  /**
   * A restore from backup in parts, between its first and last part: the next part expected
   * and how many there are; null otherwise. While set, only the next part or
   * `AbortRestoreFromBackup` is accepted.
   */
  restoring: { readonly nextPart: number; readonly parts: number } | null;
  readonly brokers: Map<number, BrokerRecord>;
  readonly topics: Map<string, TopicRecord>;
  readonly topicsById: Map<string, TopicRecord>;
  /** Total partitions of all topics. */
  partitionCount: number;
  readonly idempotency: IdempotencyTable;
  readonly interner: IdListInterner;
}

export function emptyState(idempotency: IdempotencyOptions): MetadataState {
  return {
    version: 0,
    lastBrokerEpoch: 0,
    topicIdSalt: 0,
    backupGeneration: 0,
    restoring: null,
    brokers: new Map(),
    topics: new Map(),
    topicsById: new Map(),
    partitionCount: 0,
    idempotency: new IdempotencyTable(idempotency),
    interner: new IdListInterner(),
  };
}

/** The fields of a partition a command may change. */
export interface PartitionShape {
  readonly leader: number;
  readonly isr: readonly number[];
  readonly replicas: readonly number[];
  readonly adding: readonly number[];
  readonly removing: readonly number[];
}

/** The ids of `ids` that are also in `members`, in the order of `ids`. */
export function intersect(ids: readonly number[], members: readonly number[]): number[] {
  return ids.filter((id) => members.includes(id));
}

/**
 * One command's application: the index and time it runs at, the helpers that change
 * partitions while keeping the indexes and invariants, and what it touched (for the change log).
 */
export class ApplyContext {
  /** Topics whose row or any partition changed (created, deleted, reconfigured, …). */
  readonly touchedTopics = new Set<string>();
  /**
   * Which partitions changed, by topic: a set of partition indexes, or `'all'` when the topic
   * was created (or restored) and every partition is new. A topic in `touchedTopics` but not
   * here changed only its own row (e.g. its config).
   */
  readonly touchedPartitions = new Map<string, Set<number> | 'all'>();
  readonly touchedBrokers = new Set<number>();
  /** Topics deleted by this command: name → topic id. */
  readonly deletedTopics = new Map<string, string>();

  constructor(
    readonly state: MetadataState,
    readonly index: number,
    readonly timestampMs: number,
  ) {}

  /** Records that partition `p` changed (its topic is touched too). */
  touchPartition(p: PartitionRecord): void {
    const name = p.topic.name;
    this.touchedTopics.add(name);
    const touched = this.touchedPartitions.get(name);
    if (touched === 'all') return;
    if (touched === undefined) this.touchedPartitions.set(name, new Set([p.index]));
    else touched.add(p.index);
  }

  /** Records that topic `name` is new (created or restored): its row and every partition. */
  touchWholeTopic(name: string): void {
    this.touchedTopics.add(name);
    this.touchedPartitions.set(name, 'all');
  }

  isUnfenced(brokerId: number): boolean {
    const broker = this.state.brokers.get(brokerId);
    return broker !== undefined && !broker.fenced;
  }

  /**
   * Leader election (KRaft's `PartitionChangeBuilder`): the first replica, in replica order,
   * that is in the ISR and unfenced. When there is none and `unclean` is allowed, the first
   * unfenced replica, which becomes the whole ISR (it may lack committed records).
   */
  chooseLeader(
    replicas: readonly number[],
    isr: readonly number[],
    unclean: boolean,
  ): { leader: number; isr: readonly number[] } {
    for (const id of replicas) {
      if (isr.includes(id) && this.isUnfenced(id)) return { leader: id, isr };
    }
    if (unclean) {
      for (const id of replicas) if (this.isUnfenced(id)) return { leader: id, isr: [id] };
    }
    return { leader: -1, isr };
  }

  /**
   * Ends a reassignment whose target replicas are all in the ISR (KIP-455): the replicas
   * become the target, the removed ones leave the ISR, and leadership moves if its holder is
   * being removed. Otherwise returns `next` as is.
   */
  completeReassignmentIfCaughtUp(next: PartitionShape): PartitionShape {
    if (next.adding.length === 0 && next.removing.length === 0) return next;
    const target = next.replicas.filter((id) => !next.removing.includes(id));
    if (!target.every((id) => next.isr.includes(id))) return next;
    let leader = next.leader;
    let isr: readonly number[] = intersect(target, next.isr);
    if (leader !== -1 && !target.includes(leader)) {
      ({ leader, isr } = this.chooseLeader(target, isr, false));
    }
    return { leader, isr, replicas: target, adding: EMPTY_IDS, removing: EMPTY_IDS };
  }

  /**
   * Takes broker `brokerId` out of a partition's ISR (and, with `removeReplica`, its replica
   * lists) and moves leadership away from it. Kafka's rule for fencing: the ISR never becomes
   * empty, its last member stays as the last known in-sync replica and the partition goes
   * leaderless (-1), unless the topic allows unclean election and another replica is unfenced.
   * With `removeReplica` (the broker is gone for good) the ISR may become empty.
   * The broker must already be fenced or gone.
   */
  removeBrokerFromPartition(p: PartitionRecord, brokerId: number, removeReplica: boolean): void {
    const replicas = removeReplica ? without(p.replicas, brokerId) : p.replicas;
    let isr = without(p.isr, brokerId);
    if (isr.length === 0 && p.isr.length > 0 && !removeReplica) isr = p.isr;
    let leader = p.leader;
    if (leader === brokerId || leader === -1) {
      ({ leader, isr } = this.chooseLeader(replicas, isr, p.topic.uncleanLeaderElection));
    }
    const next: PartitionShape = {
      leader,
      isr,
      replicas,
      adding: removeReplica ? without(p.adding, brokerId) : p.adding,
      removing: removeReplica ? without(p.removing, brokerId) : p.removing,
    };
    this.updatePartition(p, this.completeReassignmentIfCaughtUp(next));
  }

  /** Gives a leader to every leaderless partition the (now unfenced) broker can lead. */
  electLeaderlessPartitionsOf(broker: BrokerRecord): void {
    for (const p of broker.replicaOf) {
      if (p.leader !== -1) continue;
      const { leader, isr } = this.chooseLeader(p.replicas, p.isr, p.topic.uncleanLeaderElection);
      if (leader !== -1) this.updatePartition(p, { ...shapeOf(p), leader, isr });
    }
  }

  /**
   * Changes a partition's leader, ISR and replica lists, keeping the broker indexes, epochs
   * and the change log right. Returns whether anything changed.
   * Leader epoch + 1 on a leader change; partition epoch + 1 on any change.
   * @throws InvariantViolation when `next` breaks a partition invariant (a bug in the caller).
   */
  updatePartition(p: PartitionRecord, next: PartitionShape): boolean {
    const leaderChanged = next.leader !== p.leader;
    const replicasChanged = !sameIds(next.replicas, p.replicas);
    if (
      !leaderChanged &&
      !replicasChanged &&
      sameIds(next.isr, p.isr) &&
      sameIds(next.adding, p.adding) &&
      sameIds(next.removing, p.removing)
    ) {
      return false;
    }
    this.checkShape(p, next);
    const { brokers, interner } = this.state;
    if (leaderChanged) {
      if (p.leader !== -1) brokers.get(p.leader)?.leads.delete(p);
      if (next.leader !== -1) (brokers.get(next.leader) as BrokerRecord).leads.add(p);
      p.leader = next.leader;
      p.leaderEpoch++;
    }
    if (replicasChanged) {
      for (const id of p.replicas) {
        if (!next.replicas.includes(id)) brokers.get(id)?.replicaOf.delete(p);
      }
      for (const id of next.replicas) {
        if (!p.replicas.includes(id)) (brokers.get(id) as BrokerRecord).replicaOf.add(p);
      }
      p.replicas = interner.intern(next.replicas);
    }
    p.isr = interner.intern(next.isr);
    p.adding = interner.intern(next.adding);
    p.removing = interner.intern(next.removing);
    p.partitionEpoch++;
    p.lastUpdatedMs = this.timestampMs;
    this.touchPartition(p);
    return true;
  }

  private checkShape(p: PartitionRecord, next: PartitionShape): void {
    const where = `${p.topic.name}-${p.index}`;
    if (new Set(next.replicas).size !== next.replicas.length) {
      throw new InvariantViolation(`${where}: duplicate replicas [${next.replicas.join(',')}]`);
    }
    for (const id of next.replicas) {
      if (!this.state.brokers.has(id)) {
        throw new InvariantViolation(`${where}: replica ${id} is not a registered broker`);
      }
    }
    for (const list of [next.isr, next.adding, next.removing]) {
      for (const id of list) {
        if (!next.replicas.includes(id)) {
          throw new InvariantViolation(`${where}: ${id} is not a replica`);
        }
      }
    }
    if (next.leader !== -1 && !next.isr.includes(next.leader)) {
      throw new InvariantViolation(`${where}: leader ${next.leader} is not in the ISR`);
    }
  }
}

/** The changeable fields of a partition as they are. */
export function shapeOf(p: PartitionRecord): PartitionShape {
  return {
    leader: p.leader,
    isr: p.isr,
    replicas: p.replicas,
    adding: p.adding,
    removing: p.removing,
  };
}

/** Whether two id lists hold the same ids, in any order. */
export function sameIdSet(a: IdList, b: readonly number[]): boolean {
  return a.length === b.length && a.every((id) => b.includes(id));
}
