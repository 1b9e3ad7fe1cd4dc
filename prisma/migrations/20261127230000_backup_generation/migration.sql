-- AlterTable
-- The lineage of Raft indices the backup rows belong to: a cluster restored from this backup
-- counts its indices from 1 again under the next generation (see BackupWriter).
ALTER TABLE "backup_state" ADD COLUMN     "generation" INTEGER NOT NULL DEFAULT 0;
