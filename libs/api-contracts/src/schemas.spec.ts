import type { z } from 'zod';
import {
  addMemberRequestSchema,
  alterPartitionRequestSchema,
  backupDeadLettersResponseSchema,
  backupResyncResponseSchema,
  brokerInfoSchema,
  brokerListSchema,
  brokerPathSchema,
  clusterStatusSchema,
  createTopicRequestSchema,
  errorBodySchema,
  formatIssues,
  healthResponseSchema,
  heartbeatRequestSchema,
  heartbeatResponseSchema,
  idempotencyKeySchema,
  leadershipTransferRequestSchema,
  leadershipTransferResponseSchema,
  membersResponseSchema,
  metadataChangeNoticeSchema,
  metadataDeltaSchema,
  metadataQuerySchema,
  metadataResponseSchema,
  partitionInfoSchema,
  partitionListSchema,
  partitionPathSchema,
  readQuerySchema,
  registerBrokerRequestSchema,
  registerBrokerResponseSchema,
  snapshotResponseSchema,
  topicConfigSchema,
  topicListSchema,
  topicMetadataSchema,
  topicNameSchema,
  topicPathSchema,
  updateTopicConfigRequestSchema,
} from './index';

const partition = {
  topic: 'orders',
  partition: 0,
  leader: 1,
  replicas: [1, 2, 3],
  isr: [1, 2],
  leaderEpoch: 3,
  partitionEpoch: 7,
  startOffset: 0,
  endOffset: 42,
};
const topic = {
  name: 'orders',
  topicId: '0b7f3c2e-9c1a-4d2b-8e1f-3a4b5c6d7e8f',
  replicationFactor: 3,
  config: { 'retention.ms': '604800000' },
  partitions: [partition],
  createdAt: '2026-11-27T10:00:00.000Z',
};
const broker = {
  brokerId: 1,
  host: '10.0.0.5',
  port: 9192,
  rack: 'a',
  brokerEpoch: 12,
  status: 'ONLINE',
  lastHeartbeatAt: '2026-11-27T10:00:01.000Z',
  pushEndpoint: null,
};
const member = { id: 1, address: '127.0.0.1:9091', voter: true, matchIndex: 10, lastContactMs: 3 };

/** Each schema with examples that must parse and examples that must not. */
const cases: Array<{ name: string; schema: z.ZodType; valid: unknown[]; invalid: unknown[] }> = [
  {
    name: 'topic name',
    schema: topicNameSchema,
    valid: ['orders', 'a', 'A.b_c-9', '..a', 'x'.repeat(249)],
    invalid: ['', '.', '..', 'x'.repeat(250), 'has space', 'ümlaut', 'a/b', 7],
  },
  {
    name: 'topic config',
    schema: topicConfigSchema,
    valid: [
      {},
      { 'retention.ms': '-1' },
      { 'cleanup.policy': 'compact,delete', 'min.insync.replicas': '2' },
      { 'unclean.leader.election.enable': 'true' },
    ],
    invalid: [
      { 'retention.ms': 'soon' },
      { 'retention.ms': '-2' },
      { 'cleanup.policy': 'shred' },
      { 'no.such.key': '1' },
      { 'retention.ms': 604800000 },
      { 'segment.bytes': '13' },
    ],
  },
  {
    name: 'CreateTopicRequest',
    schema: createTopicRequestSchema,
    valid: [
      { name: 'orders', partitions: 3, replicationFactor: 3, config: { 'retention.ms': '1' } },
      { name: 'orders', partitions: 1, replicationFactor: 1 },
      { name: 'big', partitions: 10_000, replicationFactor: 16 },
    ],
    invalid: [
      { name: 'orders', partitions: 0, replicationFactor: 1 },
      { name: 'orders', partitions: 10_001, replicationFactor: 1 },
      { name: 'orders', partitions: 1.5, replicationFactor: 1 },
      { name: 'orders', partitions: '3', replicationFactor: 1 },
      { name: 'orders', partitions: 3, replicationFactor: 0 },
      { name: 'orders', partitions: 3, replicationFactor: 17 },
      { name: '..', partitions: 3, replicationFactor: 1 },
      { name: 'orders', partitions: 3, replicationFactor: 1, extra: true },
      { partitions: 3, replicationFactor: 1 },
      null,
      [],
    ],
  },
  {
    name: 'UpdateTopicConfigRequest',
    schema: updateTopicConfigRequestSchema,
    valid: [{ config: {} }, { config: { 'retention.ms': '86400000' } }],
    invalid: [{}, { config: { 'retention.ms': 'x' } }, { config: {}, name: 'x' }],
  },
  {
    name: 'PartitionInfo',
    schema: partitionInfoSchema,
    valid: [partition, { ...partition, leader: -1, isr: [] }],
    invalid: [
      { ...partition, leader: -2 },
      { ...partition, leader: 0 },
      { ...partition, startOffset: -1 },
      { ...partition, extra: 1 },
    ],
  },
  {
    name: 'TopicMetadata',
    schema: topicMetadataSchema,
    valid: [topic, { ...topic, partitions: [] }],
    invalid: [
      { ...topic, topicId: 'not-a-uuid' },
      { ...topic, createdAt: 'yesterday' },
      { ...topic, replicationFactor: 0 },
    ],
  },
  {
    name: 'TopicList / PartitionList',
    schema: topicListSchema,
    valid: [{ topics: [] }, { topics: [topic] }],
    invalid: [{ topics: [{}] }, { items: [] }],
  },
  {
    name: 'PartitionList',
    schema: partitionListSchema,
    valid: [{ partitions: [partition] }],
    invalid: [{ partitions: [{ ...partition, replicas: 'all' }] }],
  },
  {
    name: 'AlterPartitionRequest',
    schema: alterPartitionRequestSchema,
    valid: [{ brokerId: 1, brokerEpoch: 5, leaderEpoch: 2, isr: [1, 2] }],
    invalid: [
      { brokerId: 1, brokerEpoch: 5, leaderEpoch: 2, isr: [] },
      { brokerId: 1, brokerEpoch: 5, leaderEpoch: 2, isr: [1, 1] },
      { brokerId: 1, brokerEpoch: -1, leaderEpoch: 2, isr: [1] },
      { brokerId: 1, leaderEpoch: 2, isr: [1] },
    ],
  },
  {
    name: 'RegisterBrokerRequest',
    schema: registerBrokerRequestSchema,
    valid: [
      { brokerId: 1, host: '10.0.0.5', port: 9192, rack: 'a' },
      { brokerId: 2, host: 'broker-2.dmq.local', port: 1 },
      { brokerId: 3, host: '::1', port: 65535, pushEndpoint: 'http://127.0.0.1:8080/notify' },
    ],
    invalid: [
      { brokerId: 0, host: 'h', port: 1 },
      { brokerId: 1, host: '', port: 1 },
      { brokerId: 1, host: 'h', port: 0 },
      { brokerId: 1, host: 'h', port: 65536 },
      { brokerId: 1, host: 'h h', port: 1 },
      { brokerId: 1, host: 'h', port: 1, pushEndpoint: 'ftp://x/y' },
      { brokerId: 1, host: 'h', port: 1, rack: '' },
      { brokerId: 2_147_483_648, host: 'h', port: 1 },
    ],
  },
  {
    name: 'RegisterBrokerResponse',
    schema: registerBrokerResponseSchema,
    valid: [{ brokerId: 1, brokerEpoch: 0 }],
    invalid: [{ brokerId: 1 }],
  },
  {
    name: 'HeartbeatRequest',
    schema: heartbeatRequestSchema,
    valid: [
      { brokerEpoch: 3 },
      { brokerEpoch: 3, offsets: [{ topic: 'o', partition: 0, startOffset: 0, endOffset: 9 }] },
    ],
    invalid: [
      {},
      { brokerEpoch: 3, offsets: [{ topic: 'o', partition: 0, startOffset: 10, endOffset: 9 }] },
      { brokerEpoch: 3, offsets: [{ topic: 'o', partition: -1, startOffset: 0, endOffset: 0 }] },
    ],
  },
  {
    name: 'HeartbeatResponse',
    schema: heartbeatResponseSchema,
    valid: [
      { status: 'ONLINE', metadataVersion: 4 },
      { status: 'FENCED', metadataVersion: 0 },
    ],
    invalid: [{ status: 'ALIVE', metadataVersion: 4 }],
  },
  {
    name: 'BrokerInfo / BrokerList',
    schema: brokerListSchema,
    valid: [{ brokers: [broker, { ...broker, rack: null, lastHeartbeatAt: null }] }],
    invalid: [{ brokers: [{ ...broker, status: 'UNKNOWN' }] }],
  },
  {
    name: 'BrokerInfo',
    schema: brokerInfoSchema,
    valid: [broker],
    invalid: [{ ...broker, rack: undefined }],
  },
  {
    name: 'metadata query',
    schema: metadataQuerySchema,
    valid: [{}, { sinceVersion: '5', waitMs: '30000' }, { delta: 'true' }],
    invalid: [{ sinceVersion: '-1' }, { waitMs: 'soon' }, { sinceVersion: '1.5' }, { other: '1' }],
  },
  {
    name: 'MetadataResponse',
    schema: metadataResponseSchema,
    valid: [{ version: 9, brokers: [broker], topics: [topic] }],
    invalid: [{ version: -1, brokers: [], topics: [] }],
  },
  {
    name: 'MetadataDelta',
    schema: metadataDeltaSchema,
    valid: [
      {
        version: 9,
        sinceVersion: 5,
        full: false,
        brokers: [],
        topics: [topic],
        deletedTopics: ['old'],
        deletedBrokers: [4],
      },
    ],
    invalid: [{ version: 9, sinceVersion: 5, brokers: [], topics: [] }],
  },
  {
    name: 'MetadataChangeNotice',
    schema: metadataChangeNoticeSchema,
    valid: [{ clusterId: 'c1', version: 3 }],
    invalid: [{ version: 3 }],
  },
  {
    name: 'read query',
    schema: readQuerySchema,
    valid: [{}, { consistency: 'stale' }, { minVersion: '12' }],
    invalid: [{ consistency: 'eventual' }, { minVersion: 'x' }],
  },
  {
    name: 'ClusterStatus',
    schema: clusterStatusSchema,
    valid: [
      {
        clusterId: 'dmq-local',
        nodeId: 1,
        role: 'leader',
        term: 3,
        leaderId: 1,
        commitIndex: 10,
        appliedIndex: 10,
        snapshotIndex: 0,
        members: [member, { ...member, id: 2, matchIndex: null, lastContactMs: null }],
        backup: { enabled: true, status: 'idle', backedUpIndex: 10, lagEntries: 0, lagMs: 0 },
      },
    ],
    invalid: [
      {
        clusterId: 'x',
        nodeId: 1,
        role: 'boss',
        term: 3,
        leaderId: null,
        commitIndex: 0,
        appliedIndex: 0,
        snapshotIndex: 0,
        members: [],
        backup: {
          enabled: false,
          status: 'off',
          backedUpIndex: null,
          lagEntries: null,
          lagMs: null,
        },
      },
    ],
  },
  {
    name: 'LeadershipTransferRequest',
    schema: leadershipTransferRequestSchema,
    valid: [{}, { targetId: 2 }],
    invalid: [{ targetId: 0 }, { target: 2 }],
  },
  {
    name: 'LeadershipTransferResponse',
    schema: leadershipTransferResponseSchema,
    valid: [{ leaderId: 2, term: 5 }],
    invalid: [{ leaderId: 2 }],
  },
  {
    name: 'SnapshotResponse',
    schema: snapshotResponseSchema,
    valid: [{ index: 100, term: 3, bytes: 4096 }],
    invalid: [{ index: 100, term: 3 }],
  },
  {
    name: 'AddMemberRequest',
    schema: addMemberRequestSchema,
    valid: [
      { id: 4, address: '127.0.0.1:9094' },
      { id: 5, address: '[::1]:9095' },
      { id: 6, address: 'meta-6.dmq.local:9096' },
    ],
    invalid: [
      { id: 4, address: '127.0.0.1' },
      { id: 4, address: '127.0.0.1:70000' },
      { id: 0, address: '127.0.0.1:9094' },
      { id: 4, address: 'http://x:1' },
    ],
  },
  {
    name: 'MembersResponse',
    schema: membersResponseSchema,
    valid: [{ members: [member] }],
    invalid: [{ members: [{ ...member, voter: 'yes' }] }],
  },
  {
    name: 'BackupResyncResponse',
    schema: backupResyncResponseSchema,
    valid: [{ index: 5, brokers: 3, topics: 2, partitions: 6 }],
    invalid: [{ index: 5 }],
  },
  {
    name: 'BackupDeadLettersResponse',
    schema: backupDeadLettersResponseSchema,
    valid: [
      { count: 0, deadLetters: [] },
      {
        count: 1,
        deadLetters: [
          {
            jobId: 'idx-7',
            raftIndex: 7,
            generation: 0,
            full: false,
            failedReason: 'persistence/invalid-backup-row: …',
            attemptsMade: 1,
            failedAt: '2026-11-27T21:00:00.000Z',
          },
        ],
      },
    ],
    invalid: [
      { count: -1, deadLetters: [] },
      { count: 1, deadLetters: [{ jobId: 'x' }] },
    ],
  },
  {
    name: 'health',
    schema: healthResponseSchema,
    valid: [{ status: 'ok' }, { status: 'not-ready', reason: 'no leader' }],
    invalid: [{ status: 'fine' }],
  },
  {
    name: 'error body',
    schema: errorBodySchema,
    valid: [
      { error: { code: 'TOPIC_NOT_FOUND', message: 'no topic "x"' } },
      {
        error: {
          code: 'INVALID_REQUEST',
          message: 'bad',
          issues: [{ path: 'name', message: 'm' }],
        },
      },
    ],
    invalid: [{ error: { code: 'OOPS', message: 'x' } }, { message: 'x' }],
  },
  {
    name: 'Idempotency-Key',
    schema: idempotencyKeySchema,
    valid: ['k', 'a'.repeat(128), 'f47ac10b-58cc-4372-a567-0e02b2c3d479'],
    invalid: ['', 'a'.repeat(129), 'has space', 'tab\t'],
  },
  {
    name: 'path parameters',
    schema: partitionPathSchema,
    valid: [
      { name: 'orders', partition: '0' },
      { name: 'orders', partition: '9999' },
    ],
    invalid: [
      { name: 'orders', partition: '-1' },
      { name: 'orders', partition: 'x' },
    ],
  },
  {
    name: 'topic path',
    schema: topicPathSchema,
    valid: [{ name: 'orders' }],
    invalid: [{ name: '..' }],
  },
  {
    name: 'broker path',
    schema: brokerPathSchema,
    valid: [{ id: '1' }],
    invalid: [{ id: '0' }, { id: 'x' }],
  },
];

describe.each(cases)('$name schema', ({ schema, valid, invalid }) => {
  it.each(valid.map((v) => [v]))('accepts %j', (value) => {
    const result = schema.safeParse(value);
    if (!result.success) throw new Error(JSON.stringify(result.error.issues));
    expect(result.success).toBe(true);
  });
  it.each(invalid.map((v) => [v]))('rejects %j', (value) => {
    expect(schema.safeParse(value).success).toBe(false);
  });
});

describe('parsed values', () => {
  it('defaults a missing topic config to {}', () => {
    expect(
      createTopicRequestSchema.parse({ name: 'o', partitions: 1, replicationFactor: 1 }).config,
    ).toEqual({});
  });
  it('caps waitMs at 60 s and converts query integers', () => {
    expect(
      metadataQuerySchema.parse({ sinceVersion: '7', waitMs: '600000', delta: 'true' }),
    ).toEqual({
      sinceVersion: 7,
      waitMs: 60_000,
      delta: true,
    });
  });
  it('names the field and the rule in formatted issues', () => {
    const result = createTopicRequestSchema.safeParse({
      name: 'orders',
      partitions: 3,
      replicationFactor: 1,
      config: { 'cleanup.policy': 'shred' },
    });
    expect(result.success).toBe(false);
    if (result.success) return;
    expect(formatIssues(result.error)).toEqual([
      { path: 'config.cleanup.policy', message: expect.stringContaining('delete, compact') },
    ]);
  });
});
