import { z } from 'zod';

/**
 * Topic configuration: a bounded map of Kafka-style keys to string values.
 *
 * Only known keys are accepted (as Kafka rejects an unknown topic config name), each with
 * its value checked; adding a key is a contract extension. Values stay strings on the wire,
 * as in Kafka's admin API.
 */
export const MAX_CONFIG_ENTRIES = 32;
export const MAX_CONFIG_VALUE_LENGTH = 1024;

const integerString = (min: number) =>
  z
    .string()
    .regex(/^-?\d{1,19}$/, { error: 'must be an integer' })
    .refine((v) => Number(v) >= min && Number.isSafeInteger(Number(v)), {
      error: `must be an integer >= ${min}`,
    });

const oneOf = (...values: [string, ...string[]]) =>
  z.enum(values, { error: `must be one of ${values.join(', ')}` });

/** Every topic config key DMQ knows, with the rule its value must follow. */
export const TOPIC_CONFIG_RULES = {
  'retention.ms': integerString(-1),
  'retention.bytes': integerString(-1),
  'segment.bytes': integerString(14),
  'segment.ms': integerString(1),
  'cleanup.policy': oneOf('delete', 'compact', 'compact,delete', 'delete,compact'),
  'min.insync.replicas': integerString(1),
  'max.message.bytes': integerString(0),
  'compression.type': oneOf('producer', 'uncompressed', 'gzip', 'snappy', 'lz4', 'zstd'),
  'unclean.leader.election.enable': oneOf('true', 'false'),
  'message.timestamp.type': oneOf('CreateTime', 'LogAppendTime'),
} as const satisfies Record<string, z.ZodType<string>>;

export type TopicConfigKey = keyof typeof TOPIC_CONFIG_RULES;
export const TOPIC_CONFIG_KEYS = Object.keys(TOPIC_CONFIG_RULES) as TopicConfigKey[];

export const topicConfigSchema = z
  .record(z.string(), z.string().max(MAX_CONFIG_VALUE_LENGTH))
  .superRefine((config, ctx) => {
    const keys = Object.keys(config);
    if (keys.length > MAX_CONFIG_ENTRIES) {
      ctx.addIssue({ code: 'custom', message: `at most ${MAX_CONFIG_ENTRIES} entries` });
      return;
    }
    for (const key of keys) {
      const rule = (TOPIC_CONFIG_RULES as Record<string, z.ZodType<string>>)[key];
      if (rule === undefined) {
        ctx.addIssue({
          code: 'custom',
          path: [key],
          message: `unknown topic config "${key}"; known: ${TOPIC_CONFIG_KEYS.join(', ')}`,
        });
        continue;
      }
      const result = rule.safeParse(config[key]);
      if (!result.success) {
        ctx.addIssue({
          code: 'custom',
          path: [key],
          message: result.error.issues[0]?.message ?? 'invalid value',
        });
      }
    }
  });

/** A validated topic config map. */
export type TopicConfig = Record<string, string>;
