import type { Message, MessageType } from '../core/messages';
import type { Entry } from '../core/types';
import { ByteReader } from './byte-reader';
import { ByteWriter } from './byte-writer';
import { CodecError } from './codec-error';
import { readEntry, readNodeIds, writeEntry, writeNodeIds } from './entry-codec';

/**
 * Version this build writes (and the highest it reads), the first byte of every frame. Bump
 * it when a field is removed or its meaning changes; adding a message type keeps it (an old
 * peer rejects the unknown tag with `codec/malformed`).
 */
export const CODEC_VERSION = 1;

/*
 * Frame: version (1) | type tag (1) | varint from | varint to | varint term | body.
 * Bodies, in field order (varint unless noted; `flags` is one byte of booleans, bit 0 first):
 *   1  vote-request         flags(preVote, transfer) lastLogIndex lastLogTerm
 *   2  vote-response        flags(preVote, granted)
 *   3  append               prevLogIndex prevLogTerm commit count entry*   (entry: entry-codec)
 *   4  append-response      flags(success) index conflictIndex conflictTerm
 *   5  heartbeat            commit context
 *   6  heartbeat-response   context
 *   7  snapshot-chunk       flags(done) snapshotIndex snapshotTerm voters learners offset data
 *   8  snapshot-ack         flags(rejected) snapshotIndex nextOffset
 *   9  timeout-now          (nothing)
 *   10 read-index           context
 *   11 read-index-response  flags(rejected) context index
 *   12 log-lost             lastIndex
 * Tags are never reused.
 */
const TAGS: Record<MessageType, number> = {
  'vote-request': 1,
  'vote-response': 2,
  append: 3,
  'append-response': 4,
  heartbeat: 5,
  'heartbeat-response': 6,
  'snapshot-chunk': 7,
  'snapshot-ack': 8,
  'timeout-now': 9,
  'read-index': 10,
  'read-index-response': 11,
  'log-lost': 12,
};

/** Encodes `message` as one self-describing frame. */
export function encodeMessage(message: Message): Uint8Array {
  const tag = TAGS[message.type] as number | undefined;
  if (tag === undefined) {
    throw new CodecError('codec/invalid-value', `unknown message type ${String(message.type)}`);
  }
  const payloadHint = message.type === 'append' ? entriesBytes(message.entries) : 0;
  const writer = new ByteWriter(
    32 + payloadHint + (message.type === 'snapshot-chunk' ? message.data.length : 0),
  );
  writer.u8(CODEC_VERSION);
  writer.u8(tag);
  writer.varint(message.from);
  writer.varint(message.to);
  writer.varint(message.term);
  switch (message.type) {
    case 'vote-request':
      writeFlags(writer, message.preVote, message.transfer);
      writer.varint(message.lastLogIndex);
      writer.varint(message.lastLogTerm);
      break;
    case 'vote-response':
      writeFlags(writer, message.preVote, message.granted);
      break;
    case 'append':
      writer.varint(message.prevLogIndex);
      writer.varint(message.prevLogTerm);
      writer.varint(message.commit);
      writer.varint(message.entries.length);
      for (const entry of message.entries) writeEntry(writer, entry);
      break;
    case 'append-response':
      writeFlags(writer, message.success);
      writer.varint(message.index);
      writer.varint(message.conflictIndex);
      writer.varint(message.conflictTerm);
      break;
    case 'heartbeat':
      writer.varint(message.commit);
      writer.varint(message.context);
      break;
    case 'log-lost':
      writer.varint(message.lastIndex);
      break;
    case 'heartbeat-response':
      writer.varint(message.context);
      break;
    case 'snapshot-chunk':
      writeFlags(writer, message.done);
      writer.varint(message.snapshotIndex);
      writer.varint(message.snapshotTerm);
      writeNodeIds(writer, message.voters);
      writeNodeIds(writer, message.learners);
      writer.varint(message.offset);
      writer.bytes(message.data);
      break;
    case 'snapshot-ack':
      writeFlags(writer, message.rejected);
      writer.varint(message.snapshotIndex);
      writer.varint(message.nextOffset);
      break;
    case 'timeout-now':
      break;
    case 'read-index':
      writer.varint(message.context);
      break;
    case 'read-index-response':
      writeFlags(writer, message.rejected);
      writer.varint(message.context);
      writer.varint(message.index);
      break;
  }
  return writer.finish();
}

/**
 * Decodes one frame of {@link encodeMessage}.
 * @throws {CodecError} `codec/unsupported-version` for a frame of a newer codec;
 *   `codec/truncated`, `codec/malformed` or `codec/trailing-bytes` for anything that is not
 *   exactly one valid frame.
 */
export function decodeMessage(bytes: Uint8Array): Message {
  const reader = new ByteReader(bytes);
  const version = reader.u8();
  if (version > CODEC_VERSION) {
    throw new CodecError(
      'codec/unsupported-version',
      `codec version ${version}; this build reads up to ${CODEC_VERSION}`,
    );
  }
  if (version === 0) throw new CodecError('codec/malformed', 'codec version 0');
  const tag = reader.u8();
  const from = reader.varint();
  const to = reader.varint();
  const term = reader.varint();
  const header = { from, to, term };
  let message: Message;
  switch (tag) {
    case 1: {
      const [preVote, transfer] = readFlags(reader, 2);
      const lastLogIndex = reader.varint();
      const lastLogTerm = reader.varint();
      message = { type: 'vote-request', ...header, preVote, lastLogIndex, lastLogTerm, transfer };
      break;
    }
    case 2: {
      const [preVote, granted] = readFlags(reader, 2);
      message = { type: 'vote-response', ...header, preVote, granted };
      break;
    }
    case 3: {
      const prevLogIndex = reader.varint();
      const prevLogTerm = reader.varint();
      const commit = reader.varint();
      const count = reader.varint();
      // An entry takes at least 4 bytes: refuse absurd counts before allocating.
      if (count > reader.remaining / 4) throw new CodecError('codec/truncated', `${count} entries`);
      const entries: Entry[] = [];
      for (let i = 0; i < count; i++) entries.push(readEntry(reader));
      message = { type: 'append', ...header, prevLogIndex, prevLogTerm, entries, commit };
      break;
    }
    case 4: {
      const [success] = readFlags(reader, 1);
      const index = reader.varint();
      const conflictIndex = reader.varint();
      const conflictTerm = reader.varint();
      message = { type: 'append-response', ...header, success, index, conflictIndex, conflictTerm };
      break;
    }
    case 5: {
      const commit = reader.varint();
      const context = reader.varint();
      message = { type: 'heartbeat', ...header, commit, context };
      break;
    }
    case 6:
      message = { type: 'heartbeat-response', ...header, context: reader.varint() };
      break;
    case 12:
      message = { type: 'log-lost', ...header, lastIndex: reader.varint() };
      break;
    case 7: {
      const [done] = readFlags(reader, 1);
      const snapshotIndex = reader.varint();
      const snapshotTerm = reader.varint();
      const voters = readNodeIds(reader);
      const learners = readNodeIds(reader);
      const offset = reader.varint();
      const data = reader.bytes();
      message = {
        type: 'snapshot-chunk',
        ...header,
        snapshotIndex,
        snapshotTerm,
        voters,
        learners,
        offset,
        data,
        done,
      };
      break;
    }
    case 8: {
      const [rejected] = readFlags(reader, 1);
      const snapshotIndex = reader.varint();
      const nextOffset = reader.varint();
      message = { type: 'snapshot-ack', ...header, snapshotIndex, nextOffset, rejected };
      break;
    }
    case 9:
      message = { type: 'timeout-now', ...header };
      break;
    case 10:
      message = { type: 'read-index', ...header, context: reader.varint() };
      break;
    case 11: {
      const [rejected] = readFlags(reader, 1);
      const context = reader.varint();
      const index = reader.varint();
      message = { type: 'read-index-response', ...header, context, index, rejected };
      break;
    }
    default:
      throw new CodecError('codec/malformed', `unknown message tag ${tag}`);
  }
  reader.expectEnd();
  return message;
}

function writeFlags(writer: ByteWriter, ...flags: boolean[]): void {
  let byte = 0;
  flags.forEach((flag, bit) => {
    if (flag) byte |= 1 << bit;
  });
  writer.u8(byte);
}

/** Reads a flags byte of `count` booleans; set bits above them are garbage. */
function readFlags(reader: ByteReader, count: 1): [boolean];
function readFlags(reader: ByteReader, count: 2): [boolean, boolean];
function readFlags(reader: ByteReader, count: number): boolean[] {
  const byte = reader.u8();
  if (byte >> count !== 0) throw new CodecError('codec/malformed', `flags byte ${byte}`);
  return Array.from({ length: count }, (_, bit) => (byte & (1 << bit)) !== 0);
}

function entriesBytes(entries: readonly Entry[]): number {
  let total = 0;
  for (const entry of entries) total += entry.data.length + 16;
  return total;
}
