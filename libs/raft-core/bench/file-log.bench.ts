/*
 * FileLogStorage benchmark: group-commit throughput vs concurrency, raw fdatasync latency,
 * and replay of 1,000,000 entries. Prints markdown tables.
 *
 *   npx tsx libs/raft-core/bench/file-log.bench.ts [--seconds 2] [--replay 1000000]
 *
 * Uses real files in os.tmpdir(), removed at the end.
 */
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Entry } from '../src/core/types';
import { FileLogStorage } from '../src/storage/file-log-storage';

const argument = (name: string, fallback: number): number => {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? Number(process.argv[at + 1]) : fallback;
};
const SECONDS = argument('seconds', 2);
const REPLAY_ENTRIES = argument('replay', 1_000_000);
const ENTRY_BYTES = 200;
const root = fs.mkdtempSync(path.join(tmpdir(), 'file-log-bench-'));

const payload = new Uint8Array(ENTRY_BYTES).map((_, i) => (i * 31) & 0xff);
const entry = (index: number): Entry => ({ index, term: 1, kind: 'normal', data: payload });

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}
const ms = (value: number): string => value.toFixed(2);

/** `proposers` concurrent loops of append(1 entry) + await sync(), for SECONDS. */
async function groupCommit(proposers: number): Promise<string> {
  const directory = fs.mkdtempSync(path.join(root, `gc-${proposers}-`));
  const storage = await FileLogStorage.open(directory);
  const latencies: number[] = [];
  const deadline = performance.now() + SECONDS * 1000;
  const loop = async (): Promise<void> => {
    while (performance.now() < deadline) {
      const started = performance.now();
      storage.append([entry(storage.lastIndex() + 1)]);
      await storage.sync();
      latencies.push(performance.now() - started);
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: proposers }, loop));
  const elapsed = (performance.now() - started) / 1000;
  const count = storage.lastIndex();
  await storage.close();
  latencies.sort((a, b) => a - b);
  return `| ${proposers} | ${Math.round(count / elapsed)} | ${ms(percentile(latencies, 50))} | ${ms(percentile(latencies, 99))} |`;
}

/** Latency of a 4 KiB write + fdatasync on this disk: the floor of every acknowledged append. */
function fdatasyncLatency(samples: number): string {
  const file = path.join(root, 'fdatasync-probe');
  const fd = fs.openSync(file, 'w');
  const block = Buffer.alloc(4096, 7);
  const latencies: number[] = [];
  for (let i = 0; i < samples; i++) {
    const started = performance.now();
    fs.writeSync(fd, block, 0, block.length, i * block.length);
    fs.fdatasyncSync(fd);
    latencies.push(performance.now() - started);
  }
  fs.closeSync(fd);
  latencies.sort((a, b) => a - b);
  return `| ${samples} | ${ms(percentile(latencies, 50))} | ${ms(percentile(latencies, 99))} | ${ms(latencies[latencies.length - 1] ?? NaN)} |`;
}

/** Writes REPLAY_ENTRIES entries, then times open (validating every record) and a full read. */
async function replay(): Promise<string> {
  const directory = fs.mkdtempSync(path.join(root, 'replay-'));
  // Writing is not what is measured: no fsync, batches of 1000.
  const writer = await FileLogStorage.open(directory, { fsync: false });
  for (let first = 1; first <= REPLAY_ENTRIES; first += 1000) {
    const count = Math.min(1000, REPLAY_ENTRIES - first + 1);
    writer.append(Array.from({ length: count }, (_, i) => entry(first + i)));
    await writer.sync();
  }
  await writer.close();
  const bytes = fs
    .readdirSync(path.join(directory, 'log'))
    .reduce((sum, name) => sum + fs.statSync(path.join(directory, 'log', name)).size, 0);

  const started = performance.now();
  const storage = await FileLogStorage.open(directory);
  const opened = performance.now();
  let read = 0;
  let checksum = 0;
  const last = storage.lastIndex();
  for (let lo = storage.firstIndex(); lo <= last;) {
    const batch = storage.entries(lo, last + 1, 8 * 1024 * 1024);
    for (const e of batch) checksum = (checksum + (e.data[e.index % ENTRY_BYTES] ?? 0)) | 0;
    read += batch.length;
    lo += batch.length;
  }
  const finished = performance.now();
  await storage.close();
  if (read !== REPLAY_ENTRIES) throw new Error(`read ${read} of ${REPLAY_ENTRIES} entries`);
  const openS = (opened - started) / 1000;
  const readS = (finished - opened) / 1000;
  return `| ${REPLAY_ENTRIES} | ${(bytes / 1024 / 1024).toFixed(0)} MiB | ${openS.toFixed(2)} | ${readS.toFixed(2)} | ${(openS + readS).toFixed(2)} | ${checksum !== 0 ? 'ok' : '?'} |`;
}

async function main(): Promise<void> {
  try {
    console.log(
      `## FileLogStorage (node ${process.version}, ${ENTRY_BYTES}-byte entries, fsync on)\n`,
    );
    console.log('### Group commit: proposers each appending 1 entry and awaiting sync()\n');
    console.log('| concurrent proposers | entries/s | sync p50 (ms) | sync p99 (ms) |');
    console.log('| ---: | ---: | ---: | ---: |');
    for (const proposers of [1, 4, 16, 64]) console.log(await groupCommit(proposers));
    console.log('\n### Raw 4 KiB write + fdatasync\n');
    console.log('| samples | p50 (ms) | p99 (ms) | max (ms) |');
    console.log('| ---: | ---: | ---: | ---: |');
    console.log(fdatasyncLatency(300));
    console.log('\n### Replay: open (validate every record) + read all\n');
    console.log('| entries | on disk | open (s) | read all (s) | total (s) | data |');
    console.log('| ---: | ---: | ---: | ---: | ---: | :-: |');
    console.log(await replay());
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

void main();
