import { z } from 'zod';
import {
  brokerIdSchema,
  epochSchema,
  hostSchema,
  offsetSchema,
  partitionIndexSchema,
  portSchema,
  rackSchema,
  timestampSchema,
  topicNameSchema,
  versionSchema,
} from './primitives';

/** Where the leader pushes change notices to a broker (optional; http or https). */
export const pushEndpointSchema = z
  .url({ protocol: /^https?$/, error: 'must be an http(s) URL' })
  .max(2048);

/** `POST /brokers` */
export const registerBrokerRequestSchema = z.strictObject({
  brokerId: brokerIdSchema,
  host: hostSchema,
  port: portSchema,
  rack: rackSchema.optional(),
  pushEndpoint: pushEndpointSchema.optional(),
});
export type RegisterBrokerRequest = z.infer<typeof registerBrokerRequestSchema>;

export const registerBrokerResponseSchema = z.strictObject({
  brokerId: brokerIdSchema,
  /** New and larger on every registration of this broker id. */
  brokerEpoch: epochSchema,
});
export type RegisterBrokerResponse = z.infer<typeof registerBrokerResponseSchema>;

/** Offsets a broker reports for a partition it hosts. */
export const partitionOffsetsSchema = z
  .strictObject({
    topic: topicNameSchema,
    partition: partitionIndexSchema,
    startOffset: offsetSchema,
    endOffset: offsetSchema,
  })
  .refine((o) => o.startOffset <= o.endOffset, {
    error: 'startOffset must not exceed endOffset',
    path: ['startOffset'],
  });
export type PartitionOffsets = z.infer<typeof partitionOffsetsSchema>;

/** Most partitions one heartbeat may report (a broker with more sends them over several beats). */
export const MAX_OFFSETS_PER_HEARTBEAT = 10_000;

/** `POST /brokers/{id}/heartbeat` */
export const heartbeatRequestSchema = z.strictObject({
  brokerEpoch: epochSchema,
  offsets: z.array(partitionOffsetsSchema).max(MAX_OFFSETS_PER_HEARTBEAT).optional(),
});
export type HeartbeatRequest = z.infer<typeof heartbeatRequestSchema>;

export const brokerStatusSchema = z.enum(['ONLINE', 'FENCED']);
export type BrokerStatus = z.infer<typeof brokerStatusSchema>;

export const heartbeatResponseSchema = z.strictObject({
  status: brokerStatusSchema,
  metadataVersion: versionSchema,
});
export type HeartbeatResponse = z.infer<typeof heartbeatResponseSchema>;

export const brokerInfoSchema = z.strictObject({
  brokerId: brokerIdSchema,
  host: hostSchema,
  port: portSchema,
  rack: rackSchema.nullable(),
  brokerEpoch: epochSchema,
  status: brokerStatusSchema,
  /** Time of the last heartbeat the cluster committed, or null before the first. */
  lastHeartbeatAt: timestampSchema.nullable(),
  pushEndpoint: pushEndpointSchema.nullable(),
});
export type BrokerInfo = z.infer<typeof brokerInfoSchema>;

export const brokerListSchema = z.strictObject({ brokers: z.array(brokerInfoSchema) });
export type BrokerList = z.infer<typeof brokerListSchema>;

export const brokerPathSchema = z.strictObject({ id: z.coerce.number().pipe(brokerIdSchema) });
