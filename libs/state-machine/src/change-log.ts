/**
 * A bounded log of what each applied command changed, for `delta(sinceVersion)`.
 * Not replicated state: a node that restored a snapshot starts with an empty log whose
 * `floor` is the snapshot's version, so it answers `full` for older `sinceVersion`s.
 */
export interface ChangeLogOptions {
  /** Most versions kept. Default 10,000. */
  readonly maxEntries: number;
  /**
   * Most topic names, partition indexes and broker ids kept over all versions.
   * Default 1,000,000.
   */
  readonly maxItems: number;
}

export const DEFAULT_CHANGE_LOG_OPTIONS: ChangeLogOptions = Object.freeze({
  maxEntries: 10_000,
  maxItems: 1_000_000,
});

interface ChangeEntry {
  readonly version: number;
  /** Topics created, changed or deleted at this version. */
  readonly topics: readonly string[];
  /** Partitions changed at this version, by topic (`'all'`: the topic is new). */
  readonly partitions: readonly (readonly [string, readonly number[] | 'all'])[];
  /** Brokers registered, changed or removed at this version. */
  readonly brokers: readonly number[];
  /** Topics deleted at this version: [name, topicId]. */
  readonly deleted: readonly (readonly [string, string])[];
}

/** What changed after some version: names and ids, with no order. */
export interface ChangedSince {
  /** Topics whose row or partitions changed, or that were deleted. */
  readonly topics: ReadonlySet<string>;
  /**
   * The partitions that changed, by topic: indexes, or `'all'` when the topic was created (or
   * re-created) since then. A topic of `topics` missing here changed only its own row.
   */
  readonly partitions: ReadonlyMap<string, ReadonlySet<number> | 'all'>;
  readonly brokers: ReadonlySet<number>;
  /** Every topic incarnation deleted since then, in deletion order. */
  readonly deletedTopics: readonly { readonly name: string; readonly topicId: string }[];
}

export class ChangeLog {
  private entries: ChangeEntry[] = [];
  private head = 0;
  private items = 0;
  /** The log holds every change made after this version. */
  private floor: number;

  constructor(
    private readonly options: ChangeLogOptions,
    startVersion: number,
  ) {
    this.floor = startVersion;
  }

  record(
    version: number,
    topics: ReadonlySet<string>,
    brokers: ReadonlySet<number>,
    deleted: ReadonlyMap<string, string> = new Map(),
    partitions: ReadonlyMap<string, ReadonlySet<number> | 'all'> = new Map(),
  ): void {
    if (topics.size === 0 && brokers.size === 0) return;
    let partitionItems = 0;
    const changedPartitions: (readonly [string, readonly number[] | 'all'])[] = [];
    for (const [name, indexes] of partitions) {
      if (indexes === 'all') {
        changedPartitions.push([name, 'all']);
      } else {
        changedPartitions.push([name, [...indexes]]);
        partitionItems += indexes.size;
      }
    }
    this.entries.push({
      version,
      topics: [...topics],
      partitions: changedPartitions,
      brokers: [...brokers],
      deleted: [...deleted],
    });
    this.items += topics.size + brokers.size + partitionItems;
    while (
      this.entries.length - this.head > this.options.maxEntries ||
      (this.items > this.options.maxItems && this.entries.length - this.head > 0)
    ) {
      const evicted = this.entries[this.head] as ChangeEntry;
      this.entries[this.head] = undefined as unknown as ChangeEntry;
      this.head++;
      this.items -= evicted.topics.length + evicted.brokers.length + partitionItemsOf(evicted);
      this.floor = evicted.version;
    }
    if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
  }

  /**
   * Everything changed at versions greater than `sinceVersion`, or `undefined` when the log no
   * longer reaches back that far. O(log entries + answer).
   */
  changedSince(sinceVersion: number): ChangedSince | undefined {
    if (sinceVersion < this.floor) return undefined;
    let low = this.head;
    let high = this.entries.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if ((this.entries[mid] as ChangeEntry).version <= sinceVersion) low = mid + 1;
      else high = mid;
    }
    const topics = new Set<string>();
    const partitions = new Map<string, Set<number> | 'all'>();
    const brokers = new Set<number>();
    const deletedTopics: { name: string; topicId: string }[] = [];
    for (let i = low; i < this.entries.length; i++) {
      const entry = this.entries[i] as ChangeEntry;
      for (const name of entry.topics) topics.add(name);
      for (const [name, indexes] of entry.partitions) {
        const known = partitions.get(name);
        if (known === 'all') continue;
        if (indexes === 'all') partitions.set(name, 'all');
        else if (known === undefined) partitions.set(name, new Set(indexes));
        else for (const index of indexes) known.add(index);
      }
      for (const id of entry.brokers) brokers.add(id);
      for (const [name, topicId] of entry.deleted) deletedTopics.push({ name, topicId });
    }
    return { topics, partitions, brokers, deletedTopics };
  }
}

function partitionItemsOf(entry: ChangeEntry): number {
  let items = 0;
  for (const [, indexes] of entry.partitions) if (indexes !== 'all') items += indexes.length;
  return items;
}
