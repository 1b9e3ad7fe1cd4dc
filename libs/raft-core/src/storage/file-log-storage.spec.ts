import * as fs from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { SnapshotMeta } from '../core/types';
import { FileLogStorage } from './file-log-storage';
import type { FileLogStorageOptions } from './file-log-storage';
import { makeEntries } from './log-storage.conformance.test-util';
import { CorruptLogError, CorruptStateError } from './storage-errors';

let directory: string;
const opened: FileLogStorage[] = [];

beforeEach(async () => {
  directory = await mkdtemp(path.join(tmpdir(), 'file-log-storage-'));
});

afterEach(async () => {
  for (const storage of opened.splice(0)) await storage.close().catch(() => undefined);
  await rm(directory, { recursive: true, force: true });
});

async function open(options: FileLogStorageOptions = {}): Promise<FileLogStorage> {
  const storage = await FileLogStorage.open(directory, { segmentBytes: 200, ...options });
  opened.push(storage);
  return storage;
}

const logDirectory = (): string => path.join(directory, 'log');
const segments = (): string[] => fs.readdirSync(logDirectory()).sort();

/** Copies the log directory aside, to put it back later as if deletions had not happened. */
function saveLog(): string {
  const saved = fs.mkdtempSync(path.join(tmpdir(), 'saved-log-'));
  fs.cpSync(logDirectory(), saved, { recursive: true });
  return saved;
}

function restoreLog(saved: string, keep: (name: string) => boolean = () => true): void {
  fs.rmSync(logDirectory(), { recursive: true });
  fs.mkdirSync(logDirectory());
  for (const name of fs.readdirSync(saved).filter(keep)) {
    fs.copyFileSync(path.join(saved, name), path.join(logDirectory(), name));
  }
  fs.rmSync(saved, { recursive: true });
}

describe('FileLogStorage', () => {
  it('makes term and vote durable at sync(), commit lazily (at close or every interval)', async () => {
    const storage = await open({ commitPersistInterval: 10 });
    storage.append(makeEntries(1, 30, () => 2));
    storage.setHardState({ term: 2, vote: 1, commit: 0 });
    await storage.sync();
    storage.setHardState({ term: 2, vote: 1, commit: 5 });
    await storage.sync();
    // A crash now (simulated by reading the files without closing) loses only the commit.
    const copy = fs.mkdtempSync(path.join(tmpdir(), 'crash-copy-'));
    fs.cpSync(directory, copy, { recursive: true });
    const crashed = await FileLogStorage.open(copy, { fsync: false });
    expect(crashed.initialState().hardState).toEqual({ term: 2, vote: 1, commit: 0 });
    await crashed.close();
    fs.rmSync(copy, { recursive: true });

    storage.setHardState({ term: 2, vote: 1, commit: 25 });
    await storage.sync(); // advanced by >= 10: written in the background
    await storage.close();
    const reopened = await open();
    expect(reopened.initialState().hardState).toEqual({ term: 2, vote: 1, commit: 25 });
  });

  it('never persists a commit beyond the entries already synced', async () => {
    const storage = await open();
    storage.append(makeEntries(1, 3, () => 1));
    await storage.sync();
    storage.append(makeEntries(4, 3, () => 2));
    // Commit 6 is set together with a term change, but entries 4..6 are not durable yet
    // when the hard state is written (term first, then entries).
    storage.setHardState({ term: 2, vote: 0, commit: 6 });
    await storage.sync();
    const copy = fs.mkdtempSync(path.join(tmpdir(), 'crash-copy-'));
    fs.cpSync(directory, copy, { recursive: true });
    const crashed = await FileLogStorage.open(copy, { fsync: false });
    expect(crashed.initialState().hardState.commit).toBeLessThanOrEqual(3);
    await crashed.close();
    fs.rmSync(copy, { recursive: true });
  });

  it('refuses to start when the persisted commit is beyond the log (acknowledged entries lost)', async () => {
    const storage = await open();
    storage.append(makeEntries(1, 10, () => 1));
    storage.setHardState({ term: 1, vote: 0, commit: 10 });
    await storage.sync();
    await storage.close();
    const [first] = segments();
    fs.truncateSync(path.join(logDirectory(), first as string), 24);
    // Every later segment holds indices after a gap; remove them to isolate the commit check.
    for (const name of segments().slice(1)) fs.rmSync(path.join(logDirectory(), name));
    await expect(open()).rejects.toBeInstanceOf(CorruptLogError);
  });

  it('rejects a damaged hard-state or snapshot-meta file with CorruptStateError', async () => {
    const storage = await open();
    storage.setHardState({ term: 4, vote: 2, commit: 0 });
    await storage.sync();
    await storage.close();
    for (const name of ['hard-state', 'snapshot-meta']) {
      const target = path.join(directory, name);
      const original = fs.readFileSync(target);
      const damaged = Buffer.from(original);
      damaged[damaged.length - 6] = (damaged[damaged.length - 6] as number) ^ 1;
      fs.writeFileSync(target, damaged);
      await expect(open()).rejects.toMatchObject({
        code: 'storage/corrupt-state',
        file: target,
      });
      await expect(open()).rejects.toBeInstanceOf(CorruptStateError);
      fs.writeFileSync(target, original);
    }
    expect((await open()).initialState().hardState.term).toBe(4);
  });

  it('ignores debris of an interrupted atomic write', async () => {
    const storage = await open();
    storage.setHardState({ term: 7, vote: 3, commit: 0 });
    await storage.sync();
    await storage.close();
    fs.writeFileSync(path.join(directory, 'hard-state.tmp'), 'half a fi');
    const reopened = await open();
    expect(reopened.initialState().hardState).toEqual({ term: 7, vote: 3, commit: 0 });
    expect(fs.existsSync(path.join(directory, 'hard-state.tmp'))).toBe(false);
  });

  describe('a crash during applySnapshot converges to the same log', () => {
    const termOf = (i: number): number => (i <= 20 ? 1 : 2);

    async function prepare(meta: SnapshotMeta): Promise<string> {
      const storage = await open();
      storage.append(makeEntries(1, 40, termOf));
      await storage.sync();
      const saved = saveLog();
      await storage.applySnapshot(meta);
      await storage.close();
      opened.splice(opened.indexOf(storage), 1);
      return saved;
    }

    it('a matching snapshot whose segment deletions were lost keeps the suffix', async () => {
      const meta = { index: 30, term: 2, conf: { voters: [1], learners: [] } };
      const saved = await prepare(meta);
      restoreLog(saved);
      const storage = await open();
      expect(storage.recovery.snapshotReconcile).toBe('compacted');
      expect(storage.firstIndex()).toBe(31);
      expect(storage.lastIndex()).toBe(40);
      expect(storage.entries(31, 41, Infinity)).toEqual(makeEntries(31, 10, termOf));
    });

    it.each([
      ['none of the deletions happened', (): boolean => true],
      [
        'only the newest segments were deleted',
        (name: string): boolean => name < '00000000000000000015',
      ],
    ])('a mismatching snapshot discards the log when %s', async (_, keep) => {
      const meta = { index: 30, term: 3, conf: { voters: [1], learners: [] } };
      const saved = await prepare(meta);
      restoreLog(saved, keep);
      const storage = await open();
      expect(storage.recovery.snapshotReconcile).toBe('discarded');
      expect(storage.firstIndex()).toBe(31);
      expect(storage.lastIndex()).toBe(30);
      expect(storage.term(30)).toBe(3);
      expect(segments()).toEqual([]);
      storage.append(makeEntries(31, 2, () => 3));
      await storage.close();
      expect((await open()).lastIndex()).toBe(32);
    });

    it('a log starting after the snapshot (entries missing) refuses to start', async () => {
      const storage = await open();
      storage.append(makeEntries(1, 40, termOf));
      await storage.close();
      for (const name of segments().slice(0, 2)) fs.rmSync(path.join(logDirectory(), name));
      await expect(open()).rejects.toMatchObject({ code: 'storage/corrupt-record' });
    });
  });

  it('persists the bootstrap membership at first open; later options do not override it', async () => {
    const conf = { voters: [1, 2, 3], learners: [] };
    await (await open({ conf })).close();
    const reopened = await open({ conf: { voters: [9], learners: [] } });
    expect(reopened.initialState().conf).toEqual(conf);
  });
});
