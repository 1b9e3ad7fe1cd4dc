import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { ConfState } from '../core/types';
import { FileLogStorage } from './file-log-storage';
import type { FileLogStorageOptions } from './file-log-storage';
import { describeLogStorageConformance } from './log-storage.conformance.test-util';
import type { LogStorageHarness } from './log-storage.conformance.test-util';
import { MemoryStorage } from './memory-storage';

describeLogStorageConformance('MemoryStorage', () => ({
  create: (conf?: ConfState) =>
    Promise.resolve(new MemoryStorage(conf === undefined ? {} : { conf })),
}));

/** A harness over FileLogStorage in fresh temporary directories. */
function fileHarness(options: FileLogStorageOptions): () => LogStorageHarness {
  return () => {
    const directories: string[] = [];
    const where = new Map<object, string>();
    return {
      async create(conf?: ConfState) {
        const directory = await mkdtemp(path.join(tmpdir(), 'raft-conformance-'));
        directories.push(directory);
        const storage = await FileLogStorage.open(directory, {
          ...options,
          ...(conf === undefined ? {} : { conf }),
        });
        where.set(storage, directory);
        return storage;
      },
      async reopen(storage) {
        const directory = where.get(storage) as string;
        await storage.close();
        const reopened = await FileLogStorage.open(directory, options);
        where.set(reopened, directory);
        return reopened;
      },
      async cleanup() {
        for (const directory of directories) await rm(directory, { recursive: true, force: true });
      },
    };
  };
}

// fsync off: these tests close cleanly, crashes are file-log-crash.spec.ts's business.
describeLogStorageConformance('FileLogStorage', fileHarness({ fsync: false }));
// Tiny segments and no cache: every read goes to disk and most appends roll a segment.
describeLogStorageConformance(
  'FileLogStorage (tiny segments, no cache)',
  fileHarness({ fsync: false, segmentBytes: 100, cacheBytes: 0 }),
);
