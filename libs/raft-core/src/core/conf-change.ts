import { InvariantViolation } from './errors';
import type { ConfState, NodeId } from './types';

/**
 * A single-server membership change (thesis §4.1: one server at a time, so any majority of
 * the old configuration overlaps any majority of the new one and no joint consensus is needed).
 *
 * - `add-learner`: the node starts receiving the log without voting (thesis §4.2.1 catch-up).
 * - `promote`: a caught-up learner becomes a voter.
 * - `remove`: the node leaves (voter or learner). Removing the leader is allowed: it keeps
 *   leading without counting itself until the change commits, then steps down (§4.2.2).
 */
export type ConfChangeType = 'add-learner' | 'promote' | 'remove';

export interface ConfChange {
  readonly type: ConfChangeType;
  readonly nodeId: NodeId;
}

const TYPE_CODES: Record<ConfChangeType, number> = { 'add-learner': 1, promote: 2, remove: 3 };
const CODE_TYPES: readonly (ConfChangeType | undefined)[] = [
  undefined,
  'add-learner',
  'promote',
  'remove',
];

/** What a `conf-change` entry holds: the change and the whole configuration it produces. */
export interface ConfChangeRecord {
  readonly change: ConfChange;
  /**
   * The configuration after the change. Carrying it whole (not only the delta) lets a node
   * that joined after the bootstrap learn the full membership from the entry alone.
   */
  readonly conf: ConfState;
}

/**
 * Encodes a `conf-change` entry's data (big-endian): u8 type, u32 node id, u16 voter count,
 * u32 voters…, u16 learner count, u32 learners….
 */
export function encodeConfChange(record: ConfChangeRecord): Uint8Array {
  const { change, conf } = record;
  const bytes = new Uint8Array(5 + 2 + 4 * conf.voters.length + 2 + 4 * conf.learners.length);
  const view = new DataView(bytes.buffer);
  view.setUint8(0, TYPE_CODES[change.type]);
  view.setUint32(1, change.nodeId);
  let at = 5;
  for (const ids of [conf.voters, conf.learners]) {
    view.setUint16(at, ids.length);
    at += 2;
    for (const id of ids) {
      view.setUint32(at, id);
      at += 4;
    }
  }
  return bytes;
}

/** Decodes {@link encodeConfChange}'s output. Throws InvariantViolation on malformed data. */
export function decodeConfChange(data: Uint8Array): ConfChangeRecord {
  const malformed = (): never => {
    throw new InvariantViolation(`malformed conf-change entry (${data.length} bytes)`);
  };
  if (data.length < 9) malformed();
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const type = CODE_TYPES[view.getUint8(0)] ?? malformed();
  const nodeId = view.getUint32(1);
  let at = 5;
  const lists: NodeId[][] = [];
  for (let list = 0; list < 2; list++) {
    if (at + 2 > data.length) malformed();
    const count = view.getUint16(at);
    at += 2;
    if (at + 4 * count > data.length) malformed();
    const ids: NodeId[] = [];
    for (let i = 0; i < count; i++, at += 4) ids.push(view.getUint32(at));
    lists.push(ids);
  }
  if (at !== data.length) malformed();
  return { change: { type, nodeId }, conf: { voters: lists[0] ?? [], learners: lists[1] ?? [] } };
}

/**
 * Returns the configuration after `change`, or a string saying why it is not a valid
 * single-server change of `conf`.
 */
export function applyConfChange(conf: ConfState, change: ConfChange): ConfState | string {
  const { nodeId } = change;
  if (nodeId <= 0 || !Number.isInteger(nodeId)) return `invalid node id ${nodeId}`;
  const isVoter = conf.voters.includes(nodeId);
  const isLearner = conf.learners.includes(nodeId);
  switch (change.type) {
    case 'add-learner':
      if (isVoter || isLearner) return `node ${nodeId} is already a member`;
      return { voters: conf.voters, learners: sorted([...conf.learners, nodeId]) };
    case 'promote':
      if (!isLearner) return `node ${nodeId} is not a learner`;
      return {
        voters: sorted([...conf.voters, nodeId]),
        learners: conf.learners.filter((id) => id !== nodeId),
      };
    case 'remove':
      if (!isVoter && !isLearner) return `node ${nodeId} is not a member`;
      if (isVoter && conf.voters.length === 1) return 'cannot remove the last voter';
      return {
        voters: conf.voters.filter((id) => id !== nodeId),
        learners: conf.learners.filter((id) => id !== nodeId),
      };
  }
}

function sorted(ids: NodeId[]): NodeId[] {
  return ids.sort((x, y) => x - y);
}
