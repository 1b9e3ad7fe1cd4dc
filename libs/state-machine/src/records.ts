import type { TopicConfig } from '@dmq/api-contracts';

/**
 * The in-memory records of the replicated state. Internal: the public surface shows them only
 * as the contract's types (`views.ts`).
 *
 * Memory: a partition is one small object of fixed shape whose id lists (`replicas`, `isr`,
 * `adding`, `removing`) are frozen arrays shared through an {@link IdListInterner}, so a
 * million partitions cost a few hundred bytes each, not a graph of objects and strings.
 */

/** A frozen, shared list of broker ids. Never mutated: every change builds a new list. */
export type IdList = readonly number[];

/** The empty id list, shared. */
export const EMPTY_IDS: IdList = Object.freeze([]);

export interface BrokerRecord {
  readonly id: number;
  host: string;
  port: number;
  rack: string | null;
  pushEndpoint: string | null;
  /** Larger on every registration of this id (never reused, also across unregistration). */
  epoch: number;
  /** A fenced broker leads nothing and may not join an ISR. */
  fenced: boolean;
  /** Timestamp of the last replicated heartbeat (or of the registration). */
  lastHeartbeatAtMs: number | null;
  registeredAtMs: number;
  /** Index: every partition that lists this broker in `replicas`. Iteration order is irrelevant. */
  readonly replicaOf: Set<PartitionRecord>;
  /** Index: every partition whose leader this broker is. Iteration order is irrelevant. */
  readonly leads: Set<PartitionRecord>;
}

export interface TopicRecord {
  readonly name: string;
  readonly id: string;
  /** The replication factor the topic was created with. */
  readonly replicationFactor: number;
  /** Keys sorted, frozen. */
  config: Readonly<TopicConfig>;
  /** `unclean.leader.election.enable` of `config`, parsed once. */
  uncleanLeaderElection: boolean;
  readonly createdAtMs: number;
  /** Partition `i` at index `i`. */
  readonly partitions: PartitionRecord[];
}

/**
 * One partition. Invariants (checked by `assertInvariants`): `leader` is -1 or in `isr`;
 * `isr` ⊆ `replicas`; `replicas` distinct, on registered brokers; `adding` and `removing` are
 * disjoint subsets of `replicas`; epochs never decrease.
 */
export interface PartitionRecord {
  readonly topic: TopicRecord;
  readonly index: number;
  /** Broker id of the leader, -1 when none. */
  leader: number;
  /** Bumped on every leader change (also to and from -1). */
  leaderEpoch: number;
  /** Bumped on every change of leader, ISR or replicas. */
  partitionEpoch: number;
  /** Preferred leader first. During a reassignment: the target replicas, then the removing ones. */
  replicas: IdList;
  /** In replica order. */
  isr: IdList;
  /** Reassignment in progress: target replicas not in the original list. */
  adding: IdList;
  /** Reassignment in progress: original replicas not in the target list. */
  removing: IdList;
  startOffset: number;
  endOffset: number;
  lastUpdatedMs: number;
}

export function newPartitionRecord(
  topic: TopicRecord,
  index: number,
  fields: Omit<PartitionRecord, 'topic' | 'index'>,
): PartitionRecord {
  // One literal with every field in one order: all partitions share one hidden class.
  return {
    topic,
    index,
    leader: fields.leader,
    leaderEpoch: fields.leaderEpoch,
    partitionEpoch: fields.partitionEpoch,
    replicas: fields.replicas,
    isr: fields.isr,
    adding: fields.adding,
    removing: fields.removing,
    startOffset: fields.startOffset,
    endOffset: fields.endOffset,
    lastUpdatedMs: fields.lastUpdatedMs,
  };
}

/**
 * Shares equal id lists between partitions. Not part of the replicated state: only memory.
 * Bounded: when full it starts over (lists already handed out stay valid, they are frozen).
 */
export class IdListInterner {
  private lists = new Map<string, IdList>();

  constructor(private readonly maxLists = 200_000) {}

  intern(ids: readonly number[]): IdList {
    if (ids.length === 0) return EMPTY_IDS;
    const key = ids.join(',');
    const found = this.lists.get(key);
    if (found !== undefined) return found;
    if (this.lists.size >= this.maxLists) this.lists = new Map();
    const list = Object.freeze(ids.slice());
    this.lists.set(key, list);
    return list;
  }
}

/** `ids` without `id` (the same list when absent). */
export function without(ids: IdList, id: number): readonly number[] {
  return ids.includes(id) ? ids.filter((x) => x !== id) : ids;
}

/** Whether two id lists hold the same ids in the same order. */
export function sameIds(a: readonly number[], b: readonly number[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Config with keys in code-point order, frozen: the canonical form stored and snapshotted. */
export function canonicalConfig(config: Readonly<TopicConfig>): Readonly<TopicConfig> {
  const sorted: TopicConfig = {};
  for (const key of Object.keys(config).sort()) sorted[key] = config[key] as string;
  return Object.freeze(sorted);
}

/** `unclean.leader.election.enable` of a config (Kafka's default: false). */
export function uncleanLeaderElectionOf(config: Readonly<TopicConfig>): boolean {
  return config['unclean.leader.election.enable'] === 'true';
}
