import { SnapshotFormatError } from './errors';
import type { IdempotencyOptions } from './idempotency-table';
import { crc32 } from './crc32';
import {
  newPartitionRecord,
  sameIds,
  uncleanLeaderElectionOf,
  type BrokerRecord,
  type TopicRecord,
} from './records';
import { emptyState, type MetadataState } from './state';

/**
 * Snapshot format: NDJSON (one JSON value per line, UTF-8), streamed in chunks.
 *
 * Format version 1, line by line:
 * 1. header: `{"t":"header","format":"dmq-metadata-snapshot","formatVersion":1,"version":…,
 *    "lastBrokerEpoch":…,"topicIdSalt":…,"backupGeneration":…,"restoring":null|{"nextPart","parts"},
 *    "idempotency":{"ttlMs":…,"maxEntries":…},
 *    "brokers":n,"topics":n,"partitions":n,"idempotencyKeys":n}`
 * 2. one line per broker, by id: `{"t":"b","id","host","port","rack","push","epoch","fenced","hb","reg"}`
 * 3. one line per topic, by name: `{"t":"t","name","id","rf","config","created","p":[…]}` where
 *    `p` holds each partition as `[leader,leaderEpoch,partitionEpoch,[replicas],[isr],
 *    startOffset,endOffset,lastUpdatedMs,[adding],[removing]]`
 * 4. one line per idempotency key, oldest first: `{"t":"i","key","hash","ts","outcome"}`
 * 5. trailer: `{"t":"end","lines":n,"crc32":c}`: the count of lines before it and the CRC-32
 *    of their bytes (newlines included), so a truncated or damaged file is refused.
 *
 * The output is canonical (same state, same bytes): brokers and topics sorted, config keys
 * sorted. A later release that changes the format writes a larger `formatVersion` and keeps a
 * reader for every older one; this release refuses versions it does not know.
 */
export const SNAPSHOT_FORMAT = 'dmq-metadata-snapshot';
export const SNAPSHOT_FORMAT_VERSION = 1;

const encoder = new TextEncoder();

/** Collects lines and hands them out as chunks of about `chunkChars` characters. */
class ChunkWriter {
  private parts: string[] = [];
  private chars = 0;
  lines = 0;
  crc = 0;

  constructor(private readonly chunkChars: number) {}

  line(text: string): Uint8Array | undefined {
    this.parts.push(text, '\n');
    this.chars += text.length + 1;
    this.lines++;
    return this.chars >= this.chunkChars ? this.flush() : undefined;
  }

  flush(): Uint8Array | undefined {
    if (this.chars === 0) return undefined;
    const bytes = encoder.encode(this.parts.join(''));
    this.crc = crc32(bytes, this.crc);
    this.parts = [];
    this.chars = 0;
    return bytes;
  }
}

function ids(list: readonly number[]): string {
  return list.length === 0 ? '[]' : `[${list.join(',')}]`;
}

/** Writes `state` as snapshot chunks (see the module comment). Chunks are about `chunkBytes`. */
export function* writeSnapshot(state: MetadataState, chunkBytes = 1 << 16): Generator<Uint8Array> {
  const w = new ChunkWriter(chunkBytes);
  let chunk: Uint8Array | undefined;
  chunk = w.line(
    JSON.stringify({
      t: 'header',
      format: SNAPSHOT_FORMAT,
      formatVersion: SNAPSHOT_FORMAT_VERSION,
      version: state.version,
      lastBrokerEpoch: state.lastBrokerEpoch,
      topicIdSalt: state.topicIdSalt,
      backupGeneration: state.backupGeneration,
      restoring: state.restoring,
      idempotency: {
        ttlMs: state.idempotency.options.ttlMs,
        maxEntries: state.idempotency.options.maxEntries,
      },
      brokers: state.brokers.size,
      topics: state.topics.size,
      partitions: state.partitionCount,
      idempotencyKeys: state.idempotency.size,
    }),
  );
  if (chunk) yield chunk;
  for (const id of [...state.brokers.keys()].sort((a, b) => a - b)) {
    const b = state.brokers.get(id) as BrokerRecord;
    chunk = w.line(
      JSON.stringify({
        t: 'b',
        id: b.id,
        host: b.host,
        port: b.port,
        rack: b.rack,
        push: b.pushEndpoint,
        epoch: b.epoch,
        fenced: b.fenced,
        hb: b.lastHeartbeatAtMs,
        reg: b.registeredAtMs,
      }),
    );
    if (chunk) yield chunk;
  }
  for (const name of [...state.topics.keys()].sort()) {
    const t = state.topics.get(name) as TopicRecord;
    const head = JSON.stringify({
      t: 't',
      name: t.name,
      id: t.id,
      rf: t.replicationFactor,
      config: t.config,
      created: t.createdAtMs,
    });
    const partitions: string[] = [];
    for (const p of t.partitions) {
      partitions.push(
        `[${p.leader},${p.leaderEpoch},${p.partitionEpoch},${ids(p.replicas)},${ids(p.isr)},` +
          `${p.startOffset},${p.endOffset},${p.lastUpdatedMs},${ids(p.adding)},${ids(p.removing)}]`,
      );
    }
    chunk = w.line(`${head.slice(0, -1)},"p":[${partitions.join(',')}]}`);
    if (chunk) yield chunk;
  }
  for (const [key, entry] of state.idempotency.list()) {
    chunk = w.line(
      JSON.stringify({
        t: 'i',
        key,
        hash: entry.requestHash,
        ts: entry.timestampMs,
        outcome: entry.outcomeJson,
      }),
    );
    if (chunk) yield chunk;
  }
  chunk = w.flush();
  if (chunk) yield chunk;
  const lines = w.lines;
  yield encoder.encode(`${JSON.stringify({ t: 'end', lines, crc32: w.crc })}\n`);
}

// ---- reading ----

function fail(message: string): never {
  throw new SnapshotFormatError(`snapshot: ${message}`);
}

function int(value: unknown, what: string, min = 0): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    fail(`${what} is not an integer >= ${min}`);
  }
  return value;
}

function str(value: unknown, what: string): string {
  if (typeof value !== 'string') fail(`${what} is not a string`);
  return value;
}

function strOrNull(value: unknown, what: string): string | null {
  return value === null ? null : str(value, what);
}

function intOrNull(value: unknown, what: string): number | null {
  return value === null ? null : int(value, what);
}

function idList(value: unknown, what: string): number[] {
  if (!Array.isArray(value)) fail(`${what} is not a list`);
  for (const id of value) int(id, what, 1);
  return value as number[];
}

function record(value: unknown, what: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    fail(`${what} is not an object`);
  }
  return value as Record<string, unknown>;
}

interface Header {
  readonly brokers: number;
  readonly topics: number;
  readonly partitions: number;
  readonly idempotencyKeys: number;
}

/**
 * Reads snapshot chunks (split anywhere) into a state: `push` each chunk, then `finish`.
 * Every line is checked; any defect throws {@link SnapshotFormatError}.
 */
export class SnapshotReader {
  private readonly decoder = new TextDecoder('utf-8', { fatal: true });
  private carry: Uint8Array[] = [];
  private state: MetadataState | undefined;
  private header: Header | undefined;
  private lines = 0;
  private crc = 0;
  private ended = false;

  push(chunk: Uint8Array): void {
    let start = 0;
    for (;;) {
      const newline = chunk.indexOf(10, start);
      if (newline === -1) break;
      const piece = chunk.subarray(start, newline);
      if (this.carry.length > 0) {
        this.carry.push(piece);
        const line = concat(this.carry);
        this.carry = [];
        this.line(line);
      } else {
        this.line(piece);
      }
      start = newline + 1;
    }
    if (start < chunk.length) this.carry.push(chunk.slice(start));
  }

  /** The state read; throws when the stream ended early. */
  finish(): MetadataState {
    if (this.carry.length > 0) fail('ends inside a line');
    if (!this.ended || this.state === undefined) fail('is truncated (no end line)');
    return this.state;
  }

  private line(bytes: Uint8Array): void {
    if (this.ended) fail('has data after its end line');
    let value: Record<string, unknown>;
    try {
      value = record(JSON.parse(this.decoder.decode(bytes)), `line ${this.lines + 1}`);
    } catch (error) {
      if (error instanceof SnapshotFormatError) throw error;
      fail(`line ${this.lines + 1} is not JSON: ${(error as Error).message}`);
    }
    if (value['t'] === 'end') {
      this.end(value);
      return;
    }
    this.crc = crc32(bytes, this.crc);
    this.crc = crc32(NEWLINE, this.crc);
    this.lines++;
    if (this.state === undefined) {
      this.readHeader(value);
      return;
    }
    switch (value['t']) {
      case 'b':
        this.readBroker(this.state, value);
        return;
      case 't':
        this.readTopic(this.state, value);
        return;
      case 'i':
        this.readIdempotencyEntry(this.state, value);
        return;
      default:
        fail(`line ${this.lines} has unknown type ${JSON.stringify(value['t'])}`);
    }
  }

  private readHeader(value: Record<string, unknown>): void {
    if (value['t'] !== 'header' || value['format'] !== SNAPSHOT_FORMAT) {
      fail(`does not start with a ${SNAPSHOT_FORMAT} header`);
    }
    const formatVersion = int(value['formatVersion'], 'formatVersion', 1);
    if (formatVersion > SNAPSHOT_FORMAT_VERSION) {
      fail(
        `format version ${formatVersion} is newer than this release reads (${SNAPSHOT_FORMAT_VERSION})`,
      );
    }
    const idempotency = record(value['idempotency'], 'header.idempotency');
    const options: IdempotencyOptions = {
      ttlMs: int(idempotency['ttlMs'], 'idempotency.ttlMs', 1),
      maxEntries: int(idempotency['maxEntries'], 'idempotency.maxEntries', 1),
    };
    const state = emptyState(options);
    state.version = int(value['version'], 'version');
    state.lastBrokerEpoch = int(value['lastBrokerEpoch'], 'lastBrokerEpoch');
    state.topicIdSalt = int(value['topicIdSalt'], 'topicIdSalt');
    // Absent in snapshots written before backup generations existed.
    state.backupGeneration =
      value['backupGeneration'] === undefined
        ? 0
        : int(value['backupGeneration'], 'backupGeneration');
    // Absent (or null) unless a restore in parts was in progress.
    const restoring = value['restoring'];
    if (restoring !== undefined && restoring !== null) {
      const r = record(restoring, 'header.restoring');
      const parts = int(r['parts'], 'restoring.parts', 2);
      const nextPart = int(r['nextPart'], 'restoring.nextPart', 1);
      if (nextPart >= parts) fail(`restoring.nextPart ${nextPart} is not below ${parts}`);
      state.restoring = { nextPart, parts };
    }
    this.header = {
      brokers: int(value['brokers'], 'brokers'),
      topics: int(value['topics'], 'topics'),
      partitions: int(value['partitions'], 'partitions'),
      idempotencyKeys: int(value['idempotencyKeys'], 'idempotencyKeys'),
    };
    this.state = state;
  }

  private readBroker(state: MetadataState, v: Record<string, unknown>): void {
    const id = int(v['id'], 'broker id', 1);
    if (state.brokers.has(id)) fail(`broker ${id} appears twice`);
    if (typeof v['fenced'] !== 'boolean') fail(`broker ${id}: fenced is not a boolean`);
    state.brokers.set(id, {
      id,
      host: str(v['host'], 'broker host'),
      port: int(v['port'], 'broker port', 1),
      rack: strOrNull(v['rack'], 'broker rack'),
      pushEndpoint: strOrNull(v['push'], 'broker push endpoint'),
      epoch: int(v['epoch'], 'broker epoch'),
      fenced: v['fenced'],
      lastHeartbeatAtMs: intOrNull(v['hb'], 'broker heartbeat time'),
      registeredAtMs: int(v['reg'], 'broker registration time'),
      replicaOf: new Set(),
      leads: new Set(),
    });
  }

  private readTopic(state: MetadataState, v: Record<string, unknown>): void {
    const name = str(v['name'], 'topic name');
    if (state.topics.has(name)) fail(`topic "${name}" appears twice`);
    const configValue = record(v['config'], `topic "${name}" config`);
    for (const key of Object.keys(configValue)) str(configValue[key], `topic "${name}" config`);
    const config = Object.freeze(configValue as Record<string, string>);
    const topic: TopicRecord = {
      name,
      id: str(v['id'], 'topic id'),
      replicationFactor: int(v['rf'], 'replication factor', 1),
      config,
      uncleanLeaderElection: uncleanLeaderElectionOf(config),
      createdAtMs: int(v['created'], 'topic creation time'),
      partitions: [],
    };
    if (state.topicsById.has(topic.id)) fail(`topic id ${topic.id} appears twice`);
    const rows = v['p'];
    if (!Array.isArray(rows)) fail(`topic "${name}" has no partition list`);
    const { interner, brokers } = state;
    const where = (i: number) => `partition ${name}-${i}`;
    const brokerOf = (id: number, i: number): BrokerRecord => {
      const broker = brokers.get(id);
      if (broker === undefined) fail(`${where(i)} refers to unknown broker ${id}`);
      return broker;
    };
    for (let i = 0; i < rows.length; i++) {
      const row: unknown = rows[i];
      if (!Array.isArray(row) || row.length !== 10) fail(`${where(i)} is not a 10-field row`);
      const leader = int(row[0], `${where(i)} leader`, -1);
      const replicaIds = idList(row[3], `${where(i)} replicas`);
      const isrIds = idList(row[4], `${where(i)} isr`);
      const replicas = interner.intern(replicaIds);
      // Most ISRs equal their replica list: share it without a second lookup.
      const isr = sameIds(isrIds, replicaIds) ? replicas : interner.intern(isrIds);
      const p = newPartitionRecord(topic, i, {
        leader,
        leaderEpoch: int(row[1], `${where(i)} leader epoch`),
        partitionEpoch: int(row[2], `${where(i)} partition epoch`),
        replicas,
        isr,
        startOffset: int(row[5], `${where(i)} start offset`),
        endOffset: int(row[6], `${where(i)} end offset`),
        lastUpdatedMs: int(row[7], `${where(i)} update time`),
        adding: interner.intern(idList(row[8], `${where(i)} adding`)),
        removing: interner.intern(idList(row[9], `${where(i)} removing`)),
      });
      for (const id of replicas) brokerOf(id, i).replicaOf.add(p);
      if (leader !== -1) brokerOf(leader, i).leads.add(p);
      topic.partitions.push(p);
    }
    state.topics.set(name, topic);
    state.topicsById.set(topic.id, topic);
    state.partitionCount += topic.partitions.length;
  }

  private readIdempotencyEntry(state: MetadataState, v: Record<string, unknown>): void {
    state.idempotency.store(str(v['key'], 'idempotency key'), {
      requestHash: str(v['hash'], 'idempotency hash'),
      outcomeJson: str(v['outcome'], 'idempotency outcome'),
      timestampMs: int(v['ts'], 'idempotency time'),
    });
  }

  private end(v: Record<string, unknown>): void {
    const { state, header } = this;
    if (state === undefined || header === undefined) fail('ends before its header');
    if (int(v['lines'], 'end.lines') !== this.lines) {
      fail(`end line counts ${String(v['lines'])} lines, read ${this.lines}`);
    }
    if (int(v['crc32'], 'end.crc32') !== this.crc) fail('checksum mismatch (damaged)');
    if (
      state.brokers.size !== header.brokers ||
      state.topics.size !== header.topics ||
      state.partitionCount !== header.partitions ||
      state.idempotency.size !== header.idempotencyKeys
    ) {
      fail('counts differ from its header');
    }
    this.ended = true;
  }
}

const NEWLINE = new Uint8Array([10]);

function concat(parts: readonly Uint8Array[]): Uint8Array {
  let length = 0;
  for (const part of parts) length += part.length;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}
