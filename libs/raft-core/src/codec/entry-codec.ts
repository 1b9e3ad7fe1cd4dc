import type { ConfState, Entry, EntryKind, SnapshotMeta } from '../core/types';
import type { ByteReader } from './byte-reader';
import type { ByteWriter } from './byte-writer';
import { CodecError } from './codec-error';

/*
 * Encodings shared by the wire codec and the on-disk formats, so an entry is the same bytes
 * in a segment file and in an AppendRequest.
 */

const KIND_CODES: Record<EntryKind, number> = { normal: 0, 'conf-change': 1 };
const CODE_KINDS: readonly EntryKind[] = ['normal', 'conf-change'];

/** Entry: varint index, varint term, kind byte, varint length + data. */
export function writeEntry(writer: ByteWriter, entry: Entry): void {
  writer.varint(entry.index);
  writer.varint(entry.term);
  writer.u8(KIND_CODES[entry.kind]);
  writer.bytes(entry.data);
}

export function readEntry(reader: ByteReader): Entry {
  const index = reader.varint();
  const term = reader.varint();
  const kind = readEntryKind(reader);
  const data = reader.bytes();
  return { index, term, kind, data };
}

export function readEntryKind(reader: ByteReader): EntryKind {
  const code = reader.u8();
  const kind = CODE_KINDS[code];
  if (kind === undefined) throw new CodecError('codec/malformed', `unknown entry kind ${code}`);
  return kind;
}

/** A list of node ids: varint count, then each id as a varint. */
export function writeNodeIds(writer: ByteWriter, ids: readonly number[]): void {
  writer.varint(ids.length);
  for (const id of ids) writer.varint(id);
}

export function readNodeIds(reader: ByteReader): number[] {
  const count = reader.varint();
  // Each id takes at least one byte: a count above that is garbage, refuse before allocating.
  if (count > reader.remaining) throw new CodecError('codec/truncated', `${count} node ids`);
  const ids: number[] = [];
  for (let i = 0; i < count; i++) ids.push(reader.varint());
  return ids;
}

export function writeConfState(writer: ByteWriter, conf: ConfState): void {
  writeNodeIds(writer, conf.voters);
  writeNodeIds(writer, conf.learners);
}

export function readConfState(reader: ByteReader): ConfState {
  const voters = readNodeIds(reader);
  const learners = readNodeIds(reader);
  return { voters, learners };
}

export function writeSnapshotMeta(writer: ByteWriter, meta: SnapshotMeta): void {
  writer.varint(meta.index);
  writer.varint(meta.term);
  writeConfState(writer, meta.conf);
}

export function readSnapshotMeta(reader: ByteReader): SnapshotMeta {
  const index = reader.varint();
  const term = reader.varint();
  const conf = readConfState(reader);
  return { index, term, conf };
}
