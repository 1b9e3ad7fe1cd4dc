import { z } from 'zod';
import { brokerIdSchema, topicNameSchema, versionSchema } from './primitives';
import { brokerInfoSchema } from './brokers';
import { topicMetadataSchema } from './topics';

/** Longest a long-poll may wait; longer requests are capped, not refused. */
export const MAX_WAIT_MS = 60_000;
export const DEFAULT_WAIT_MS = 30_000;

const queryInt = (schema: z.ZodInt) =>
  z
    .string()
    .regex(/^\d{1,16}$/, { error: 'must be a non-negative integer' })
    .transform(Number)
    .pipe(schema);

/**
 * `GET /metadata?sinceVersion=n&waitMs=30000[&delta=true]`: answers as soon as the version
 * is greater than `sinceVersion`, or at `waitMs` with the same version.
 */
export const metadataQuerySchema = z.strictObject({
  sinceVersion: queryInt(versionSchema).optional(),
  waitMs: queryInt(z.int().min(0))
    .transform((ms) => Math.min(ms, MAX_WAIT_MS))
    .optional(),
  /** Extension: answer with only what changed since `sinceVersion` (see MetadataDelta). */
  delta: z
    .enum(['true', 'false'])
    .transform((v) => v === 'true')
    .optional(),
});
export type MetadataQuery = z.output<typeof metadataQuerySchema>;

/** The full metadata image. */
export const metadataResponseSchema = z.strictObject({
  version: versionSchema,
  brokers: z.array(brokerInfoSchema),
  topics: z.array(topicMetadataSchema),
});
export type MetadataResponse = z.infer<typeof metadataResponseSchema>;

/**
 * What changed between `sinceVersion` and `version` (answer to `delta=true`): changed or new
 * brokers and topics in full, and the names/ids that were removed. When the server no longer
 * knows the changes since `sinceVersion` it answers the full image instead (`full: true`).
 */
export const metadataDeltaSchema = z.strictObject({
  version: versionSchema,
  sinceVersion: versionSchema,
  full: z.boolean(),
  brokers: z.array(brokerInfoSchema),
  topics: z.array(topicMetadataSchema),
  deletedTopics: z.array(topicNameSchema),
  deletedBrokers: z.array(brokerIdSchema),
});
export type MetadataDelta = z.infer<typeof metadataDeltaSchema>;

/** The change notice the leader pushes to brokers that registered a `pushEndpoint`. */
export const metadataChangeNoticeSchema = z.strictObject({
  clusterId: z.string(),
  version: versionSchema,
});
export type MetadataChangeNotice = z.infer<typeof metadataChangeNoticeSchema>;

/** Read consistency of a GET: linearizable (default, ReadIndex) or stale (local state). */
export const readQuerySchema = z.strictObject({
  consistency: z.enum(['linearizable', 'stale']).optional(),
  /** Wait until the local state has reached this version (read-your-writes on any node). */
  minVersion: queryInt(versionSchema).optional(),
});
export type ReadQuery = z.output<typeof readQuerySchema>;

export { queryInt as queryIntegerSchema };
