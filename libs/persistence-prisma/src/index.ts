// Public API of @dmq/persistence-prisma: the PostgreSQL disaster-recovery backup of the
// metadata (never the source of truth). Nothing else of this library may be imported.
export type { PersistenceErrorCode } from './errors';
export { PersistenceError, isPersistenceError } from './errors';
export type { Logger } from './logger';
export { silentLogger } from './logger';
export type { LocalMigration, MigrateOptions, MigrateResult } from './migrations/migrate';
export {
  DEFAULT_MIGRATIONS_DIR,
  PRISMA_MIGRATE_ADVISORY_LOCK_KEY,
  migrate,
  migrationChecksum,
  readMigrations,
  scriptMatchesChecksum,
} from './migrations/migrate';
export type { BackupPrismaClient, CreatePrismaClientOptions } from './client/create-prisma-client';
export { createPrismaClient } from './client/create-prisma-client';
export type { BackupBatch, BrokerRow, DeletedTopic, PartitionRow, TopicRow } from './backup/rows';
export type {
  BackupStateRow,
  BackupWriteResult,
  BackupWriterOptions,
} from './backup/backup-writer';
export { BACKUP_WRITE_LOCK_KEY, BackupWriter } from './backup/backup-writer';
export { validateBackupBatch } from './backup/backup-writer';
export type { BackupContents } from './backup/backup-reader';
export { BackupReader } from './backup/backup-reader';
export type { BackupQueueHealth, BackupQueueOptions, DeadLetter } from './queue/backup-queue';
export { BackupQueue, DEFAULT_BACKUP_QUEUE_NAME } from './queue/backup-queue';
export type { BackupBatchWriter, BackupWorkerOptions } from './queue/backup-worker';
export { BackupWorker } from './queue/backup-worker';
