import { z } from 'zod';
import { INT32_MAX, versionSchema } from './primitives';

/** A metadata node id: a positive integer. */
export const nodeIdSchema = z.int().min(1).max(INT32_MAX);

/** A peer address `host:port` (IPv6 literals in brackets: `[::1]:9091`). */
export const peerAddressSchema = z
  .string()
  .max(300)
  .regex(/^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, { error: 'must be host:port' })
  .refine(
    (a) => {
      const port = Number(a.slice(a.lastIndexOf(':') + 1));
      return port >= 1 && port <= 65_535;
    },
    { error: 'port must be 1..65535' },
  );

export const raftRoleSchema = z.enum(['leader', 'follower', 'candidate', 'pre-candidate']);
export type RaftRole = z.infer<typeof raftRoleSchema>;

export const clusterMemberSchema = z.strictObject({
  id: nodeIdSchema,
  address: peerAddressSchema,
  voter: z.boolean(),
  /** Highest log index known replicated on this member (leader's view); null elsewhere. */
  matchIndex: versionSchema.nullable(),
  /** Milliseconds since the leader last heard from this member; null when unknown. */
  lastContactMs: z.int().min(0).nullable(),
});
export type ClusterMember = z.infer<typeof clusterMemberSchema>;

export const backupStatusSchema = z.strictObject({
  enabled: z.boolean(),
  /** `off` (DMQ_BACKUP=off), `idle`/`active` (leader, healthy), `degraded` (Redis or PostgreSQL unreachable), `follower` (not this node's job). */
  status: z.enum(['off', 'idle', 'active', 'degraded', 'follower']),
  backedUpIndex: versionSchema.nullable(),
  lagEntries: z.int().min(0).nullable(),
  lagMs: z.int().min(0).nullable(),
});
export type BackupStatus = z.infer<typeof backupStatusSchema>;

/** `GET /cluster` */
export const clusterStatusSchema = z.strictObject({
  clusterId: z.string(),
  nodeId: nodeIdSchema,
  role: raftRoleSchema,
  term: versionSchema,
  leaderId: nodeIdSchema.nullable(),
  commitIndex: versionSchema,
  appliedIndex: versionSchema,
  snapshotIndex: versionSchema,
  members: z.array(clusterMemberSchema),
  backup: backupStatusSchema,
});
export type ClusterStatus = z.infer<typeof clusterStatusSchema>;

/** `POST /cluster/leadership-transfer` */
export const leadershipTransferRequestSchema = z.strictObject({
  targetId: nodeIdSchema.optional(),
});
export type LeadershipTransferRequest = z.infer<typeof leadershipTransferRequestSchema>;

export const leadershipTransferResponseSchema = z.strictObject({
  leaderId: nodeIdSchema,
  term: versionSchema,
});
export type LeadershipTransferResponse = z.infer<typeof leadershipTransferResponseSchema>;

/** `POST /cluster/snapshot` */
export const snapshotResponseSchema = z.strictObject({
  index: versionSchema,
  term: versionSchema,
  bytes: z.int().min(0),
});
export type SnapshotResponse = z.infer<typeof snapshotResponseSchema>;

/** `POST /cluster/members` */
export const addMemberRequestSchema = z.strictObject({
  id: nodeIdSchema,
  address: peerAddressSchema,
});
export type AddMemberRequest = z.infer<typeof addMemberRequestSchema>;

export const membersResponseSchema = z.strictObject({
  members: z.array(clusterMemberSchema),
});
export type MembersResponse = z.infer<typeof membersResponseSchema>;

/** `POST /backup/resync` */
export const backupResyncResponseSchema = z.strictObject({
  /** The Raft index of the state that was enqueued. */
  index: versionSchema,
  brokers: z.int().min(0),
  topics: z.int().min(0),
  partitions: z.int().min(0),
});
export type BackupResyncResponse = z.infer<typeof backupResyncResponseSchema>;

/** One dead-lettered backup job: it failed on every attempt; the reason is the last error. */
export const backupDeadLetterSchema = z.strictObject({
  jobId: z.string(),
  /** The Raft index of the state the job carried. */
  raftIndex: versionSchema,
  /** The backup generation of the cluster that made it (see docs/api.md). */
  generation: z.int().min(0),
  /** Whether it was a full backup. */
  full: z.boolean(),
  failedReason: z.string(),
  attemptsMade: z.int().min(0),
  /** ISO-8601, or null when BullMQ did not record it. */
  failedAt: z.string().nullable(),
});
export type BackupDeadLetter = z.infer<typeof backupDeadLetterSchema>;

/** `GET /backup/dead-letters` (an extension of the contract, see docs/api.md). */
export const backupDeadLettersResponseSchema = z.strictObject({
  /** Dead letters held in the queue. */
  count: z.int().min(0),
  /** The newest ones, newest first, at most `limit`. */
  deadLetters: z.array(backupDeadLetterSchema),
});
export type BackupDeadLettersResponse = z.infer<typeof backupDeadLettersResponseSchema>;

/** `GET /healthz`, `GET /readyz` */
export const healthResponseSchema = z.strictObject({
  status: z.enum(['ok', 'not-ready']),
  reason: z.string().optional(),
});
export type HealthResponse = z.infer<typeof healthResponseSchema>;
