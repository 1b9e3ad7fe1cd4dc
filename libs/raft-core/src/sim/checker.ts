import type { Entry, NodeId } from '../core/types';

/** A safety property was broken: the simulation stops at once. */
export class SafetyViolation extends Error {
  constructor(
    readonly property: string,
    detail: string,
  ) {
    super(`${property}: ${detail}`);
    this.name = 'SafetyViolation';
  }
}

/** 32-bit FNV-1a-style mixing of a chained hash with one entry. */
export function mixEntry(
  previous: number,
  term: number,
  kind: Entry['kind'],
  data: Uint8Array,
): number {
  let h = (previous ^ 0x811c9dc5) >>> 0;
  h = Math.imul(h ^ term, 0x01000193) >>> 0;
  h = Math.imul(h ^ (kind === 'normal' ? 1 : 2), 0x01000193) >>> 0;
  for (let i = 0; i < data.length; i++) h = Math.imul(h ^ (data[i] ?? 0), 0x01000193) >>> 0;
  return h;
}

/**
 * Log Matching (§3.5): if two logs contain an entry with the same index and term, the logs are
 * identical in all entries up through that index. Checked incrementally: every node's log is
 * summarised by a chained hash per index, and a registry maps (index, term) to the prefix hash
 * the first node to hold it had; any other node holding (index, term) must have the same.
 */
export class LogMatchingChecker {
  private readonly registry = new Map<string, number>();
  private readonly logs = new Map<NodeId, { base: number; hashes: number[] }>();

  /** The node's log was replaced (restart, snapshot): recompute from its contents. */
  reset(
    node: NodeId,
    snapshotIndex: number,
    snapshotTerm: number,
    entries: readonly Entry[],
  ): void {
    let baseHash = 0;
    if (snapshotIndex > 0) {
      const known = this.registry.get(`${snapshotIndex}:${snapshotTerm}`);
      if (known === undefined) {
        throw new SafetyViolation(
          'log-matching',
          `node ${node} holds a snapshot at ${snapshotIndex}@${snapshotTerm} no log ever had`,
        );
      }
      baseHash = known;
    }
    this.logs.set(node, { base: snapshotIndex, hashes: [baseHash] });
    this.append(node, entries);
  }

  append(node: NodeId, entries: readonly Entry[]): void {
    const log = this.logs.get(node);
    if (log === undefined) throw new Error(`log matching: unknown node ${node}`);
    for (const entry of entries) {
      const offset = entry.index - log.base;
      if (offset <= 0) continue; // covered by the snapshot
      if (offset > log.hashes.length) {
        throw new SafetyViolation(
          'log-matching',
          `node ${node} appended ${entry.index} after a gap`,
        );
      }
      log.hashes.length = offset;
      const hash = mixEntry(log.hashes[offset - 1] ?? 0, entry.term, entry.kind, entry.data);
      log.hashes.push(hash);
      const key = `${entry.index}:${entry.term}`;
      const known = this.registry.get(key);
      if (known === undefined) this.registry.set(key, hash);
      else if (known !== hash) {
        throw new SafetyViolation(
          'log-matching',
          `node ${node} holds ${key} with a different prefix than another node`,
        );
      }
    }
  }
}
