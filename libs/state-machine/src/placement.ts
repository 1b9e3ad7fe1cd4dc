import { InvariantViolation } from './errors';

/** A broker as replica placement sees it. */
export interface PlacementBroker {
  readonly id: number;
  /** `null`: no rack; such a broker counts as a rack of its own. */
  readonly rack: string | null;
  /** Partitions it already hosts a replica of. */
  readonly replicaLoad: number;
  /** Partitions it already leads. */
  readonly leaderLoad: number;
}

/**
 * Places the replicas of `partitionCount` new partitions on `brokers` (the unfenced ones).
 * Returns, per partition, its replica list: the first replica is the (preferred) leader.
 *
 * Rules, in order:
 * - A partition's replicas are distinct brokers.
 * - Rack-aware: no two replicas of a partition share a rack while some candidate broker's rack
 *   is still unused by that partition (a broker without a rack is a rack of its own).
 * - Even: the leader is the broker leading the fewest partitions (then hosting the fewest
 *   replicas); each follower the broker hosting the fewest replicas. Loads count the existing
 *   partitions of the cluster and the ones placed so far, so the spread is even across topics.
 * - Ties are broken by a rotation (as Kafka's `nextReplicaShift`): for the i-th partition the
 *   followers are searched from `shift = ⌊i / n⌋` positions after the leader, so the
 *   followers of one broker's partitions are spread over the others, not always the same two.
 * - Deterministic: a pure function of its arguments (brokers are sorted by id first).
 *
 * Cost: O(partitionCount × replicationFactor × brokers).
 * @throws InvariantViolation when `replicationFactor` exceeds the broker count (callers check).
 */
export function placeReplicas(
  brokers: readonly PlacementBroker[],
  partitionCount: number,
  replicationFactor: number,
): number[][] {
  const n = brokers.length;
  if (replicationFactor > n || replicationFactor < 1) {
    throw new InvariantViolation(`cannot place ${replicationFactor} replicas on ${n} brokers`);
  }
  const sorted = [...brokers].sort((a, b) => a.id - b.id);
  const ids = sorted.map((b) => b.id);
  const racks = sorted.map((b) => b.rack ?? `\u0000${b.id}`);
  const replicaLoad = sorted.map((b) => b.replicaLoad);
  const leaderLoad = sorted.map((b) => b.leaderLoad);
  const chosen = new Uint8Array(n);
  const assignment: number[][] = [];

  for (let p = 0; p < partitionCount; p++) {
    let leader = 0;
    for (let i = 1; i < n; i++) {
      const dl = (leaderLoad[i] as number) - (leaderLoad[leader] as number);
      if (dl < 0 || (dl === 0 && (replicaLoad[i] as number) < (replicaLoad[leader] as number))) {
        leader = i;
      }
    }
    chosen.fill(0);
    chosen[leader] = 1;
    const replicas = [leader];
    const usedRacks = new Set<string>([racks[leader] as string]);
    const shift = n > 1 ? Math.floor(p / n) % (n - 1) : 0;

    while (replicas.length < replicationFactor) {
      let anyNewRack = false;
      for (let i = 0; i < n; i++) {
        if (chosen[i] === 0 && !usedRacks.has(racks[i] as string)) {
          anyNewRack = true;
          break;
        }
      }
      let best = -1;
      // Walk the ring from just after leader + shift, so equal loads resolve to rotated picks.
      for (let step = 0; step < n; step++) {
        const i = (leader + 1 + shift + step) % n;
        if (chosen[i] === 1) continue;
        if (anyNewRack && usedRacks.has(racks[i] as string)) continue;
        if (best === -1 || (replicaLoad[i] as number) < (replicaLoad[best] as number)) best = i;
      }
      if (best === -1) throw new InvariantViolation('placement found no candidate broker');
      chosen[best] = 1;
      replicas.push(best);
      usedRacks.add(racks[best] as string);
    }

    leaderLoad[leader] = (leaderLoad[leader] as number) + 1;
    for (const i of replicas) replicaLoad[i] = (replicaLoad[i] as number) + 1;
    assignment.push(replicas.map((i) => ids[i] as number));
  }
  return assignment;
}
