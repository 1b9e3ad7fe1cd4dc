import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { ByteReader } from '../codec/byte-reader';
import { readEntry } from '../codec/entry-codec';
import type { Entry } from '../core/types';
import { crc32c } from './crc32c';
import { CRASH_STORAGE_OPTIONS, crashEntryData } from './file-log-crash-fixture.test-util';
import { FileLogStorage } from './file-log-storage';
import { CorruptLogError } from './storage-errors';

/*
 * Crash test on real files: a child process appends (8 concurrent proposers, each awaiting
 * sync()), changes terms and compacts; we SIGKILL it at random moments, then check that
 * everything it acknowledged survived intact and that nothing invalid is on disk. Every few
 * kills we also damage a *copy* of the directory and check torn tail => cut, middle => refuse.
 */

const CHILD = path.join(__dirname, 'file-log-crash-child.test-util.ts');
const REPOSITORY_ROOT = path.resolve(__dirname, '../../../..');
const KILLS = 40;

interface ChildRun {
  readonly acks: [index: number, term: number][];
  readonly terms: number[];
  readonly snapshots: number[];
  readonly ready: boolean;
}

/** Runs the child on `directory` and SIGKILLs it `killAfterMs` after it reported ready. */
function runChild(directory: string, killAfterMs: number): Promise<ChildRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, directory], {
      cwd: REPOSITORY_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const run: ChildRun = { acks: [], terms: [], snapshots: [], ready: false };
    let pending = '';
    let stderr = '';
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => (stderr += chunk));
    child.stdout.on('data', (chunk: string) => {
      pending += chunk;
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) {
        const [kind, a, b] = line.split(' ');
        if (kind === 'ready') {
          (run as { ready: boolean }).ready = true;
          // The kill moment is the random input of this test, not a synchronisation.
          setTimeout(() => child.kill('SIGKILL'), killAfterMs);
        } else if (kind === 'ack') run.acks.push([Number(a), Number(b)]);
        else if (kind === 'term') run.terms.push(Number(a));
        else if (kind === 'snapshot') run.snapshots.push(Number(a));
      }
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (signal === 'SIGKILL') resolve(run);
      else reject(new Error(`child exited on its own (code ${code}): ${stderr}`));
    });
  });
}

interface ScannedRecord {
  readonly file: string;
  readonly offset: number;
  readonly entry: Entry;
}

/**
 * Independent reader of the segment format (not the code under test): checks every header
 * and record checksum, contiguous indices and non-decreasing terms. Throws on any defect.
 */
function scanLog(logDirectory: string): ScannedRecord[] {
  const records: ScannedRecord[] = [];
  for (const name of fs.readdirSync(logDirectory).sort()) {
    const file = path.join(logDirectory, name);
    const bytes = fs.readFileSync(file);
    expect(bytes.readUInt32LE(0)).toBe(0x4c514d44);
    expect(bytes.readUInt32LE(20)).toBe(crc32c(bytes.subarray(0, 20)));
    const first = Number(bytes.readBigUInt64LE(8));
    expect(name).toBe(`${String(first).padStart(20, '0')}.seg`);
    let offset = 24;
    while (offset < bytes.length) {
      const length = bytes.readUInt32LE(offset);
      const end = offset + 9 + length;
      if (end > bytes.length) throw new Error(`${file}@${offset}: record past the end`);
      const crc = crc32c(
        bytes.subarray(offset + 8, end),
        crc32c(bytes.subarray(offset, offset + 4)),
      );
      if (crc !== bytes.readUInt32LE(offset + 4)) throw new Error(`${file}@${offset}: bad CRC`);
      expect(bytes[offset + 8]).toBe(1);
      const reader = new ByteReader(bytes, offset + 9, end);
      const entry = readEntry(reader);
      reader.expectEnd();
      const previous = records[records.length - 1];
      if (previous === undefined) expect(entry.index).toBe(first);
      else {
        expect(entry.index).toBe(previous.entry.index + 1);
        expect(entry.term).toBeGreaterThanOrEqual(previous.entry.term);
      }
      records.push({ file, offset, entry });
      offset = end;
    }
  }
  return records;
}

function copyDirectory(from: string): string {
  const to = fs.mkdtempSync(path.join(tmpdir(), 'crash-copy-'));
  fs.cpSync(from, to, { recursive: true });
  return to;
}

describe('FileLogStorage under kill -9', () => {
  let directory: string;

  beforeAll(() => {
    directory = fs.mkdtempSync(path.join(tmpdir(), 'file-log-crash-'));
  });

  afterAll(() => {
    fs.rmSync(directory, { recursive: true, force: true });
  });

  it(`keeps every acknowledged entry and nothing invalid across ${KILLS} crashes`, async () => {
    const acked = new Map<number, number>();
    let ackedTerm = 0;
    let ackedSnapshot = 0;
    let tornTails = 0;
    let injections = 0;
    for (let kill = 0; kill < KILLS; kill++) {
      const run = await runChild(directory, 10 + Math.floor(Math.random() * 250));
      expect(run.ready).toBe(true);
      for (const [index, term] of run.acks) acked.set(index, term);
      ackedTerm = Math.max(ackedTerm, ...run.terms);
      ackedSnapshot = Math.max(ackedSnapshot, ...run.snapshots);

      // Recovery: cuts a torn tail, refuses nothing.
      const storage = await FileLogStorage.open(directory, CRASH_STORAGE_OPTIONS);
      if (storage.recovery.tornTail !== undefined) tornTails++;
      const first = storage.firstIndex();
      const last = storage.lastIndex();
      const entries = last >= first ? storage.entries(first, last + 1, Infinity) : [];
      const { hardState } = storage.initialState();
      const snapshot = storage.snapshotMeta();
      await storage.close();

      // Every acknowledged fact survived.
      expect(last).toBeGreaterThanOrEqual(Math.max(0, ...acked.keys()));
      expect(hardState.term).toBeGreaterThanOrEqual(ackedTerm);
      expect(snapshot.index).toBeGreaterThanOrEqual(ackedSnapshot);
      const termOf = new Map(entries.map((entry) => [entry.index, entry.term]));
      for (const [index, term] of acked) {
        if (index > snapshot.index) expect([index, termOf.get(index)]).toEqual([index, term]);
      }
      // Nothing invalid: contents match the deterministic data, terms never ahead of the
      // durable term, commit never beyond the log, and the files pass an independent check.
      for (const entry of entries) {
        expect(entry.data).toEqual(crashEntryData(entry.index, entry.term));
        expect(entry.term).toBeLessThanOrEqual(hardState.term);
      }
      expect(hardState.commit).toBeLessThanOrEqual(last);
      const records = scanLog(path.join(directory, 'log'));
      expect(records[records.length - 1]?.entry.index ?? snapshot.index).toBe(last);

      if (kill % 5 === 4 && records.length >= 3) {
        injections++;
        await injectDamage(records, last);
      }
    }
    console.log(
      `${KILLS} kills: ${acked.size} acknowledged entries checked, ${tornTails} torn tails cut, ` +
        `${injections} damage injections`,
    );
    expect(acked.size).toBeGreaterThan(KILLS);
    expect(injections).toBeGreaterThan(0);
  }, 120_000);

  /** On copies: a torn tail is cut without loss; damage in the middle is refused. */
  async function injectDamage(records: ScannedRecord[], last: number): Promise<void> {
    const lastRecord = records[records.length - 1] as ScannedRecord;
    const inCopy = (copy: string, file: string): string =>
      path.join(copy, 'log', path.basename(file));

    // Garbage after the last record (a write torn by the crash): cut, nothing lost.
    const torn = copyDirectory(directory);
    fs.appendFileSync(inCopy(torn, lastRecord.file), Buffer.from([0x2a, 0, 0, 0, 0x13, 0x37]));
    const repaired = await FileLogStorage.open(torn, CRASH_STORAGE_OPTIONS);
    expect(repaired.recovery.tornTail?.file).toBe(inCopy(torn, lastRecord.file));
    expect(repaired.lastIndex()).toBe(last);
    await repaired.close();
    fs.rmSync(torn, { recursive: true, force: true });

    // A flipped byte in a record that is not the last one: refused, naming file and offset.
    const victim = records[Math.floor(Math.random() * (records.length - 1))] as ScannedRecord;
    const corrupt = copyDirectory(directory);
    const target = inCopy(corrupt, victim.file);
    const bytes = fs.readFileSync(target);
    const at = victim.offset + 9 + Math.floor(Math.random() * 4);
    bytes[at] = (bytes[at] as number) ^ 0x01;
    fs.writeFileSync(target, bytes);
    const error = await FileLogStorage.open(corrupt, CRASH_STORAGE_OPTIONS).then(
      async (storage) => {
        await storage.close();
        return undefined;
      },
      (rejection: unknown) => rejection,
    );
    expect(error).toBeInstanceOf(CorruptLogError);
    expect(error).toMatchObject({ file: target, offset: victim.offset });
    fs.rmSync(corrupt, { recursive: true, force: true });
  }
});
