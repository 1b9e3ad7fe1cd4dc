import { MemoryStorage } from './memory-storage';

// The LogStorage contract itself runs in log-storage.conformance.spec.ts.
describe('MemoryStorage', () => {
  it('ignores re-appended entries already covered by the snapshot', () => {
    const s = new MemoryStorage();
    s.applySnapshotSync({ index: 5, term: 2, conf: { voters: [1], learners: [] } });
    s.append(
      [4, 5, 6].map((index) => ({
        index,
        term: 2,
        kind: 'normal' as const,
        data: new Uint8Array(0),
      })),
    );
    expect(s.firstIndex()).toBe(6);
    expect(s.lastIndex()).toBe(6);
  });

  it('reports the snapshot membership as its initial membership after compaction', () => {
    const s = new MemoryStorage({ conf: { voters: [1, 2, 3], learners: [] } });
    s.applySnapshotSync({ index: 3, term: 1, conf: { voters: [1, 2], learners: [] } });
    expect(s.initialState().conf).toEqual({ voters: [1, 2], learners: [] });
  });
});
