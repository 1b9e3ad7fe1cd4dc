import { InvariantViolation } from './errors';
import type { MetadataState } from './state';

/**
 * Checks every invariant of the state, O(cluster size). Used after restoring a snapshot and by
 * the tests; cheap enough to call in a debugging session.
 * @throws InvariantViolation naming the first broken invariant.
 */
export function assertInvariants(state: MetadataState): void {
  const fail = (message: string): never => {
    throw new InvariantViolation(message);
  };
  let partitions = 0;
  const replicaCount = new Map<number, number>();
  const leaderCount = new Map<number, number>();
  for (const [name, topic] of state.topics) {
    if (topic.name !== name) fail(`topic map key ${name} holds topic ${topic.name}`);
    if (state.topicsById.get(topic.id) !== topic) fail(`topic ${name} is not indexed by its id`);
    if (topic.partitions.length === 0) fail(`topic ${name} has no partitions`);
    topic.partitions.forEach((p, index) => {
      const where = `${name}-${index}`;
      if (p.index !== index || p.topic !== topic) fail(`${where} is misplaced`);
      if (hasDuplicates(p.replicas)) fail(`${where}: duplicate replicas`);
      for (const id of p.replicas) {
        const broker = state.brokers.get(id);
        if (broker === undefined) fail(`${where}: replica ${id} is not a registered broker`);
        else if (!broker.replicaOf.has(p)) fail(`${where}: broker ${id} index lacks it`);
        replicaCount.set(id, (replicaCount.get(id) ?? 0) + 1);
      }
      if (hasDuplicates(p.isr)) fail(`${where}: duplicate ISR members`);
      for (const list of [p.isr, p.adding, p.removing]) {
        for (const id of list)
          if (!p.replicas.includes(id)) fail(`${where}: ${id} is not a replica`);
      }
      for (const id of p.adding)
        if (p.removing.includes(id)) fail(`${where}: ${id} adding and removing`);
      if (p.leader !== -1) {
        if (!p.isr.includes(p.leader)) fail(`${where}: leader ${p.leader} is not in the ISR`);
        if (state.brokers.get(p.leader)?.leads.has(p) !== true) {
          fail(`${where}: leader index lacks it`);
        }
        leaderCount.set(p.leader, (leaderCount.get(p.leader) ?? 0) + 1);
      }
      if (p.startOffset > p.endOffset) fail(`${where}: start offset beyond end offset`);
      partitions++;
    });
  }
  if (partitions !== state.partitionCount) fail(`partition count ${state.partitionCount} is stale`);
  if (state.topicsById.size !== state.topics.size) fail('topic id index has extra entries');
  for (const [id, broker] of state.brokers) {
    if (broker.id !== id) fail(`broker map key ${id} holds broker ${broker.id}`);
    if (broker.replicaOf.size !== (replicaCount.get(id) ?? 0))
      fail(`broker ${id} replica index is stale`);
    if (broker.leads.size !== (leaderCount.get(id) ?? 0))
      fail(`broker ${id} leader index is stale`);
    if (broker.fenced && broker.leads.size > 0) fail(`fenced broker ${id} leads partitions`);
    if (broker.epoch > state.lastBrokerEpoch) fail(`broker ${id} epoch beyond the last issued`);
  }
}

/** Whether a short id list holds an id twice (no allocation: lists are at most 64 long). */
function hasDuplicates(ids: readonly number[]): boolean {
  for (let i = 1; i < ids.length; i++) {
    for (let j = 0; j < i; j++) if (ids[i] === ids[j]) return true;
  }
  return false;
}
