import { applyConfChange, decodeConfChange, encodeConfChange } from './conf-change';
import { InvariantViolation } from './errors';
import { Prng } from './prng';

describe('conf-change encoding', () => {
  it('round-trips a change and its configuration', () => {
    const record = {
      change: { type: 'promote' as const, nodeId: 7 },
      conf: { voters: [1, 2, 7], learners: [9] },
    };
    expect(decodeConfChange(encodeConfChange(record))).toEqual(record);
  });

  it('rejects malformed data', () => {
    expect(() => decodeConfChange(new Uint8Array([9, 0, 0, 0, 1, 0, 0, 0, 0]))).toThrow(
      InvariantViolation,
    );
    expect(() => decodeConfChange(new Uint8Array(3))).toThrow(InvariantViolation);
  });

  it('validates single-server changes', () => {
    const conf = { voters: [1, 2, 3], learners: [4] };
    expect(applyConfChange(conf, { type: 'promote', nodeId: 4 })).toEqual({
      voters: [1, 2, 3, 4],
      learners: [],
    });
    expect(applyConfChange(conf, { type: 'add-learner', nodeId: 5 })).toEqual({
      voters: [1, 2, 3],
      learners: [4, 5],
    });
    expect(applyConfChange(conf, { type: 'remove', nodeId: 2 })).toEqual({
      voters: [1, 3],
      learners: [4],
    });
    expect(typeof applyConfChange(conf, { type: 'promote', nodeId: 2 })).toBe('string');
    expect(typeof applyConfChange(conf, { type: 'add-learner', nodeId: 1 })).toBe('string');
    expect(
      typeof applyConfChange({ voters: [1], learners: [] }, { type: 'remove', nodeId: 1 }),
    ).toBe('string');
  });
});

describe('Prng', () => {
  it('is deterministic per seed and roughly uniform', () => {
    const a = new Prng(42);
    const b = new Prng(42);
    const counts = [0, 0, 0, 0];
    for (let i = 0; i < 4000; i++) {
      const x = a.nextInt(4);
      expect(b.nextInt(4)).toBe(x);
      counts[x] = (counts[x] ?? 0) + 1;
    }
    for (const count of counts) expect(count).toBeGreaterThan(850);
    expect(new Prng(1).nextUint32()).not.toBe(new Prng(2).nextUint32());
  });
});
