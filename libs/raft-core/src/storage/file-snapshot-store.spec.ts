import * as fs from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import type { SnapshotMeta } from '../core/types';
import { FileSnapshotStore } from './file-snapshot-store';
import { MemorySnapshotStore } from './memory-snapshot-store';
import type { SnapshotStore } from './snapshot-store';
import { CorruptSnapshotError } from './storage-errors';

let directory: string;

beforeEach(async () => {
  directory = await mkdtemp(path.join(tmpdir(), 'snapshot-store-'));
});

afterEach(async () => {
  await rm(directory, { recursive: true, force: true });
});

const meta = (index: number): SnapshotMeta => ({
  index,
  term: 2,
  conf: { voters: [1, 2, 3], learners: [5] },
});

async function readAll(store: SnapshotStore, index: number): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of store.read(index)) chunks.push(chunk.slice());
  return Buffer.concat(chunks);
}

async function save(store: SnapshotStore, m: SnapshotMeta, chunks: Uint8Array[]): Promise<void> {
  const writer = await store.create(m);
  for (const chunk of chunks) await writer.write(chunk);
  await writer.commit();
}

const stores: [string, () => Promise<SnapshotStore>][] = [
  ['MemorySnapshotStore', () => Promise.resolve(new MemorySnapshotStore(2, 100))],
  [
    'FileSnapshotStore',
    // A fresh directory per store: property runs must not see each other's snapshots.
    () => FileSnapshotStore.open(fs.mkdtempSync(path.join(directory, 'run-')), { chunkBytes: 100 }),
  ],
];

describe.each(stores)('SnapshotStore contract: %s', (_, openStore) => {
  it('streams back exactly the bytes written, whatever the chunking', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.uint8Array({ maxLength: 350 }), { maxLength: 8 }),
        fc.integer({ min: 1, max: 1000 }),
        async (chunks, index) => {
          const store = await openStore();
          await save(store, meta(index), chunks);
          expect(await store.latest()).toEqual(meta(index));
          expect(await readAll(store, index)).toEqual(Buffer.concat(chunks));
        },
      ),
      { numRuns: 30 },
    );
  });

  it('shows nothing before commit and nothing after abort; keeps the latest snapshots', async () => {
    const store = await openStore();
    const writer = await store.create(meta(5));
    await writer.write(new Uint8Array([1, 2, 3]));
    expect(await store.latest()).toBeUndefined();
    await writer.abort();
    expect(await store.latest()).toBeUndefined();
    await expect(writer.write(new Uint8Array([4]))).rejects.toThrow();
    for (const index of [10, 20, 30]) await save(store, meta(index), [new Uint8Array([index])]);
    expect(await store.latest()).toEqual(meta(30));
    expect(await readAll(store, 20)).toEqual(new Uint8Array([20]));
    await expect(readAll(store, 10)).rejects.toThrow();
  });
});

describe('FileSnapshotStore', () => {
  const open = (): Promise<FileSnapshotStore> =>
    FileSnapshotStore.open(directory, { chunkBytes: 100 });
  const file = (index: number): string =>
    path.join(directory, `${String(index).padStart(20, '0')}.snap`);

  it('streams in frames of chunkBytes (never the whole image at once) and survives reopen', async () => {
    const store = await open();
    const image = Uint8Array.from({ length: 1050 }, (_, i) => i & 0xff);
    await save(store, meta(7), [image.subarray(0, 3), image.subarray(3)]);
    const reopened = await open();
    expect(await reopened.latest()).toEqual(meta(7));
    const sizes: number[] = [];
    for await (const chunk of reopened.read(7)) sizes.push(chunk.length);
    expect(sizes).toEqual([...Array(10).fill(100), 50]);
    expect(await readAll(reopened, 7)).toEqual(image);
    expect(fs.readdirSync(directory)).toEqual([path.basename(file(7))]);
  });

  it('removes the debris of an interrupted write at open', async () => {
    const store = await open();
    const writer = await store.create(meta(3));
    await writer.write(new Uint8Array(500));
    // No commit: as if the process died here.
    const reopened = await open();
    expect(await reopened.latest()).toBeUndefined();
    expect(fs.readdirSync(directory)).toEqual([]);
    await writer.abort();
  });

  it('refuses a damaged frame before yielding it, and a truncated file', async () => {
    const store = await open();
    await save(store, meta(9), [new Uint8Array(350).fill(7)]);
    const bytes = fs.readFileSync(file(9));
    const damaged = Buffer.from(bytes);
    damaged[damaged.length - 40] = (damaged[damaged.length - 40] as number) ^ 1;
    fs.writeFileSync(file(9), damaged);
    const yielded: number[] = [];
    const error = await (async () => {
      for await (const chunk of store.read(9)) yielded.push(chunk.length);
    })().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CorruptSnapshotError);
    expect(error).toMatchObject({ code: 'storage/corrupt-snapshot', file: file(9) });
    expect(yielded).toEqual([100, 100, 100]);

    fs.writeFileSync(file(9), bytes.subarray(0, bytes.length - 10));
    await expect(readAll(store, 9)).rejects.toBeInstanceOf(CorruptSnapshotError);
    fs.writeFileSync(file(9), Buffer.concat([bytes.subarray(0, 6), Buffer.from([9])]));
    await expect(open()).rejects.toBeInstanceOf(CorruptSnapshotError);
  });
});
