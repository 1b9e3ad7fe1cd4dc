import { ErrorCode } from '@dmq/api-contracts';
import type {
  AlterPartitionCommand,
  BrokerHeartbeatCommand,
  Command,
  ControlledShutdownCommand,
  CreateTopicCommand,
  DeleteTopicCommand,
  ElectLeadersCommand,
  FenceBrokerCommand,
  ReassignPartitionsCommand,
  RegisterBrokerCommand,
  RestoreFromBackupCommand,
  AbortRestoreFromBackupCommand,
  UnfenceBrokerCommand,
  UnregisterBrokerCommand,
  UpdateTopicConfigCommand,
} from './commands';
import type { ApplyResult, CommandValue, ElectionOutcome } from './apply-result';
import { InvariantViolation } from './errors';
import { placeReplicas } from './placement';
import {
  EMPTY_IDS,
  canonicalConfig,
  newPartitionRecord,
  uncleanLeaderElectionOf,
  type BrokerRecord,
  type PartitionRecord,
  type TopicRecord,
} from './records';
import { intersect, shapeOf, type ApplyContext } from './state';
import { deriveTopicId } from './topic-id';
import { brokerInfo, comparePartitions, partitionInfo, topicMetadata } from './views';

/**
 * The command handlers. Each one validates everything first and changes the state only when
 * the command is accepted: a rejected command changes nothing.
 */

type Result<T extends Command['type']> = ApplyResult<CommandValue<T>>;

function ok<V>(value: V): ApplyResult<V> {
  return { ok: true, value, replayed: false };
}

function reject(
  code: ErrorCode,
  message: string,
): { ok: false; error: { code: ErrorCode; message: string }; replayed: false } {
  return { ok: false, error: { code, message }, replayed: false };
}

function brokerNotFound(id: number) {
  return reject(ErrorCode.BROKER_NOT_FOUND, `broker ${id} is not registered`);
}

function topicNotFound(name: string) {
  return reject(ErrorCode.TOPIC_NOT_FOUND, `topic "${name}" does not exist`);
}

function staleBrokerEpoch(broker: BrokerRecord, epoch: number) {
  return reject(
    ErrorCode.STALE_BROKER_EPOCH,
    `broker epoch ${epoch} is not broker ${broker.id}'s current epoch ${broker.epoch}`,
  );
}

/** Dispatches a validated command to its handler. */
export function applyCommand(ctx: ApplyContext, command: Command): ApplyResult {
  const { restoring } = ctx.state;
  if (
    restoring !== null &&
    command.type !== 'RestoreFromBackup' &&
    command.type !== 'AbortRestoreFromBackup'
  ) {
    return reject(
      ErrorCode.PRECONDITION_FAILED,
      `a restore from backup is in progress (${restoring.nextPart} of ${restoring.parts} parts ` +
        'applied): nothing else is accepted until it completes or is aborted',
    );
  }
  switch (command.type) {
    case 'RegisterBroker':
      return registerBroker(ctx, command);
    case 'BrokerHeartbeat':
      return brokerHeartbeat(ctx, command);
    case 'FenceBroker':
      return fenceBroker(ctx, command);
    case 'UnfenceBroker':
      return unfenceBroker(ctx, command);
    case 'ControlledShutdown':
      return controlledShutdown(ctx, command);
    case 'UnregisterBroker':
      return unregisterBroker(ctx, command);
    case 'CreateTopic':
      return createTopic(ctx, command);
    case 'DeleteTopic':
      return deleteTopic(ctx, command);
    case 'UpdateTopicConfig':
      return updateTopicConfig(ctx, command);
    case 'AlterPartition':
      return alterPartition(ctx, command);
    case 'ElectLeaders':
      return electLeaders(ctx, command);
    case 'ReassignPartitions':
      return reassignPartitions(ctx, command);
    case 'RestoreFromBackup':
      return restoreFromBackup(ctx, command);
    case 'AbortRestoreFromBackup':
      return abortRestoreFromBackup(ctx, command);
  }
}

function registerBroker(
  ctx: ApplyContext,
  command: RegisterBrokerCommand,
): Result<'RegisterBroker'> {
  const { state } = ctx;
  const epoch = Math.max(ctx.index, state.lastBrokerEpoch + 1);
  state.lastBrokerEpoch = epoch;
  let broker = state.brokers.get(command.brokerId);
  if (broker !== undefined) {
    // A new incarnation: the old one is fenced first (its ISR memberships and leaderships
    // end). Fencing an already fenced broker changes nothing: the ISRs it was kept in as the
    // last member (or restored from a backup) stay, so it can lead them again.
    fence(ctx, broker);
    broker.host = command.host;
    broker.port = command.port;
    broker.rack = command.rack ?? null;
    broker.pushEndpoint = command.pushEndpoint ?? null;
    broker.epoch = epoch;
    broker.registeredAtMs = ctx.timestampMs;
    broker.lastHeartbeatAtMs = ctx.timestampMs;
  } else {
    broker = {
      id: command.brokerId,
      host: command.host,
      port: command.port,
      rack: command.rack ?? null,
      pushEndpoint: command.pushEndpoint ?? null,
      epoch,
      fenced: true,
      lastHeartbeatAtMs: ctx.timestampMs,
      registeredAtMs: ctx.timestampMs,
      replicaOf: new Set(),
      leads: new Set(),
    };
    state.brokers.set(broker.id, broker);
  }
  broker.fenced = command.fenced ?? false;
  if (!broker.fenced) ctx.electLeaderlessPartitionsOf(broker);
  ctx.touchedBrokers.add(broker.id);
  return ok({ brokerId: broker.id, brokerEpoch: epoch });
}

function brokerHeartbeat(
  ctx: ApplyContext,
  command: BrokerHeartbeatCommand,
): Result<'BrokerHeartbeat'> {
  const { state } = ctx;
  const broker = state.brokers.get(command.brokerId);
  if (broker === undefined) return brokerNotFound(command.brokerId);
  if (command.brokerEpoch !== broker.epoch) return staleBrokerEpoch(broker, command.brokerEpoch);
  broker.lastHeartbeatAtMs = ctx.timestampMs;
  ctx.touchedBrokers.add(broker.id);
  for (const report of command.offsets ?? []) {
    const p = state.topics.get(report.topic)?.partitions[report.partition];
    // Only the current leader's report counts; others (stale, deleted topic) are ignored.
    if (p === undefined || p.leader !== broker.id) continue;
    if (p.startOffset === report.startOffset && p.endOffset === report.endOffset) continue;
    p.startOffset = report.startOffset;
    p.endOffset = report.endOffset;
    p.lastUpdatedMs = ctx.timestampMs;
    ctx.touchPartition(p);
  }
  return ok({ status: broker.fenced ? 'FENCED' : 'ONLINE', metadataVersion: ctx.index });
}

/** Fences `broker` and moves everything it held away (no-op when already fenced). */
function fence(ctx: ApplyContext, broker: BrokerRecord): void {
  if (broker.fenced) return;
  broker.fenced = true;
  for (const p of broker.replicaOf) ctx.removeBrokerFromPartition(p, broker.id, false);
  ctx.touchedBrokers.add(broker.id);
}

function fenceBroker(ctx: ApplyContext, command: FenceBrokerCommand): Result<'FenceBroker'> {
  const broker = ctx.state.brokers.get(command.brokerId);
  if (broker === undefined) return brokerNotFound(command.brokerId);
  if (command.brokerEpoch !== undefined && command.brokerEpoch !== broker.epoch) {
    return staleBrokerEpoch(broker, command.brokerEpoch);
  }
  fence(ctx, broker);
  return ok(brokerInfo(broker));
}

function unfenceBroker(ctx: ApplyContext, command: UnfenceBrokerCommand): Result<'UnfenceBroker'> {
  const broker = ctx.state.brokers.get(command.brokerId);
  if (broker === undefined) return brokerNotFound(command.brokerId);
  if (command.brokerEpoch !== broker.epoch) return staleBrokerEpoch(broker, command.brokerEpoch);
  if (broker.fenced) {
    broker.fenced = false;
    // Only leaderless partitions get a leader back; ISR expansion is the leader's AlterPartition.
    ctx.electLeaderlessPartitionsOf(broker);
    ctx.touchedBrokers.add(broker.id);
  }
  return ok(brokerInfo(broker));
}

function controlledShutdown(
  ctx: ApplyContext,
  command: ControlledShutdownCommand,
): Result<'ControlledShutdown'> {
  const broker = ctx.state.brokers.get(command.brokerId);
  if (broker === undefined) return brokerNotFound(command.brokerId);
  if (command.brokerEpoch !== broker.epoch) return staleBrokerEpoch(broker, command.brokerEpoch);
  fence(ctx, broker);
  return ok(brokerInfo(broker));
}

function unregisterBroker(
  ctx: ApplyContext,
  command: UnregisterBrokerCommand,
): Result<'UnregisterBroker'> {
  const { state } = ctx;
  const broker = state.brokers.get(command.brokerId);
  if (broker === undefined) return brokerNotFound(command.brokerId);
  if (command.brokerEpoch !== undefined && command.brokerEpoch !== broker.epoch) {
    return staleBrokerEpoch(broker, command.brokerEpoch);
  }
  // Controlled shutdown first (leadership moves to the other ISR members), then removal.
  fence(ctx, broker);
  for (const p of [...broker.replicaOf]) ctx.removeBrokerFromPartition(p, broker.id, true);
  if (broker.replicaOf.size !== 0 || broker.leads.size !== 0) {
    throw new InvariantViolation(`broker ${broker.id} still holds partitions after removal`);
  }
  state.brokers.delete(broker.id);
  ctx.touchedBrokers.add(broker.id);
  return ok({ brokerId: broker.id });
}

function createTopic(ctx: ApplyContext, command: CreateTopicCommand): Result<'CreateTopic'> {
  const { state } = ctx;
  if (state.topics.has(command.name)) {
    return reject(ErrorCode.TOPIC_ALREADY_EXISTS, `topic "${command.name}" already exists`);
  }
  const available = [...state.brokers.values()].filter((b) => !b.fenced);
  if (command.replicationFactor > available.length) {
    return reject(
      ErrorCode.INVALID_REPLICATION_FACTOR,
      `replication factor ${command.replicationFactor} is larger than the ${available.length} available (unfenced) brokers`,
    );
  }
  const assignment = placeReplicas(
    available.map((b) => ({
      id: b.id,
      rack: b.rack,
      replicaLoad: b.replicaOf.size,
      leaderLoad: b.leads.size,
    })),
    command.partitions,
    command.replicationFactor,
  );
  const id = deriveTopicId(ctx.index, command.name, state.topicIdSalt);
  if (state.topicsById.has(id)) throw new InvariantViolation(`derived topic id ${id} is taken`);
  const config = canonicalConfig(command.config);
  const topic: TopicRecord = {
    name: command.name,
    id,
    replicationFactor: command.replicationFactor,
    config,
    uncleanLeaderElection: uncleanLeaderElectionOf(config),
    createdAtMs: ctx.timestampMs,
    partitions: [],
  };
  assignment.forEach((ids, index) => {
    const replicas = state.interner.intern(ids);
    const leader = replicas[0] as number;
    const p = newPartitionRecord(topic, index, {
      leader,
      leaderEpoch: 0,
      partitionEpoch: 0,
      replicas,
      isr: replicas,
      adding: EMPTY_IDS,
      removing: EMPTY_IDS,
      startOffset: 0,
      endOffset: 0,
      lastUpdatedMs: ctx.timestampMs,
    });
    topic.partitions.push(p);
    for (const brokerId of replicas) (state.brokers.get(brokerId) as BrokerRecord).replicaOf.add(p);
    (state.brokers.get(leader) as BrokerRecord).leads.add(p);
  });
  state.topics.set(topic.name, topic);
  state.topicsById.set(topic.id, topic);
  state.partitionCount += topic.partitions.length;
  ctx.touchWholeTopic(topic.name);
  return ok(topicMetadata(topic));
}

function deleteTopic(ctx: ApplyContext, command: DeleteTopicCommand): Result<'DeleteTopic'> {
  const { state } = ctx;
  const topic = state.topics.get(command.name);
  if (topic === undefined) return topicNotFound(command.name);
  if (command.topicId !== undefined && command.topicId !== topic.id) {
    return reject(
      ErrorCode.TOPIC_NOT_FOUND,
      `topic "${command.name}" has id ${topic.id}, not ${command.topicId}`,
    );
  }
  for (const p of topic.partitions) {
    for (const id of p.replicas) state.brokers.get(id)?.replicaOf.delete(p);
    if (p.leader !== -1) state.brokers.get(p.leader)?.leads.delete(p);
  }
  state.topics.delete(topic.name);
  state.topicsById.delete(topic.id);
  state.partitionCount -= topic.partitions.length;
  ctx.touchedTopics.add(topic.name);
  ctx.deletedTopics.set(topic.name, topic.id);
  return ok({ name: topic.name, topicId: topic.id });
}

function updateTopicConfig(
  ctx: ApplyContext,
  command: UpdateTopicConfigCommand,
): Result<'UpdateTopicConfig'> {
  const topic = ctx.state.topics.get(command.name);
  if (topic === undefined) return topicNotFound(command.name);
  topic.config = canonicalConfig(command.config);
  const wasUnclean = topic.uncleanLeaderElection;
  topic.uncleanLeaderElection = uncleanLeaderElectionOf(topic.config);
  ctx.touchedTopics.add(topic.name);
  if (topic.uncleanLeaderElection && !wasUnclean) {
    // As KRaft does when the config is turned on: leaderless partitions get a leader now.
    for (const p of topic.partitions) {
      if (p.leader !== -1) continue;
      const { leader, isr } = ctx.chooseLeader(p.replicas, p.isr, true);
      if (leader !== -1) ctx.updatePartition(p, { ...shapeOf(p), leader, isr });
    }
  }
  return ok(topicMetadata(topic));
}

function alterPartition(
  ctx: ApplyContext,
  command: AlterPartitionCommand,
): Result<'AlterPartition'> {
  const { state } = ctx;
  const topic = state.topics.get(command.topic);
  if (topic === undefined) return topicNotFound(command.topic);
  const p = topic.partitions[command.partition];
  const where = `${command.topic}-${command.partition}`;
  if (p === undefined) {
    return reject(ErrorCode.PARTITION_NOT_FOUND, `partition ${where} does not exist`);
  }
  const broker = state.brokers.get(command.brokerId);
  if (broker === undefined) return brokerNotFound(command.brokerId);
  if (command.brokerEpoch !== broker.epoch) return staleBrokerEpoch(broker, command.brokerEpoch);
  if (command.leaderEpoch !== p.leaderEpoch) {
    return reject(
      ErrorCode.STALE_LEADER_EPOCH,
      `leader epoch ${command.leaderEpoch} is not ${where}'s current leader epoch ${p.leaderEpoch}`,
    );
  }
  const invalid = (message: string) =>
    reject(ErrorCode.INVALID_PARTITION_STATE, `${where}: ${message}`);
  if (p.leader !== broker.id) {
    return invalid(`broker ${broker.id} is not the leader (the leader is ${p.leader})`);
  }
  if (!command.isr.includes(broker.id)) return invalid('the ISR must contain the leader');
  for (const id of command.isr) {
    if (!p.replicas.includes(id)) return invalid(`broker ${id} is not a replica`);
    if (!p.isr.includes(id) && !ctx.isUnfenced(id)) {
      return invalid(`broker ${id} is fenced or unregistered and cannot join the ISR`);
    }
  }
  const isr = intersect(p.replicas, command.isr);
  ctx.updatePartition(p, ctx.completeReassignmentIfCaughtUp({ ...shapeOf(p), isr }));
  return ok(partitionInfo(p));
}

/** Resolves a list of topic-partitions, or explains which one does not exist. */
function resolvePartitions(
  ctx: ApplyContext,
  list: readonly { topic: string; partition: number }[],
): PartitionRecord[] | ReturnType<typeof reject> {
  const found = new Set<PartitionRecord>();
  for (const { topic: name, partition } of list) {
    const topic = ctx.state.topics.get(name);
    if (topic === undefined) return topicNotFound(name);
    const p = topic.partitions[partition];
    if (p === undefined) {
      return reject(ErrorCode.PARTITION_NOT_FOUND, `partition ${name}-${partition} does not exist`);
    }
    found.add(p);
  }
  return [...found].sort(comparePartitions);
}

function electLeaders(ctx: ApplyContext, command: ElectLeadersCommand): Result<'ElectLeaders'> {
  let scope: PartitionRecord[];
  if (command.partitions === undefined) {
    scope = [];
    const names = [...ctx.state.topics.keys()].sort();
    for (const name of names) scope.push(...(ctx.state.topics.get(name) as TopicRecord).partitions);
  } else {
    const resolved = resolvePartitions(ctx, command.partitions);
    if (!Array.isArray(resolved)) return resolved;
    scope = resolved;
  }
  const outcomes: ElectionOutcome[] = [];
  for (const p of scope) {
    let elected = false;
    if (command.electionType === 'preferred') {
      const preferred = p.replicas[0];
      if (
        preferred !== undefined &&
        preferred !== p.leader &&
        p.isr.includes(preferred) &&
        ctx.isUnfenced(preferred)
      ) {
        elected = ctx.updatePartition(p, { ...shapeOf(p), leader: preferred });
      }
    } else if (p.leader === -1) {
      const { leader, isr } = ctx.chooseLeader(p.replicas, p.isr, true);
      if (leader !== -1) elected = ctx.updatePartition(p, { ...shapeOf(p), leader, isr });
    }
    outcomes.push({ topic: p.topic.name, partition: p.index, leader: p.leader, elected });
  }
  return ok({ partitions: outcomes });
}

function reassignPartitions(
  ctx: ApplyContext,
  command: ReassignPartitionsCommand,
): Result<'ReassignPartitions'> {
  const { state } = ctx;
  const seen = new Set<string>();
  const plan: { p: PartitionRecord; target: readonly number[] | null }[] = [];
  for (const entry of command.partitions) {
    const key = `${entry.topic}\u0000${entry.partition}`;
    if (seen.has(key)) {
      return reject(
        ErrorCode.INVALID_REQUEST,
        `partition ${entry.topic}-${entry.partition} is listed twice`,
      );
    }
    seen.add(key);
    const resolved = resolvePartitions(ctx, [entry]);
    if (!Array.isArray(resolved)) return resolved;
    for (const id of entry.replicas ?? []) {
      if (!state.brokers.has(id)) return brokerNotFound(id);
    }
    plan.push({ p: resolved[0] as PartitionRecord, target: entry.replicas });
  }
  for (const { p, target: requested } of plan) {
    const original = p.replicas.filter((id) => !p.adding.includes(id));
    const target = requested ?? original;
    const removing = original.filter((id) => !target.includes(id));
    const adding = target.filter((id) => !original.includes(id));
    const replicas = [...target, ...removing];
    let isr: readonly number[] = intersect(replicas, p.isr);
    let leader = p.leader;
    if (leader !== -1 && !replicas.includes(leader)) {
      // Cancelling dropped an adding replica that had become leader.
      ({ leader, isr } = ctx.chooseLeader(replicas, isr, false));
    }
    ctx.updatePartition(
      p,
      ctx.completeReassignmentIfCaughtUp({ leader, isr, replicas, adding, removing }),
    );
  }
  return ok({ partitions: plan.map(({ p }) => partitionInfo(p)) });
}

function restoreFromBackup(
  ctx: ApplyContext,
  command: RestoreFromBackupCommand,
): Result<'RestoreFromBackup'> {
  const { state } = ctx;
  const part = command.part ?? { index: 0, count: 1 };
  const invalid = (message: string) => reject(ErrorCode.INVALID_REQUEST, `backup rows: ${message}`);
  if (part.index === 0) {
    if (state.restoring !== null || state.brokers.size > 0 || state.topics.size > 0) {
      return reject(
        ErrorCode.PRECONDITION_FAILED,
        `RestoreFromBackup needs an empty state; this one has ${state.brokers.size} brokers and ${state.topics.size} topics`,
      );
    }
  } else {
    const expected = state.restoring;
    if (expected === null || expected.nextPart !== part.index || expected.parts !== part.count) {
      return reject(
        ErrorCode.PRECONDITION_FAILED,
        `RestoreFromBackup part ${part.index} of ${part.count} does not follow ` +
          (expected === null
            ? 'a restore in progress (there is none)'
            : `part ${expected.nextPart - 1} of ${expected.parts}`),
      );
    }
    if (command.brokers.length > 0) return invalid('only the first part carries brokers');
  }
  const brokerIds = new Set<number>();
  for (const row of command.brokers) {
    if (brokerIds.has(row.brokerId)) return invalid(`broker ${row.brokerId} appears twice`);
    brokerIds.add(row.brokerId);
  }
  // Later parts place their partitions on the brokers of the first part.
  const knownBroker = (id: number) =>
    brokerIds.has(id) || (part.index > 0 && state.brokers.has(id));
  const topicRows = new Map<string, (typeof command.topics)[number]>();
  const topicIds = new Set<string>();
  for (const row of command.topics) {
    if (topicRows.has(row.name) || state.topics.has(row.name)) {
      return invalid(`topic "${row.name}" appears twice`);
    }
    if (topicIds.has(row.topicId) || state.topicsById.has(row.topicId)) {
      return invalid(`topic id ${row.topicId} appears twice`);
    }
    topicRows.set(row.name, row);
    topicIds.add(row.topicId);
  }
  const partitionRows = new Map<string, (typeof command.partitions)[number][]>();
  for (const row of command.partitions) {
    const where = `${row.topicName}-${row.partitionId}`;
    const topicRow = topicRows.get(row.topicName);
    if (topicRow === undefined) return invalid(`partition ${where} belongs to no topic row`);
    if (row.topicId !== undefined && row.topicId !== topicRow.topicId) {
      return invalid(
        `partition ${where} belongs to topic id ${row.topicId}, not ${topicRow.topicId}`,
      );
    }
    if (row.partitionId >= topicRow.partitionCount) {
      return invalid(`partition ${where} is beyond the topic's ${topicRow.partitionCount}`);
    }
    const rows = partitionRows.get(row.topicName) ?? [];
    if (rows[row.partitionId] !== undefined) return invalid(`partition ${where} appears twice`);
    rows[row.partitionId] = row;
    partitionRows.set(row.topicName, rows);
    if (new Set(row.replicaIds).size !== row.replicaIds.length) {
      return invalid(`partition ${where} has duplicate replicas`);
    }
    for (const id of row.replicaIds) {
      if (!knownBroker(id)) return invalid(`partition ${where}: replica ${id} has no broker row`);
    }
    if (new Set(row.isrIds).size !== row.isrIds.length) {
      return invalid(`partition ${where} has duplicate ISR members`);
    }
    for (const id of row.isrIds) {
      if (!row.replicaIds.includes(id)) {
        return reject(
          ErrorCode.INVALID_PARTITION_STATE,
          `${where}: ISR member ${id} is not a replica`,
        );
      }
    }
    if (row.leaderId !== -1 && !row.isrIds.includes(row.leaderId)) {
      return reject(
        ErrorCode.INVALID_PARTITION_STATE,
        `${where}: leader ${row.leaderId} is not in the ISR`,
      );
    }
    if (row.startOffset > row.endOffset)
      return invalid(`partition ${where}: start offset > end offset`);
  }
  for (const row of command.topics) {
    const rows = partitionRows.get(row.name) ?? [];
    for (let i = 0; i < row.partitionCount; i++) {
      if (rows[i] === undefined) return invalid(`topic "${row.name}" lacks partition ${i}`);
    }
  }

  // Every restored broker is fenced until it registers again, so every partition is
  // leaderless (its ISR kept): leadership comes back, cleanly, as brokers return.
  for (const row of command.brokers) {
    state.brokers.set(row.brokerId, {
      id: row.brokerId,
      host: row.host,
      port: row.port,
      rack: row.rack,
      pushEndpoint: row.pushEndpoint,
      epoch: row.brokerEpoch,
      fenced: true,
      lastHeartbeatAtMs: row.lastHeartbeatAtMs,
      registeredAtMs: row.registeredAtMs,
      replicaOf: new Set(),
      leads: new Set(),
    });
    state.lastBrokerEpoch = Math.max(state.lastBrokerEpoch, row.brokerEpoch);
  }
  if (part.index === 0) {
    state.topicIdSalt = (Math.imul(state.topicIdSalt, 31) + command.sourceVersion + 1) >>> 0;
    state.backupGeneration = command.backupGeneration ?? 1;
  }
  const complete = part.index + 1 === part.count;
  state.restoring = complete ? null : { nextPart: part.index + 1, parts: part.count };
  for (const row of command.topics) {
    const config = canonicalConfig(row.config);
    const topic: TopicRecord = {
      name: row.name,
      id: row.topicId,
      replicationFactor: row.replicationFactor,
      config,
      uncleanLeaderElection: uncleanLeaderElectionOf(config),
      createdAtMs: row.createdAtMs,
      partitions: [],
    };
    const rows = partitionRows.get(row.name) ?? [];
    for (let i = 0; i < row.partitionCount; i++) {
      const source = rows[i] as (typeof command.partitions)[number];
      const hadLeader = source.leaderId !== -1;
      const replicas = state.interner.intern(source.replicaIds);
      const p = newPartitionRecord(topic, i, {
        leader: -1,
        leaderEpoch: source.leaderEpoch + (hadLeader ? 1 : 0),
        partitionEpoch: source.partitionEpoch + (hadLeader ? 1 : 0),
        replicas,
        isr: state.interner.intern(intersect(replicas, source.isrIds)),
        adding: EMPTY_IDS,
        removing: EMPTY_IDS,
        startOffset: source.startOffset,
        endOffset: source.endOffset,
        lastUpdatedMs: hadLeader ? ctx.timestampMs : source.lastUpdatedAtMs,
      });
      topic.partitions.push(p);
      for (const id of replicas) (state.brokers.get(id) as BrokerRecord).replicaOf.add(p);
    }
    state.topics.set(topic.name, topic);
    state.topicsById.set(topic.id, topic);
    state.partitionCount += topic.partitions.length;
    ctx.touchWholeTopic(topic.name);
  }
  for (const id of brokerIds) ctx.touchedBrokers.add(id);
  return ok({
    brokers: state.brokers.size,
    topics: state.topics.size,
    partitions: state.partitionCount,
    part: part.index + 1,
    parts: part.count,
    complete,
  });
}

function abortRestoreFromBackup(
  ctx: ApplyContext,
  _command: AbortRestoreFromBackupCommand,
): Result<'AbortRestoreFromBackup'> {
  const { state } = ctx;
  if (state.restoring === null) {
    return reject(ErrorCode.PRECONDITION_FAILED, 'no restore from backup is in progress');
  }
  const discarded = {
    brokers: state.brokers.size,
    topics: state.topics.size,
    partitions: state.partitionCount,
  };
  for (const topic of state.topics.values()) {
    ctx.touchedTopics.add(topic.name);
    ctx.deletedTopics.set(topic.name, topic.id);
  }
  for (const id of state.brokers.keys()) ctx.touchedBrokers.add(id);
  state.topics.clear();
  state.topicsById.clear();
  state.brokers.clear();
  state.partitionCount = 0;
  state.backupGeneration = 0;
  state.restoring = null;
  return ok(discarded);
}
