import fc from 'fast-check';
import { entrySize } from '../core/messages';
import { EMPTY_HARD_STATE } from '../core/types';
import type { ConfState, Entry, EntryKind, HardState, SnapshotMeta } from '../core/types';
import type { LogStorage } from './log-storage';

/**
 * How the conformance suite gets storages. (A `.test-util.ts` file: it uses Jest globals, so
 * the library build leaves it out; specs import it.)
 */
export interface LogStorageHarness {
  /** A new, empty storage, bootstrapped with `conf` when given. */
  create(conf?: ConfState): Promise<LogStorage>;
  /**
   * Closes `storage` and opens its state again, as after a restart. Omit for storages that
   * keep nothing (the durability tests are then skipped).
   */
  reopen?(storage: LogStorage): Promise<LogStorage>;
  /** Called after each test (e.g. to delete temporary directories). */
  cleanup?(): Promise<void>;
}

/** `count` entries from `first`, term by `termOf(index)`, data naming the index and term. */
export function makeEntries(
  first: number,
  count: number,
  termOf: (index: number) => number = () => 1,
  kind: EntryKind = 'normal',
): Entry[] {
  return Array.from({ length: count }, (_, i) => {
    const index = first + i;
    const term = termOf(index);
    return { index, term, kind, data: new TextEncoder().encode(`entry ${index}@${term}`) };
  });
}

const CONF: ConfState = { voters: [1, 2, 3], learners: [4] };

/**
 * Runs the {@link LogStorage} contract against an implementation: every invariant of the
 * interface's TSDoc, error codes, truncation, snapshots, and (when `reopen` is given)
 * durability. A model-based property test compares random operation sequences against an
 * array-backed model.
 */
export function describeLogStorageConformance(
  name: string,
  makeHarness: () => LogStorageHarness,
): void {
  describe(`LogStorage conformance: ${name}`, () => {
    let harness: LogStorageHarness;
    const open: LogStorage[] = [];

    beforeEach(() => {
      harness = makeHarness();
    });

    afterEach(async () => {
      for (const storage of open.splice(0)) await storage.close().catch(() => undefined);
      await harness.cleanup?.();
    });

    const create = async (conf?: ConfState): Promise<LogStorage> => {
      const storage = await harness.create(conf);
      open.push(storage);
      return storage;
    };

    const reopen = async (storage: LogStorage): Promise<LogStorage> => {
      const reopened = await (harness.reopen as NonNullable<LogStorageHarness['reopen']>)(storage);
      open.push(reopened);
      return reopened;
    };

    const durableIt = (title: string, body: () => Promise<void>): void => {
      // Evaluated at collection time, before beforeEach: ask a throwaway harness.
      (makeHarness().reopen === undefined ? it.skip : it)(title, body);
    };

    /** Everything the read side reports, for comparisons. */
    const readAll = (storage: LogStorage): Entry[] =>
      storage.lastIndex() >= storage.firstIndex()
        ? storage.entries(storage.firstIndex(), storage.lastIndex() + 1, Number.MAX_SAFE_INTEGER)
        : [];

    it('starts empty: firstIndex 1, lastIndex 0, term(0) = 0', async () => {
      const storage = await create(CONF);
      expect(storage.firstIndex()).toBe(1);
      expect(storage.lastIndex()).toBe(0);
      expect(storage.term(0)).toBe(0);
      expect(storage.snapshotMeta()).toMatchObject({ index: 0, term: 0 });
      expect(storage.entries(1, 1, 100)).toEqual([]);
      expect(storage.initialState().hardState).toEqual(EMPTY_HARD_STATE);
      expect(storage.initialState().conf).toEqual(CONF);
      expect(() => storage.term(1)).toThrow(
        expect.objectContaining({ code: 'storage/unavailable' }),
      );
    });

    it('appends and reads back entries and terms', async () => {
      const storage = await create();
      const entries = makeEntries(1, 10, (i) => (i <= 4 ? 1 : 3));
      storage.append(entries.slice(0, 4));
      storage.append(entries.slice(4));
      await storage.sync();
      expect(storage.lastIndex()).toBe(10);
      for (const entry of entries) expect(storage.term(entry.index)).toBe(entry.term);
      expect(storage.entries(1, 11, Number.MAX_SAFE_INTEGER)).toEqual(entries);
      expect(storage.entries(3, 7, Number.MAX_SAFE_INTEGER)).toEqual(entries.slice(2, 6));
      expect(storage.entries(5, 5, 0)).toEqual([]);
    });

    it('keeps the entry kind and arbitrary binary data', async () => {
      const storage = await create();
      const data = Uint8Array.from({ length: 300 }, (_, i) => (i * 7) & 0xff);
      const entries: Entry[] = [
        { index: 1, term: 1, kind: 'normal', data: new Uint8Array(0) },
        { index: 2, term: 1, kind: 'conf-change', data },
      ];
      storage.append(entries);
      await storage.sync();
      expect(storage.entries(1, 3, Number.MAX_SAFE_INTEGER)).toEqual(entries);
    });

    it('limits entries() by maxBytes but always returns at least one entry', async () => {
      const storage = await create();
      const entries = makeEntries(1, 5);
      storage.append(entries);
      const size = entrySize(entries[0] as Entry);
      expect(storage.entries(1, 6, 0)).toEqual(entries.slice(0, 1));
      expect(storage.entries(1, 6, size * 2)).toEqual(entries.slice(0, 2));
      expect(storage.entries(1, 6, size * 2 + 1)).toEqual(entries.slice(0, 2));
      expect(storage.entries(2, 6, size * 3)).toEqual(entries.slice(1, 4));
    });

    it('throws CompactedError below firstIndex and UnavailableError above lastIndex', async () => {
      const storage = await create();
      storage.append(makeEntries(1, 10));
      await storage.applySnapshot({ index: 5, term: 1, conf: CONF });
      const compacted = expect.objectContaining({ code: 'storage/compacted' });
      const unavailable = expect.objectContaining({ code: 'storage/unavailable' });
      expect(() => storage.term(4)).toThrow(compacted);
      expect(() => storage.entries(5, 7, 100)).toThrow(compacted);
      expect(() => storage.term(11)).toThrow(unavailable);
      expect(() => storage.entries(6, 12, 100)).toThrow(unavailable);
    });

    it('truncates a conflicting suffix when an append starts inside the log', async () => {
      const storage = await create();
      storage.append(makeEntries(1, 8, () => 1));
      await storage.sync();
      const replacement = makeEntries(4, 2, () => 2);
      storage.append(replacement);
      await storage.sync();
      expect(storage.lastIndex()).toBe(5);
      expect(storage.term(3)).toBe(1);
      expect(storage.term(4)).toBe(2);
      expect(storage.entries(1, 6, Number.MAX_SAFE_INTEGER)).toEqual([
        ...makeEntries(1, 3, () => 1),
        ...replacement,
      ]);
      expect(() => storage.term(6)).toThrow(
        expect.objectContaining({ code: 'storage/unavailable' }),
      );
    });

    it('refuses an append that would leave a gap', async () => {
      const storage = await create();
      storage.append(makeEntries(1, 3));
      expect(() => storage.append(makeEntries(5, 1))).toThrow(
        expect.objectContaining({ code: 'raft/invariant-violation' }),
      );
      expect(storage.lastIndex()).toBe(3);
    });

    it('ignores appended entries already covered by the snapshot', async () => {
      const storage = await create();
      storage.append(makeEntries(1, 6, () => 1));
      await storage.applySnapshot({ index: 4, term: 1, conf: CONF });
      storage.append(makeEntries(2, 6, () => 1));
      expect(storage.firstIndex()).toBe(5);
      expect(storage.lastIndex()).toBe(7);
      expect(storage.entries(5, 8, Number.MAX_SAFE_INTEGER)).toEqual(makeEntries(5, 3, () => 1));
      storage.append(makeEntries(1, 3, () => 1));
      expect(storage.lastIndex()).toBe(7);
    });

    it('applySnapshot keeps the suffix when the log holds the snapshot index with its term', async () => {
      const storage = await create();
      const termOf = (i: number): number => (i <= 5 ? 1 : 2);
      storage.append(makeEntries(1, 10, termOf));
      await storage.sync();
      const meta: SnapshotMeta = { index: 7, term: 2, conf: CONF };
      await storage.applySnapshot(meta);
      expect(storage.snapshotMeta()).toEqual(meta);
      expect(storage.firstIndex()).toBe(8);
      expect(storage.lastIndex()).toBe(10);
      expect(storage.term(7)).toBe(2);
      expect(storage.entries(8, 11, Number.MAX_SAFE_INTEGER)).toEqual(makeEntries(8, 3, termOf));
      expect(storage.initialState().conf).toEqual(CONF);
    });

    it('applySnapshot discards the whole log when the term differs', async () => {
      const storage = await create();
      storage.append(makeEntries(1, 10, () => 1));
      await storage.applySnapshot({ index: 7, term: 2, conf: CONF });
      expect(storage.firstIndex()).toBe(8);
      expect(storage.lastIndex()).toBe(7);
      expect(storage.term(7)).toBe(2);
      storage.append(makeEntries(8, 2, () => 2));
      expect(storage.entries(8, 10, Number.MAX_SAFE_INTEGER)).toEqual(makeEntries(8, 2, () => 2));
    });

    it('applySnapshot beyond the log discards it; an older snapshot is ignored', async () => {
      const storage = await create();
      storage.append(makeEntries(1, 3, () => 1));
      await storage.applySnapshot({ index: 20, term: 4, conf: CONF });
      expect(storage.firstIndex()).toBe(21);
      expect(storage.lastIndex()).toBe(20);
      await storage.applySnapshot({ index: 10, term: 3, conf: { voters: [9], learners: [] } });
      expect(storage.snapshotMeta()).toEqual({ index: 20, term: 4, conf: CONF });
      storage.append(makeEntries(21, 2, () => 4));
      await storage.sync();
      expect(storage.lastIndex()).toBe(22);
    });

    it('records the hard state; concurrent syncs all resolve', async () => {
      const storage = await create();
      const hardState: HardState = { term: 3, vote: 2, commit: 0 };
      storage.setHardState(hardState);
      storage.append(makeEntries(1, 3, () => 3));
      await Promise.all([storage.sync(), storage.sync(), storage.sync()]);
      expect(storage.initialState().hardState).toEqual(hardState);
    });

    durableIt(
      'keeps synced entries, hard state, snapshot and membership across a restart',
      async () => {
        let storage = await create(CONF);
        const termOf = (i: number): number => (i <= 10 ? 1 : 2);
        storage.append(makeEntries(1, 30, termOf));
        storage.setHardState({ term: 2, vote: 3, commit: 12 });
        await storage.sync();
        const meta: SnapshotMeta = { index: 12, term: 2, conf: { voters: [1, 2], learners: [] } };
        await storage.applySnapshot(meta);
        storage.append(makeEntries(25, 3, () => 2)); // truncates 25..30
        await storage.sync();
        storage = await reopen(storage);
        expect(storage.snapshotMeta()).toEqual(meta);
        expect(storage.initialState().conf).toEqual(meta.conf);
        expect(storage.initialState().hardState).toMatchObject({ term: 2, vote: 3 });
        expect(storage.initialState().hardState.commit).toBeLessThanOrEqual(12);
        expect(storage.firstIndex()).toBe(13);
        expect(storage.lastIndex()).toBe(27);
        expect(storage.term(12)).toBe(2);
        expect(readAll(storage)).toEqual([
          ...makeEntries(13, 12, termOf),
          ...makeEntries(25, 3, () => 2),
        ]);
      },
    );

    durableIt('keeps a discarded log discarded across a restart', async () => {
      let storage = await create();
      storage.append(makeEntries(1, 10, () => 1));
      await storage.sync();
      await storage.applySnapshot({ index: 6, term: 3, conf: CONF });
      storage = await reopen(storage);
      expect(storage.firstIndex()).toBe(7);
      expect(storage.lastIndex()).toBe(6);
      expect(storage.term(6)).toBe(3);
    });

    it('matches an array model under random appends, truncations and snapshots', async () => {
      type Op =
        | { kind: 'append'; back: number; count: number; bump: number }
        | { kind: 'snapshot'; back: number; termMatches: boolean }
        | { kind: 'sync' }
        | { kind: 'reopen' };
      const opArb: fc.Arbitrary<Op> = fc.oneof(
        {
          weight: 6,
          arbitrary: fc.record({
            kind: fc.constant('append' as const),
            back: fc.nat(6),
            count: fc.integer({ min: 1, max: 12 }),
            bump: fc.nat(1),
          }),
        },
        {
          weight: 1,
          arbitrary: fc.record({
            kind: fc.constant('snapshot' as const),
            back: fc.nat(8),
            termMatches: fc.boolean(),
          }),
        },
        { weight: 2, arbitrary: fc.constant({ kind: 'sync' as const }) },
        {
          weight: harness.reopen === undefined ? 0 : 1,
          arbitrary: fc.constant({ kind: 'reopen' as const }),
        },
      );
      await fc.assert(
        fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 25 }), async (ops) => {
          let storage = await create();
          // The model: snapshot (index, term) and the entries after it.
          let snapIndex = 0;
          let snapTerm = 0;
          let model: Entry[] = [];
          const lastTerm = (): number => model[model.length - 1]?.term ?? snapTerm;
          for (const op of ops) {
            const last = snapIndex + model.length;
            if (op.kind === 'append') {
              const start = Math.max(snapIndex + 1, last + 1 - op.back);
              const keep = model.slice(0, start - snapIndex - 1);
              const term =
                (keep[keep.length - 1]?.term ?? snapTerm) + op.bump + (op.back > 0 ? 1 : 0);
              const added = makeEntries(start, op.count, () => Math.max(term, 1));
              storage.append(added);
              model = [...keep, ...added];
            } else if (op.kind === 'snapshot') {
              const index = Math.max(0, last - op.back);
              if (index <= snapIndex) continue;
              const entry = model[index - snapIndex - 1] as Entry;
              const term = op.termMatches ? entry.term : lastTerm() + 1;
              await storage.applySnapshot({ index, term, conf: CONF });
              model = op.termMatches ? model.slice(index - snapIndex) : [];
              snapIndex = index;
              snapTerm = term;
            } else if (op.kind === 'sync') {
              await storage.sync();
            } else {
              await storage.sync();
              storage = await reopen(storage);
            }
            expect(storage.firstIndex()).toBe(snapIndex + 1);
            expect(storage.lastIndex()).toBe(snapIndex + model.length);
            expect(storage.term(snapIndex)).toBe(snapTerm);
            expect(readAll(storage)).toEqual(model);
            for (const entry of model) expect(storage.term(entry.index)).toBe(entry.term);
          }
          await storage.close();
        }),
        { numRuns: 40 },
      );
    });

    it('rejects writes after close', async () => {
      const storage = await create();
      await storage.close();
      expect(() => storage.append(makeEntries(1, 1))).toThrow();
      expect(() => storage.setHardState({ term: 1, vote: 0, commit: 0 })).toThrow();
    });
  });
}
