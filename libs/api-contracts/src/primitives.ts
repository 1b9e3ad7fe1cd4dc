import { z } from 'zod';

/** Largest 32-bit signed integer: Kafka's ids and epochs are int32. */
export const INT32_MAX = 2_147_483_647;

/** Kafka's topic-name rule: `^[a-zA-Z0-9._-]{1,249}$`, and neither `.` nor `..`. */
export const TOPIC_NAME_PATTERN = /^[a-zA-Z0-9._-]{1,249}$/;
export const MAX_TOPIC_NAME_LENGTH = 249;

export const topicNameSchema = z
  .string()
  .max(MAX_TOPIC_NAME_LENGTH, { error: `must be at most ${MAX_TOPIC_NAME_LENGTH} characters` })
  .regex(TOPIC_NAME_PATTERN, { error: 'may contain only ASCII letters, digits, ".", "_" and "-"' })
  .refine((name) => name !== '.' && name !== '..', { error: 'must not be "." or ".."' });

/** Partitions per topic: at least 1; at most 10,000 in one topic (a sanity bound, documented). */
export const MAX_PARTITIONS_PER_TOPIC = 10_000;
export const partitionCountSchema = z.int().min(1).max(MAX_PARTITIONS_PER_TOPIC);

/** Replication factor: 1..16 by schema; more than the available brokers is a 422 at apply time. */
export const MAX_REPLICATION_FACTOR = 16;
export const replicationFactorSchema = z.int().min(1).max(MAX_REPLICATION_FACTOR);

/** A broker id: a positive int32. */
export const brokerIdSchema = z.int().min(1).max(INT32_MAX);
/** A partition index within its topic. */
export const partitionIndexSchema = z
  .int()
  .min(0)
  .max(MAX_PARTITIONS_PER_TOPIC - 1);
/** A partition's leader: a broker id, or -1 when it has none. */
export const leaderIdSchema = z.union([z.literal(-1), brokerIdSchema]);
/** Epochs and versions are non-negative safe integers. */
export const epochSchema = z.int().min(0);
/** Log offsets are non-negative safe integers (2^53 - 1 at most, far beyond any real log). */
export const offsetSchema = z.int().min(0);
/** A Raft index / metadata version. */
export const versionSchema = z.int().min(0);
export const portSchema = z.int().min(1).max(65_535);

/** A host name or IP literal (no scheme, no port). */
export const hostSchema = z
  .string()
  .min(1)
  .max(253)
  .regex(/^[A-Za-z0-9.:_-]+$/, { error: 'must be a host name or an IP address' });

/** A rack label (`broker.rack` in Kafka). */
export const rackSchema = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9._:-]+$/, {
    error: 'may contain only letters, digits, ".", "_", ":" and "-"',
  });

/** A distinct, non-empty list of broker ids (replicas, ISR). */
export const brokerIdSetSchema = z
  .array(brokerIdSchema)
  .min(1)
  .max(64)
  .refine((ids) => new Set(ids).size === ids.length, { error: 'must not contain duplicates' });

/** An ISO-8601 UTC timestamp as produced by `Date.prototype.toISOString`. */
export const timestampSchema = z.iso.datetime();
