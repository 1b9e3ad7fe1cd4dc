-- AlterTable
-- The Raft index of the last full backup written (in the current generation): dead-lettered
-- jobs above it left a gap that only a full resync repairs.
ALTER TABLE "backup_state" ADD COLUMN     "full_backup_index" BIGINT NOT NULL DEFAULT 0;
