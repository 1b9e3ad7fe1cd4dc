import type { BrokerInfo, PartitionInfo, TopicMetadata } from '@dmq/api-contracts';
import type { BrokerRecord, PartitionRecord, TopicRecord } from './records';

/** ISO-8601 text of a command timestamp (the contract's `timestampSchema`). */
export function isoTime(ms: number): string {
  return new Date(ms).toISOString();
}

/** A partition as the contract shows it (fresh arrays: callers may keep or change them). */
export function partitionInfo(p: PartitionRecord): PartitionInfo {
  return {
    topic: p.topic.name,
    partition: p.index,
    leader: p.leader,
    replicas: p.replicas.slice(),
    isr: p.isr.slice(),
    leaderEpoch: p.leaderEpoch,
    partitionEpoch: p.partitionEpoch,
    startOffset: p.startOffset,
    endOffset: p.endOffset,
  };
}

export function topicMetadata(t: TopicRecord): TopicMetadata {
  return {
    name: t.name,
    topicId: t.id,
    replicationFactor: t.replicationFactor,
    config: { ...t.config },
    partitions: t.partitions.map(partitionInfo),
    createdAt: isoTime(t.createdAtMs),
  };
}

export function brokerInfo(b: BrokerRecord): BrokerInfo {
  return {
    brokerId: b.id,
    host: b.host,
    port: b.port,
    rack: b.rack,
    brokerEpoch: b.epoch,
    status: b.fenced ? 'FENCED' : 'ONLINE',
    lastHeartbeatAt: b.lastHeartbeatAtMs === null ? null : isoTime(b.lastHeartbeatAtMs),
    pushEndpoint: b.pushEndpoint,
  };
}

/** Orders partitions by topic name, then index (code-point order, as everywhere). */
export function comparePartitions(a: PartitionRecord, b: PartitionRecord): number {
  if (a.topic.name !== b.topic.name) return a.topic.name < b.topic.name ? -1 : 1;
  return a.index - b.index;
}
