import type { BackupBatch } from '@dmq/persistence-prisma';
import type { BackupChanges, BackupRows } from '@dmq/state-machine';

/** Turns the state machine's changed rows into a backup job. */
export function toBatch(changes: BackupChanges | (BackupRows & { full: true })): BackupBatch {
  return {
    raftIndex: changes.version,
    ...(changes.generation > 0 ? { generation: changes.generation } : {}),
    brokers: changes.brokers,
    topics: changes.topics,
    // Rows made from the live state always carry their topic's incarnation id.
    partitions: changes.partitions.map((row) => {
      if (row.topicId === undefined)
        throw new Error(`partition row ${row.topicName}/${row.partitionId} has no topicId`);
      return { ...row, topicId: row.topicId };
    }),
    ...('deletedTopics' in changes
      ? { deletedTopics: changes.deletedTopics, deletedBrokerIds: changes.deletedBrokers }
      : {}),
    ...(changes.full ? { full: true } : {}),
  };
}
