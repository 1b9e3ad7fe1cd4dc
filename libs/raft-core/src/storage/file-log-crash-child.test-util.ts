/*
 * Child process of file-log-crash.spec.ts: appends entries to a FileLogStorage as fast as it
 * can, from several concurrent "proposers", and reports on stdout every fact that became
 * durable (a sync() that resolved) — until the parent kills it with SIGKILL.
 *
 *   usage: node --import tsx file-log-crash-child.test-util.ts <directory>
 *
 * Output lines (written synchronously: stdout is a pipe, synchronous on Linux):
 *   ready <lastIndex>       opened, continuing after <lastIndex>
 *   ack <index> <term>      entry <index> with <term> is durable
 *   term <term>             hard state term <term> (vote 1) is durable
 *   snapshot <index> <term> snapshot metadata at <index> is durable and the log compacted
 */
import { existsSync } from 'node:fs';
import type { Entry } from '../core/types';
import { CRASH_STORAGE_OPTIONS, crashEntryData } from './file-log-crash-fixture.test-util';
import { FileLogStorage } from './file-log-storage';

async function main(directory: string): Promise<void> {
  const storage = await FileLogStorage.open(directory, CRASH_STORAGE_OPTIONS);
  const out = (line: string): void => {
    process.stdout.write(line + '\n');
  };
  let term = Math.max(storage.initialState().hardState.term, storage.term(storage.lastIndex()), 1);
  storage.setHardState({ term, vote: 1, commit: storage.initialState().hardState.commit });
  await storage.sync();
  out(`ready ${storage.lastIndex()}`);

  let appended = 0;
  const proposer = async (): Promise<void> => {
    for (;;) {
      appended++;
      if (appended % 150 === 0) {
        // A new term, as after an election: must be durable before entries of that term.
        term++;
        storage.setHardState({ term, vote: 1, commit: storage.lastIndex() });
        await storage.sync();
        out(`term ${term}`);
      }
      if (appended % 400 === 0) {
        const index = storage.lastIndex() - 50;
        if (index > storage.snapshotMeta().index) {
          const meta = { index, term: storage.term(index), conf: { voters: [1], learners: [] } };
          await storage.applySnapshot(meta);
          out(`snapshot ${meta.index} ${meta.term}`);
        }
      }
      const index = storage.lastIndex() + 1;
      const entry: Entry = { index, term, kind: 'normal', data: crashEntryData(index, term) };
      storage.append([entry]);
      storage.setHardState({ term, vote: 1, commit: index });
      await storage.sync();
      out(`ack ${index} ${entry.term}`);
    }
  };
  await Promise.all(Array.from({ length: 8 }, proposer));
}

const directory = process.argv[2];
// The parent creates the directory: refusing any other path keeps a mistaken invocation from
// filling an arbitrary folder with a log.
if (directory === undefined || !existsSync(directory)) {
  process.stderr.write('usage: file-log-crash-child.test-util.ts <directory>\n');
  process.exit(2);
}
main(directory).catch((error: unknown) => {
  process.stderr.write(`${String((error as Error).stack ?? error)}\n`);
  process.exit(1);
});
