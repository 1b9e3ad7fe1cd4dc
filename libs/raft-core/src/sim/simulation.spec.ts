import { Prng } from '../core/prng';
import type { Entry } from '../core/types';
import { LogMatchingChecker, SafetyViolation } from './checker';
import { SimDisk } from './sim-disk';
import { reproCommand, runSimulation } from './simulation';
import type { SimulationResult } from './simulation';

const SEEDS_PER_SIZE = 300;
const STEPS = 1500;

function failures(results: SimulationResult[]): string[] {
  return results.filter((r) => !r.ok).map((r) => `${r.failure ?? ''}\n  repro: ${r.repro}`);
}

describe('deterministic simulation', () => {
  for (const nodes of [3, 5]) {
    it(`keeps every safety property and stays live over ${SEEDS_PER_SIZE} seeds of ${nodes} nodes`, () => {
      const results: SimulationResult[] = [];
      for (let seed = 1; seed <= SEEDS_PER_SIZE; seed++) {
        results.push(runSimulation({ seed: seed * 7 + nodes, nodes, steps: STEPS }));
      }
      expect(failures(results)).toEqual([]);
      // The faults really happened (a simulation that injects nothing proves nothing).
      const total = (key: keyof SimulationResult['stats']): number =>
        results.reduce((sum, r) => sum + r.stats[key], 0);
      expect(total('acknowledged')).toBeGreaterThan(SEEDS_PER_SIZE * 50);
      expect(total('crashes')).toBeGreaterThan(SEEDS_PER_SIZE);
      expect(total('lostWrites')).toBeGreaterThan(0);
      expect(total('snapshotsInstalled')).toBeGreaterThan(0);
      expect(total('confChanges')).toBeGreaterThan(0);
      expect(total('transfers')).toBeGreaterThan(0);
      expect(total('dropped')).toBeGreaterThan(0);
      expect(total('readsServed')).toBeGreaterThan(SEEDS_PER_SIZE * 10);
      expect(total('uncommittedDrops')).toBeGreaterThan(0); // stalled leaders hit the limit
    });
  }

  it('is deterministic: a seed replays identically', () => {
    const a = runSimulation({ seed: 4242, nodes: 5, steps: 800 });
    const b = runSimulation({ seed: 4242, nodes: 5, steps: 800 });
    expect(a.stats).toEqual(b.stats);
  });

  it('prints a one-line repro command', () => {
    expect(reproCommand(12345, 5, 1500)).toBe('npm run sim -- --seed 12345 --nodes 5 --steps 1500');
  });
});

const entry = (index: number, term: number, byte = 0): Entry => ({
  index,
  term,
  kind: 'normal',
  data: new Uint8Array([byte]),
});

describe('LogMatchingChecker', () => {
  it('accepts identical prefixes and flags the same (index, term) with a different history', () => {
    const checker = new LogMatchingChecker();
    checker.reset(1, 0, 0, []);
    checker.reset(2, 0, 0, []);
    checker.append(1, [entry(1, 1), entry(2, 1)]);
    expect(() => checker.append(2, [entry(1, 1), entry(2, 1), entry(3, 2)])).not.toThrow();
    checker.reset(3, 0, 0, []);
    expect(() => checker.append(3, [entry(1, 1, 9)])).toThrow(SafetyViolation);
  });

  it('throws on divergent prefixes', () => {
    const checker = new LogMatchingChecker();
    checker.reset(1, 0, 0, [entry(1, 1, 1), entry(2, 2)]);
    expect(() => checker.reset(2, 0, 0, [entry(1, 1, 7), entry(2, 2)])).toThrow(SafetyViolation);
  });
});

describe('SimDisk', () => {
  it('keeps synced writes and loses or tears unsynced ones on a crash', () => {
    const outcomes = new Set<number>();
    for (let seed = 1; seed <= 50; seed++) {
      const disk = new SimDisk({ voters: [1], learners: [] }, () => undefined);
      disk.append([entry(1, 1), entry(2, 1)]);
      disk.syncNow();
      disk.append([entry(3, 1), entry(4, 1), entry(5, 1)]);
      disk.crash(new Prng(seed));
      expect(disk.lastIndex()).toBeGreaterThanOrEqual(2);
      outcomes.add(disk.lastIndex());
    }
    // Lost entirely, torn to a prefix, and kept: all happen.
    expect(outcomes.has(2)).toBe(true);
    expect(outcomes.has(5)).toBe(true);
    expect([...outcomes].some((last) => last === 3 || last === 4)).toBe(true);
  });
});
