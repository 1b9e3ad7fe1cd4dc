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

/** Encodes a change as the data of a `conf-change` entry: 1 byte type, 4 bytes node id (BE). */
export function encodeConfChange(change: ConfChange): Uint8Array {
  const bytes = new Uint8Array(5);
  bytes[0] = TYPE_CODES[change.type];
  new DataView(bytes.buffer).setUint32(1, change.nodeId);
  return bytes;
}

/** Decodes {@link encodeConfChange}'s output. Throws InvariantViolation on malformed data. */
export function decodeConfChange(data: Uint8Array): ConfChange {
  const type = data.length === 5 ? CODE_TYPES[data[0] ?? 0] : undefined;
  if (type === undefined) {
    throw new InvariantViolation(`malformed conf-change entry (${data.length} bytes)`);
  }
  const nodeId = new DataView(data.buffer, data.byteOffset, data.byteLength).getUint32(1);
  return { type, nodeId };
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
