import { z } from 'zod';
import {
  brokerIdSchema,
  brokerIdSetSchema,
  brokerStatusSchema,
  epochSchema,
  hostSchema,
  idempotencyKeySchema,
  leaderIdSchema,
  MAX_OFFSETS_PER_HEARTBEAT,
  offsetSchema,
  partitionCountSchema,
  partitionIndexSchema,
  partitionOffsetsSchema,
  portSchema,
  pushEndpointSchema,
  rackSchema,
  replicationFactorSchema,
  topicConfigSchema,
  topicNameSchema,
  versionSchema,
} from '@dmq/api-contracts';
import { CommandDecodeError } from './errors';

/**
 * The commands the Raft log carries, their validation and their wire encoding.
 *
 * Wire format (version 1): UTF-8 JSON of the command object with an extra `"v": 1`, e.g.
 * `{"v":1,"type":"CreateTopic","timestampMs":1700000000000,"name":"orders",…}`. A later
 * release that changes a command's shape bumps `v` and keeps decoding version 1, so a log
 * written by an older release still replays. Unknown fields are refused (a newer node's
 * command is never half-understood by an older one).
 *
 * Every command carries `timestampMs`: the proposing leader's clock, the only time the state
 * machine knows. It may optionally carry `idempotency`: the `Idempotency-Key` of the HTTP
 * request and a hash of the request (method, path, body) computed by the app.
 */
export const COMMAND_FORMAT_VERSION = 1;

/** Millisecond timestamps: non-negative safe integers. */
const timestampMsSchema = z.int().min(0);

/** The idempotency part of a command (see {@link IdempotencyOptions}). */
export const commandIdempotencySchema = z.strictObject({
  key: idempotencyKeySchema,
  /** The app's digest of the request (e.g. sha-256 hex of method, path and body). */
  requestHash: z.string().min(1).max(256),
});
export type CommandIdempotency = z.infer<typeof commandIdempotencySchema>;

const base = {
  timestampMs: timestampMsSchema,
  idempotency: commandIdempotencySchema.optional(),
};

const topicPartitionSchema = z.strictObject({
  topic: topicNameSchema,
  partition: partitionIndexSchema,
});
export type TopicPartition = z.infer<typeof topicPartitionSchema>;

/**
 * Registers a broker, or re-registers it (a restart). Each registration gets a new broker
 * epoch, larger than every epoch issued before (the Raft index of the entry, as in KRaft,
 * unless a restored backup holds larger ones). A re-registration of an unfenced broker ends
 * the previous incarnation first: it is fenced (leaves the ISRs, loses its leaderships).
 * The broker is ONLINE afterwards unless `fenced: true` is given.
 */
export const registerBrokerCommandSchema = z.strictObject({
  type: z.literal('RegisterBroker'),
  ...base,
  brokerId: brokerIdSchema,
  host: hostSchema,
  port: portSchema,
  rack: rackSchema.optional(),
  pushEndpoint: pushEndpointSchema.optional(),
  fenced: z.boolean().optional(),
});

/**
 * A broker's heartbeat as far as it is replicated: the offsets it reports for partitions it
 * leads. Liveness itself is kept leader-local by the app (as KRaft does); only heartbeats that
 * carry offsets need to be proposed. Offsets of partitions the broker does not lead (any
 * more) are ignored, not refused.
 */
export const brokerHeartbeatCommandSchema = z.strictObject({
  type: z.literal('BrokerHeartbeat'),
  ...base,
  brokerId: brokerIdSchema,
  brokerEpoch: epochSchema,
  offsets: z.array(partitionOffsetsSchema).max(MAX_OFFSETS_PER_HEARTBEAT).optional(),
});

/**
 * Fences a broker whose session timed out (proposed by the leader). With `brokerEpoch`, a
 * fence aimed at an older incarnation is refused as stale.
 */
export const fenceBrokerCommandSchema = z.strictObject({
  type: z.literal('FenceBroker'),
  ...base,
  brokerId: brokerIdSchema,
  brokerEpoch: epochSchema.optional(),
});

/** Unfences a broker that heartbeats again with its current epoch (proposed by the leader). */
export const unfenceBrokerCommandSchema = z.strictObject({
  type: z.literal('UnfenceBroker'),
  ...base,
  brokerId: brokerIdSchema,
  brokerEpoch: epochSchema,
});

/** A broker asks to shut down: its leaderships move away, it leaves every ISR, it is fenced. */
export const controlledShutdownCommandSchema = z.strictObject({
  type: z.literal('ControlledShutdown'),
  ...base,
  brokerId: brokerIdSchema,
  brokerEpoch: epochSchema,
});

/**
 * `DELETE /brokers/{id}`: a controlled shutdown, then the broker is removed, and with it from
 * every replica list (those partitions are under-replicated until reassigned).
 */
export const unregisterBrokerCommandSchema = z.strictObject({
  type: z.literal('UnregisterBroker'),
  ...base,
  brokerId: brokerIdSchema,
  brokerEpoch: epochSchema.optional(),
});

/** Creates a topic and places its partitions: one atomic command, never a topic without partitions. */
export const createTopicCommandSchema = z.strictObject({
  type: z.literal('CreateTopic'),
  ...base,
  name: topicNameSchema,
  partitions: partitionCountSchema,
  replicationFactor: replicationFactorSchema,
  config: topicConfigSchema,
});

export const deleteTopicCommandSchema = z.strictObject({
  type: z.literal('DeleteTopic'),
  ...base,
  name: topicNameSchema,
  /** When given, the delete applies only to this incarnation of the name. */
  topicId: z.uuid().optional(),
});

/** Replaces the topic's config. */
export const updateTopicConfigCommandSchema = z.strictObject({
  type: z.literal('UpdateTopicConfig'),
  ...base,
  name: topicNameSchema,
  config: topicConfigSchema,
});

/** An ISR change requested by the partition leader, fenced by broker epoch and leader epoch. */
export const alterPartitionCommandSchema = z.strictObject({
  type: z.literal('AlterPartition'),
  ...base,
  topic: topicNameSchema,
  partition: partitionIndexSchema,
  brokerId: brokerIdSchema,
  brokerEpoch: epochSchema,
  leaderEpoch: epochSchema,
  isr: brokerIdSetSchema,
});

/**
 * Leader election on request. `preferred`: move leadership to the first replica when it is in
 * the ISR and unfenced. `unclean`: give leaderless partitions a leader, from the ISR when one
 * is unfenced, otherwise any unfenced replica (data may be lost). Without `partitions`, every
 * partition of the cluster.
 */
export const electLeadersCommandSchema = z.strictObject({
  type: z.literal('ElectLeaders'),
  ...base,
  electionType: z.enum(['preferred', 'unclean']),
  partitions: z.array(topicPartitionSchema).max(100_000).optional(),
});

/**
 * Starts (or cancels, with `replicas: null`) the reassignment of partitions to new replica
 * lists, as in KIP-455: the partition replicates to the union of old and new replicas until
 * every target replica is in the ISR, then the old ones are dropped.
 */
export const reassignPartitionsCommandSchema = z.strictObject({
  type: z.literal('ReassignPartitions'),
  ...base,
  partitions: z
    .array(
      z.strictObject({
        topic: topicNameSchema,
        partition: partitionIndexSchema,
        replicas: brokerIdSetSchema.nullable(),
      }),
    )
    .min(1)
    .max(100_000),
});

const msOrNull = timestampMsSchema.nullable();

/** A row of the `brokers` backup table (see `backup-rows.ts`). */
export const brokerRowSchema = z.strictObject({
  brokerId: brokerIdSchema,
  host: hostSchema,
  port: portSchema,
  rack: rackSchema.nullable(),
  brokerEpoch: epochSchema,
  status: brokerStatusSchema,
  pushEndpoint: pushEndpointSchema.nullable(),
  lastHeartbeatAtMs: msOrNull,
  registeredAtMs: timestampMsSchema,
});

/** A row of the `topics` backup table. */
export const topicRowSchema = z.strictObject({
  name: topicNameSchema,
  topicId: z.uuid(),
  replicationFactor: replicationFactorSchema,
  partitionCount: partitionCountSchema,
  config: topicConfigSchema,
  createdAtMs: timestampMsSchema,
});

/** A row of the `partitions` backup table (the seed's PartitionEntity, plus partitionEpoch). */
export const partitionRowSchema = z.strictObject({
  topicName: topicNameSchema,
  /** The topic incarnation the partition belongs to (optional when reading old rows). */
  topicId: z.uuid().optional(),
  partitionId: partitionIndexSchema,
  leaderId: leaderIdSchema,
  replicaIds: z.array(brokerIdSchema).max(64),
  isrIds: z.array(brokerIdSchema).max(64),
  startOffset: offsetSchema,
  endOffset: offsetSchema,
  leaderEpoch: epochSchema,
  partitionEpoch: epochSchema,
  lastUpdatedAtMs: timestampMsSchema,
});

/**
 * Disaster recovery: rebuilds the whole state from backup rows in one command. Valid only on
 * an empty state (no broker, no topic). See `restoreCommandFromBackupRows`.
 */
export const restoreFromBackupCommandSchema = z.strictObject({
  type: z.literal('RestoreFromBackup'),
  ...base,
  /** The metadata version the rows were backed up at. */
  sourceVersion: versionSchema,
  /**
   * The backup generation of the restored cluster: one more than the backup's. Absent in
   * commands written before generations existed: 1.
   */
  backupGeneration: z
    .number()
    .int()
    .min(1)
    .max(2 ** 31 - 1)
    .optional(),
  /**
   * One part of a restore split into several commands (each a small Raft entry, quick to
   * apply): part 0 on an empty state, with every broker; the others, in order, with more
   * topics. Until the last one the state is restoring and refuses every other command.
   * Absent: the whole restore in one command.
   */
  part: z
    .strictObject({ index: z.int().min(0), count: z.int().min(1).max(1_000_000) })
    .refine((p) => p.index < p.count, { error: 'part.index must be below part.count' })
    .optional(),
  brokers: z.array(brokerRowSchema),
  topics: z.array(topicRowSchema),
  partitions: z.array(partitionRowSchema),
});

/**
 * Discards a restore from backup left unfinished (its node lost leadership between two
 * parts): the state becomes empty again, and the restore can start over. Valid only while
 * a restore is in progress.
 */
export const abortRestoreFromBackupCommandSchema = z.strictObject({
  type: z.literal('AbortRestoreFromBackup'),
  ...base,
});

/** Every command, discriminated on `type`. */
export const commandSchema = z.discriminatedUnion('type', [
  registerBrokerCommandSchema,
  brokerHeartbeatCommandSchema,
  fenceBrokerCommandSchema,
  unfenceBrokerCommandSchema,
  controlledShutdownCommandSchema,
  unregisterBrokerCommandSchema,
  createTopicCommandSchema,
  deleteTopicCommandSchema,
  updateTopicConfigCommandSchema,
  alterPartitionCommandSchema,
  electLeadersCommandSchema,
  reassignPartitionsCommandSchema,
  restoreFromBackupCommandSchema,
  abortRestoreFromBackupCommandSchema,
]);

export type RegisterBrokerCommand = z.infer<typeof registerBrokerCommandSchema>;
export type BrokerHeartbeatCommand = z.infer<typeof brokerHeartbeatCommandSchema>;
export type FenceBrokerCommand = z.infer<typeof fenceBrokerCommandSchema>;
export type UnfenceBrokerCommand = z.infer<typeof unfenceBrokerCommandSchema>;
export type ControlledShutdownCommand = z.infer<typeof controlledShutdownCommandSchema>;
export type UnregisterBrokerCommand = z.infer<typeof unregisterBrokerCommandSchema>;
export type CreateTopicCommand = z.infer<typeof createTopicCommandSchema>;
export type DeleteTopicCommand = z.infer<typeof deleteTopicCommandSchema>;
export type UpdateTopicConfigCommand = z.infer<typeof updateTopicConfigCommandSchema>;
export type AlterPartitionCommand = z.infer<typeof alterPartitionCommandSchema>;
export type ElectLeadersCommand = z.infer<typeof electLeadersCommandSchema>;
export type ReassignPartitionsCommand = z.infer<typeof reassignPartitionsCommandSchema>;
export type RestoreFromBackupCommand = z.infer<typeof restoreFromBackupCommandSchema>;
export type AbortRestoreFromBackupCommand = z.infer<typeof abortRestoreFromBackupCommandSchema>;
export type BrokerRow = z.infer<typeof brokerRowSchema>;
export type TopicRow = z.infer<typeof topicRowSchema>;
export type PartitionRow = z.infer<typeof partitionRowSchema>;

/** Any command. */
export type Command = z.infer<typeof commandSchema>;
/** The name of a command type. */
export type CommandType = Command['type'];

/** The outcome of validating a command object: the normalized command, or why it is invalid. */
export type CommandValidation =
  | { readonly ok: true; readonly command: Command }
  | { readonly ok: false; readonly message: string };

/** Validates a command object (as built by the app or decoded from JSON). */
export function validateCommand(value: unknown): CommandValidation {
  const result = commandSchema.safeParse(value);
  if (result.success) return { ok: true, command: result.data };
  const issues = result.error.issues
    .slice(0, 5)
    .map((issue) => `${issue.path.map(String).join('.') || '(command)'}: ${issue.message}`);
  return { ok: false, message: `invalid command: ${issues.join('; ')}` };
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

/**
 * Encodes a command as the bytes of a Raft entry (wire format version
 * {@link COMMAND_FORMAT_VERSION}). The command is validated first.
 * @throws CommandDecodeError when the command is invalid (so an invalid command is never proposed).
 */
export function encodeCommand(command: Command): Uint8Array {
  const validation = validateCommand(command);
  if (!validation.ok) throw new CommandDecodeError(validation.message);
  return encoder.encode(JSON.stringify({ v: COMMAND_FORMAT_VERSION, ...validation.command }));
}

/**
 * Decodes and validates the bytes of a Raft entry.
 * @throws CommandDecodeError when the bytes are not UTF-8 JSON, carry an unknown format
 * version, or are not a valid command.
 */
export function decodeCommand(bytes: Uint8Array): Command {
  let parsed: unknown;
  try {
    parsed = JSON.parse(decoder.decode(bytes));
  } catch (error) {
    throw new CommandDecodeError(`command is not UTF-8 JSON: ${(error as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new CommandDecodeError('command is not a JSON object');
  }
  const { v, ...rest } = parsed as Record<string, unknown>;
  if (v !== COMMAND_FORMAT_VERSION) {
    throw new CommandDecodeError(
      `unsupported command format version ${JSON.stringify(v)} (this release reads ${COMMAND_FORMAT_VERSION})`,
    );
  }
  const validation = validateCommand(rest);
  if (!validation.ok) throw new CommandDecodeError(validation.message);
  return validation.command;
}
