import * as fs from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { Entry } from '../core/types';
import { crc32c } from './crc32c';
import { SEGMENT_HEADER_BYTES, SegmentedLog, segmentFileName } from './segmented-log';
import type { SegmentedLogOptions } from './segmented-log';
import { CorruptLogError, UnsupportedVersionError } from './storage-errors';

/**
 * Entries whose record is exactly RECORD bytes (index and term < 128, 20 bytes of data), so
 * tests can aim at record k: it starts at HEADER + (k - first) * RECORD.
 */
const RECORD = 9 + 1 + 1 + 1 + 1 + 20;
const entry = (index: number, term = 1): Entry => ({
  index,
  term,
  kind: 'normal',
  data: new TextEncoder().encode(`data-${String(index).padStart(15, '0')}`),
});
const range = (first: number, count: number, term = 1): Entry[] =>
  Array.from({ length: count }, (_, i) => entry(first + i, term));
const offsetOf = (k: number, first = 1): number => SEGMENT_HEADER_BYTES + (k - first) * RECORD;

let directory: string;
const logs: SegmentedLog[] = [];

beforeEach(async () => {
  directory = await mkdtemp(path.join(tmpdir(), 'segmented-log-'));
});

afterEach(async () => {
  for (const log of logs.splice(0)) await log.close().catch(() => undefined);
  await rm(directory, { recursive: true, force: true });
});

async function open(options: Partial<SegmentedLogOptions> = {}) {
  const opened = await SegmentedLog.open(directory, { fsync: false, ...options });
  logs.push(opened.log);
  return opened;
}

/** Writes `count` entries from 1, syncs and closes. */
async function writeLog(count: number, options: Partial<SegmentedLogOptions> = {}): Promise<void> {
  const { log } = await open(options);
  log.append(range(1, count));
  await log.sync();
  await log.close();
}

const file = (first: number): string => path.join(directory, segmentFileName(first));
const readAll = (log: SegmentedLog): Entry[] =>
  log.entries(log.firstIndex, log.lastIndex + 1, Infinity, (e) => e.data.length);

function flipByte(target: string, offset: number): void {
  const bytes = fs.readFileSync(target);
  bytes[offset] = (bytes[offset] as number) ^ 0x40;
  fs.writeFileSync(target, bytes);
}

describe('SegmentedLog', () => {
  it('has the record size the tests assume', async () => {
    await writeLog(3);
    expect(fs.statSync(file(1)).size).toBe(offsetOf(4));
  });

  it('serves concurrent sync() callers with shared flushes (group commit)', async () => {
    const { log } = await open({ fsync: true });
    const syncs: Promise<void>[] = [];
    for (let i = 1; i <= 100; i++) {
      log.append([entry(i)]);
      syncs.push(log.sync());
    }
    await Promise.all(syncs);
    // The first caller's flush starts at once with its entry; the 99 others share the next.
    expect(log.flushCount).toBe(2);
    expect(log.durableLastIndex).toBe(100);
  });

  it('rolls segments at the size threshold and names them by first index', async () => {
    await writeLog(10, { segmentBytes: SEGMENT_HEADER_BYTES + 3 * RECORD });
    const names = fs.readdirSync(directory).sort();
    expect(names).toEqual([1, 4, 7, 10].map(segmentFileName));
    const { log, report } = await open();
    expect(report).toMatchObject({ segments: 4, entries: 10, removedFiles: [] });
    expect(readAll(log)).toEqual(range(1, 10));
  });

  it('serves old entries from disk once evicted from the cache', async () => {
    const { log } = await open({ cacheBytes: 50, segmentBytes: 200 });
    log.append(range(1, 40));
    await log.sync();
    expect(log.entries(1, 41, Infinity, () => 1)).toEqual(range(1, 40));
    expect(log.entries(10, 41, 5, () => 1)).toEqual(range(10, 5));
  });

  it('detects a record damaged on disk after open when reading it', async () => {
    const { log } = await open({ cacheBytes: 0 });
    log.append(range(1, 5));
    await log.sync();
    flipByte(file(1), offsetOf(3) + 15);
    expect(() => log.entries(1, 6, Infinity, () => 1)).toThrow(CorruptLogError);
  });

  describe('torn tails of the last segment are cut', () => {
    const cases: [string, (target: string) => void][] = [
      ['a partial record header', (t) => fs.appendFileSync(t, Buffer.from([7, 0, 0]))],
      ['half a record', (t) => fs.truncateSync(t, offsetOf(5) - 16)],
      ['a last record failing its checksum', (t) => flipByte(t, offsetOf(4) + 20)],
      ['a zero-filled tail', (t) => fs.appendFileSync(t, Buffer.alloc(4096))],
      ['a length field pointing past the end', (t) => flipByte(t, offsetOf(4) + 3)],
    ];
    it.each(cases)('%s', async (_, damage) => {
      await writeLog(4);
      damage(file(1));
      const { log, report } = await open();
      expect(report.tornTail).toMatchObject({ file: file(1) });
      const survivors = log.lastIndex;
      expect(survivors).toBeGreaterThanOrEqual(3);
      expect(readAll(log)).toEqual(range(1, survivors));
      expect(fs.statSync(file(1)).size).toBe(offsetOf(survivors + 1));
      // The log continues normally after the cut, and the cut is not reported again.
      log.append(range(survivors + 1, 2));
      await log.close();
      const reopened = await open();
      expect(reopened.report.tornTail).toBeUndefined();
      expect(readAll(reopened.log)).toEqual(range(1, survivors + 2));
    });

    it('removes a last segment whose header was torn while it was created', async () => {
      await writeLog(4);
      fs.writeFileSync(file(5), Buffer.from([0x44, 0x4d]));
      const { log, report } = await open();
      expect(report.removedFiles).toEqual([file(5)]);
      expect(fs.existsSync(file(5))).toBe(false);
      expect(log.lastIndex).toBe(4);
    });
  });

  describe('damage anywhere else refuses to open', () => {
    it('a record in the middle of the last segment, naming file and offset', async () => {
      await writeLog(6);
      flipByte(file(1), offsetOf(3) + 12);
      const error = await open().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(CorruptLogError);
      expect(error).toMatchObject({
        code: 'storage/corrupt-record',
        file: file(1),
        offset: offsetOf(3),
      });
      expect((error as Error).message).toContain(file(1));
    });

    it('a damaged length in the middle (even one pointing past the end)', async () => {
      await writeLog(6);
      flipByte(file(1), offsetOf(2) + 3);
      await expect(open()).rejects.toMatchObject({ offset: offsetOf(2), file: file(1) });
    });

    it('the last record of a segment that is not the last', async () => {
      await writeLog(6, { segmentBytes: SEGMENT_HEADER_BYTES + 3 * RECORD });
      fs.truncateSync(file(1), offsetOf(3) + 5);
      await expect(open()).rejects.toMatchObject({
        code: 'storage/corrupt-record',
        file: file(1),
        offset: offsetOf(3),
      });
    });

    it('a missing segment (a gap in the indices)', async () => {
      await writeLog(9, { segmentBytes: SEGMENT_HEADER_BYTES + 3 * RECORD });
      fs.unlinkSync(file(4));
      await expect(open()).rejects.toMatchObject({ code: 'storage/corrupt-record', file: file(7) });
    });

    it('a segment header naming another index than its file name', async () => {
      await writeLog(3);
      fs.renameSync(file(1), file(2));
      await expect(open()).rejects.toMatchObject({ code: 'storage/corrupt-record', offset: 0 });
    });

    it('a damaged header with valid records after it', async () => {
      await writeLog(3);
      flipByte(file(1), 10);
      await expect(open()).rejects.toMatchObject({ code: 'storage/corrupt-record', offset: 0 });
    });

    it('a segment of a newer format version', async () => {
      await writeLog(3);
      const bytes = fs.readFileSync(file(1));
      bytes[4] = 2;
      // Re-seal the header checksum so only the version differs.
      bytes.writeUInt32LE(crc32c(bytes.subarray(0, 20)), 20);
      fs.writeFileSync(file(1), bytes);
      await expect(open()).rejects.toBeInstanceOf(UnsupportedVersionError);
    });
  });

  it('truncates a suffix physically, across segments', async () => {
    const { log } = await open({ segmentBytes: SEGMENT_HEADER_BYTES + 3 * RECORD });
    log.append(range(1, 10));
    await log.sync();
    log.truncateAfter(5);
    log.append(range(6, 2, 2));
    await log.close();
    expect(fs.readdirSync(directory).sort()).toEqual([1, 4, 7].map(segmentFileName));
    const { log: reopened } = await open();
    expect(readAll(reopened)).toEqual([...range(1, 5), ...range(6, 2, 2)]);
  });

  it('compaction deletes whole segments below the index, keeping the last one', async () => {
    const { log } = await open({ segmentBytes: SEGMENT_HEADER_BYTES + 3 * RECORD });
    log.append(range(1, 10));
    log.compact(8);
    await log.sync();
    expect(fs.readdirSync(directory).sort()).toEqual([7, 10].map(segmentFileName));
    log.compact(10);
    await log.sync();
    expect(fs.readdirSync(directory).sort()).toEqual([segmentFileName(10)]);
    expect(log.firstIndex).toBe(11);
    log.append(range(11, 1));
    expect(readAll(log)).toEqual(range(11, 1));
  });

  it('refuses an append that does not continue the log or lowers the term', async () => {
    const { log } = await open();
    log.append(range(1, 2, 3));
    expect(() => log.append([entry(4, 3)])).toThrow(/does not follow/);
    expect(() => log.append([entry(3, 2)])).toThrow(/breaks the log order/);
  });

  it('fails every call after a flush failed (no retry after a failed fsync)', async () => {
    const { log } = await open();
    log.append(range(1, 1));
    await log.sync();
    // Make the next flush fail: its segment file disappears under it and a directory takes
    // its place, so reopening it for writing fails.
    log.truncateAfter(0);
    log.append(range(1, 1, 2));
    fs.rmSync(file(1));
    fs.mkdirSync(file(1));
    await expect(log.sync()).rejects.toMatchObject({ code: 'storage/io-failed' });
    expect(() => log.append(range(2, 1, 2))).toThrow(
      expect.objectContaining({ code: 'storage/io-failed' }),
    );
    await expect(log.sync()).rejects.toMatchObject({ code: 'storage/io-failed' });
    fs.rmdirSync(file(1));
  });
});
