import fc from 'fast-check';
import { InvariantViolation } from './errors';
import { placeReplicas, type PlacementBroker } from './placement';

const brokers = (count: number, rackOf?: (id: number) => string): PlacementBroker[] =>
  Array.from({ length: count }, (_, i) => ({
    id: i + 1,
    rack: rackOf ? rackOf(i + 1) : null,
    replicaLoad: 0,
    leaderLoad: 0,
  }));

function counts(assignment: number[][]) {
  const replicas = new Map<number, number>();
  const leaders = new Map<number, number>();
  for (const list of assignment) {
    leaders.set(list[0] as number, (leaders.get(list[0] as number) ?? 0) + 1);
    for (const id of list) replicas.set(id, (replicas.get(id) ?? 0) + 1);
  }
  return { replicas, leaders };
}

describe('placeReplicas', () => {
  it('spreads replicas and leaders evenly', () => {
    const assignment = placeReplicas(brokers(5), 10, 3);
    const { replicas, leaders } = counts(assignment);
    expect([...leaders.values()]).toEqual([2, 2, 2, 2, 2]);
    expect([...replicas.values()]).toEqual([6, 6, 6, 6, 6]);
    for (const list of assignment) expect(new Set(list).size).toBe(3);
  });

  it('spreads the followers of one leader over several brokers', () => {
    const assignment = placeReplicas(brokers(4), 12, 2);
    const followersOf1 = new Set(assignment.filter((l) => l[0] === 1).map((l) => l[1]));
    expect(followersOf1.size).toBeGreaterThan(1);
  });

  it('takes existing load into account', () => {
    const loaded = brokers(3).map((b) =>
      b.id === 1 ? { ...b, replicaLoad: 10, leaderLoad: 10 } : b,
    );
    const assignment = placeReplicas(loaded, 2, 2);
    expect(assignment).toEqual([
      [2, 3],
      [3, 2],
    ]);
  });

  it('puts no two replicas in one rack while racks remain', () => {
    const rackOf = (id: number) => ['a', 'b', 'c'][id % 3] as string;
    const assignment = placeReplicas(brokers(9, rackOf), 30, 3);
    for (const list of assignment) expect(new Set(list.map(rackOf)).size).toBe(3);
    // Four replicas on three racks: two share one rack, the others are spread.
    for (const list of placeReplicas(brokers(9, rackOf), 10, 4)) {
      expect(new Set(list.map(rackOf)).size).toBe(3);
    }
  });

  it('is deterministic and independent of the input order', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 1, max: 100 }), { minLength: 1, maxLength: 12 }),
        fc.integer({ min: 1, max: 30 }),
        fc.integer({ min: 1, max: 12 }),
        (ids, partitions, rf) => {
          fc.pre(rf <= ids.length);
          const list = ids.map((id) => ({
            id,
            rack: `r${id % 4}`,
            replicaLoad: id % 3,
            leaderLoad: 0,
          }));
          const a = placeReplicas(list, partitions, rf);
          const b = placeReplicas([...list].reverse(), partitions, rf);
          expect(a).toEqual(b);
          for (const replicas of a) {
            expect(new Set(replicas).size).toBe(rf);
            for (const id of replicas) expect(ids).toContain(id);
          }
        },
      ),
    );
  });

  it('throws when the replication factor exceeds the brokers (callers check first)', () => {
    expect(() => placeReplicas(brokers(2), 1, 3)).toThrow(InvariantViolation);
  });
});
