-- CreateTable
CREATE TABLE "brokers" (
    "broker_id" INTEGER NOT NULL,
    "host" TEXT NOT NULL,
    "port" INTEGER NOT NULL,
    "rack" TEXT,
    "broker_epoch" BIGINT NOT NULL,
    "status" TEXT NOT NULL,
    "push_endpoint" TEXT,
    "last_heartbeat_at" TIMESTAMPTZ(6),
    "registered_at" TIMESTAMPTZ(6) NOT NULL,
    "raft_index" BIGINT NOT NULL,
    "backed_up_at" TIMESTAMPTZ(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "brokers_pkey" PRIMARY KEY ("broker_id")
);

-- CreateTable
CREATE TABLE "broker_tombstones" (
    "broker_id" INTEGER NOT NULL,
    "deleted_at_index" BIGINT NOT NULL,
    "backed_up_at" TIMESTAMPTZ(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "broker_tombstones_pkey" PRIMARY KEY ("broker_id")
);

-- CreateTable
CREATE TABLE "topics" (
    "name" TEXT NOT NULL,
    "topic_id" UUID NOT NULL,
    "partition_count" INTEGER NOT NULL,
    "replication_factor" INTEGER NOT NULL,
    "config" JSONB NOT NULL,
    "created_at" TIMESTAMPTZ(6) NOT NULL,
    "raft_index" BIGINT NOT NULL,
    "backed_up_at" TIMESTAMPTZ(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "topics_pkey" PRIMARY KEY ("name")
);

-- CreateTable
CREATE TABLE "topic_tombstones" (
    "topic_name" TEXT NOT NULL,
    "topic_id" UUID NOT NULL,
    "deleted_at_index" BIGINT NOT NULL,
    "backed_up_at" TIMESTAMPTZ(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "topic_tombstones_pkey" PRIMARY KEY ("topic_name")
);

-- CreateTable
CREATE TABLE "partitions" (
    "id" BIGSERIAL NOT NULL,
    "topic_name" TEXT NOT NULL,
    "topic_id" UUID NOT NULL,
    "partition_id" INTEGER NOT NULL,
    "leader_id" INTEGER NOT NULL,
    "replica_ids" INTEGER[],
    "isr_ids" INTEGER[],
    "start_offset" BIGINT NOT NULL DEFAULT 0,
    "end_offset" BIGINT NOT NULL DEFAULT 0,
    "leader_epoch" INTEGER NOT NULL DEFAULT 0,
    "partition_epoch" INTEGER NOT NULL DEFAULT 0,
    "last_updated_at" TIMESTAMPTZ(6) NOT NULL,
    "raft_index" BIGINT NOT NULL,
    "backed_up_at" TIMESTAMPTZ(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "partitions_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "backup_state" (
    "id" INTEGER NOT NULL DEFAULT 1,
    "cluster_id" TEXT NOT NULL,
    "backed_up_index" BIGINT NOT NULL,
    "updated_at" TIMESTAMPTZ(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "backup_state_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "topics_topic_id_key" ON "topics"("topic_id");

-- CreateIndex
CREATE UNIQUE INDEX "partitions_topic_name_partition_id_key" ON "partitions"("topic_name", "partition_id");
