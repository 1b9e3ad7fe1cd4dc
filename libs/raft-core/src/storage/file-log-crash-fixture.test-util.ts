/**
 * Shared by file-log-crash.spec.ts and its child process (file-log-crash-child.test-util.ts):
 * the entry contents both sides agree on and the storage options of the child. Kept apart from
 * the child script, which starts working as soon as it is loaded.
 */

/** Deterministic data for an entry, so the parent can check every byte after a crash. */
export function crashEntryData(index: number, term: number): Uint8Array {
  const unit = `${index}/${term};`;
  const length = 40 + (index % 7) * 37;
  return new TextEncoder().encode(unit.repeat(Math.ceil(length / unit.length)).slice(0, length));
}

/** Options the child opens its storage with (small segments: rolls happen often). */
export const CRASH_STORAGE_OPTIONS = {
  segmentBytes: 16 * 1024,
  cacheBytes: 8 * 1024,
  commitPersistInterval: 64,
} as const;
