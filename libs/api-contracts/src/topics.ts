import { z } from 'zod';
import {
  brokerIdSchema,
  epochSchema,
  leaderIdSchema,
  offsetSchema,
  partitionCountSchema,
  partitionIndexSchema,
  replicationFactorSchema,
  timestampSchema,
  topicNameSchema,
} from './primitives';
import { topicConfigSchema } from './topic-config';

/** `POST /topics` */
export const createTopicRequestSchema = z.strictObject({
  name: topicNameSchema,
  partitions: partitionCountSchema,
  replicationFactor: replicationFactorSchema,
  config: topicConfigSchema.default({}),
});
export type CreateTopicRequest = z.input<typeof createTopicRequestSchema>;
export type CreateTopicCommandInput = z.output<typeof createTopicRequestSchema>;

/** `PUT /topics/{name}/config`: replaces the whole config. */
export const updateTopicConfigRequestSchema = z.strictObject({
  config: topicConfigSchema,
});
export type UpdateTopicConfigRequest = z.infer<typeof updateTopicConfigRequestSchema>;

/** One partition as every answer shows it. */
export const partitionInfoSchema = z.strictObject({
  topic: topicNameSchema,
  partition: partitionIndexSchema,
  /** Broker id of the partition leader, or -1 when it has none. */
  leader: leaderIdSchema,
  replicas: z.array(brokerIdSchema),
  isr: z.array(brokerIdSchema),
  /** Bumped on every leader change. */
  leaderEpoch: epochSchema,
  /** Bumped on every change of the partition (leader, ISR, replicas). */
  partitionEpoch: epochSchema,
  startOffset: offsetSchema,
  endOffset: offsetSchema,
});
export type PartitionInfo = z.infer<typeof partitionInfoSchema>;

export const topicMetadataSchema = z.strictObject({
  name: topicNameSchema,
  /** Stable id (UUID text), distinct for a topic re-created under the same name. */
  topicId: z.uuid(),
  replicationFactor: replicationFactorSchema,
  config: z.record(z.string(), z.string()),
  partitions: z.array(partitionInfoSchema),
  createdAt: timestampSchema,
});
export type TopicMetadata = z.infer<typeof topicMetadataSchema>;

export const topicListSchema = z.strictObject({ topics: z.array(topicMetadataSchema) });
export type TopicList = z.infer<typeof topicListSchema>;

export const partitionListSchema = z.strictObject({ partitions: z.array(partitionInfoSchema) });
export type PartitionList = z.infer<typeof partitionListSchema>;

/** `POST /topics/{name}/partitions/{p}/state` (AlterPartition, from the partition leader). */
export const alterPartitionRequestSchema = z.strictObject({
  brokerId: brokerIdSchema,
  brokerEpoch: epochSchema,
  leaderEpoch: epochSchema,
  isr: z
    .array(brokerIdSchema)
    .min(1)
    .max(64)
    .refine((ids) => new Set(ids).size === ids.length, { error: 'must not contain duplicates' }),
});
export type AlterPartitionRequest = z.infer<typeof alterPartitionRequestSchema>;

/** Path parameters of the topic routes. */
export const topicPathSchema = z.strictObject({ name: topicNameSchema });
export const partitionPathSchema = z.strictObject({
  name: topicNameSchema,
  partition: z.coerce.number().pipe(partitionIndexSchema),
});
