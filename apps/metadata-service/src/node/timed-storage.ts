import type { LogStorage } from '@dmq/raft-core';

/**
 * Wraps a LogStorage to time every `sync()` (one per group commit) for the fsync latency
 * histogram; everything else is passed through untouched.
 */
export function timedStorage(storage: LogStorage, observe: (seconds: number) => void): LogStorage {
  return {
    initialState: () => storage.initialState(),
    firstIndex: () => storage.firstIndex(),
    lastIndex: () => storage.lastIndex(),
    term: (index) => storage.term(index),
    entries: (lo, hi, maxBytes) => storage.entries(lo, hi, maxBytes),
    snapshotMeta: () => storage.snapshotMeta(),
    append: (entries) => storage.append(entries),
    setHardState: (hardState) => storage.setHardState(hardState),
    applySnapshot: (meta) => storage.applySnapshot(meta),
    close: () => storage.close(),
    async sync() {
      const started = performance.now();
      await storage.sync();
      observe((performance.now() - started) / 1000);
    },
  };
}
