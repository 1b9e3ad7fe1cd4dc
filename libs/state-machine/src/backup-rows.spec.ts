import { ErrorCode } from '@dmq/api-contracts';
import { restoreCommandFromBackupRows } from './backup-rows';
import type { RestoreFromBackupValue } from './apply-result';
import { at, Harness } from './harness.test-util';

function source(): Harness {
  const h = new Harness();
  [1, 2, 3].forEach((id) => h.register(id, `r${id}`));
  h.createTopic('orders', 3, 3, { 'retention.ms': '1000' });
  h.createTopic('logs', 2, 1);
  h.ok({
    type: 'BrokerHeartbeat',
    brokerId: h.part('logs', 0).leader,
    brokerEpoch: h.epochOf(h.part('logs', 0).leader),
    offsets: [{ topic: 'logs', partition: 0, startOffset: 5, endOffset: 50 }],
  });
  return h;
}

describe('backup rows', () => {
  it('turns the state into rows with the seed PartitionEntity fields', () => {
    const h = source();
    const rows = h.sm.toBackupRows();
    expect(rows.version).toBe(h.index);
    expect(rows.brokers.map((b) => b.brokerId)).toEqual([1, 2, 3]);
    expect(rows.topics.map((t) => [t.name, t.partitionCount])).toEqual([
      ['logs', 2],
      ['orders', 3],
    ]);
    const logs0 = rows.partitions.find((p) => p.topicName === 'logs' && p.partitionId === 0);
    const info = h.part('logs', 0);
    expect(logs0).toEqual({
      topicName: 'logs',
      topicId: h.sm.topic('logs')?.topicId,
      partitionId: 0,
      leaderId: info.leader,
      replicaIds: info.replicas,
      isrIds: info.isr,
      startOffset: 5,
      endOffset: 50,
      leaderEpoch: 0,
      partitionEpoch: 0,
      lastUpdatedAtMs: h.now,
    });
  });

  it('restores a cluster from its rows in one command on an empty state', () => {
    const h = source();
    const rows = h.sm.toBackupRows();
    const plan = restoreCommandFromBackupRows(rows, {
      timestampMs: h.now,
      sourceVersion: rows.version,
    });
    expect(plan.repairs).toEqual([]);
    const fresh = new Harness();
    fresh.now = h.now + 1;
    const value = fresh.ok<RestoreFromBackupValue>(plan.command);
    expect(value).toEqual({ brokers: 3, topics: 2, partitions: 5 });
    fresh.sm.assertInvariants();
    // Same topics (ids, config), brokers all fenced, every partition leaderless until they return.
    for (const topic of h.sm.topics()) {
      const restored = fresh.sm.topic(topic.name);
      expect(restored).toMatchObject({ topicId: topic.topicId, config: topic.config });
      topic.partitions.forEach((p, i) => {
        expect(restored?.partitions[i]).toMatchObject({
          leader: -1,
          replicas: p.replicas,
          isr: p.isr,
          leaderEpoch: p.leaderEpoch + 1,
          startOffset: p.startOffset,
          endOffset: p.endOffset,
        });
      });
    }
    expect(fresh.sm.brokers().every((b) => b.status === 'FENCED')).toBe(true);
    // Brokers re-register: larger epochs than before the disaster, leadership comes back.
    for (const id of [1, 2, 3]) {
      expect(fresh.register(id)).toBeGreaterThan(h.epochOf(id));
    }
    for (const p of fresh.parts('orders')) expect(p.leader).not.toBe(-1);
    fresh.ok({ type: 'ElectLeaders', electionType: 'preferred' });
    for (const p of fresh.parts('orders')) expect(p.leader).toBe(p.replicas[0]);
    // New topics get ids unlike the restored ones even though indexes start over.
    fresh.createTopic('new', 1, 1);
    expect(fresh.sm.topic('new')?.topicId).not.toBe(h.sm.topic('orders')?.topicId);
    fresh.sm.assertInvariants();
  });

  it('repairs inconsistent rows and says what it did', () => {
    const h = source();
    const rows = h.sm.toBackupRows();
    const partitions = rows.partitions
      .filter((p) => !(p.topicName === 'orders' && p.partitionId === 2))
      .map((p) =>
        p.topicName === 'orders' && p.partitionId === 0
          ? { ...p, replicaIds: [...p.replicaIds, 42], isrIds: [...p.isrIds, 42], leaderId: 42 }
          : p,
      );
    const plan = restoreCommandFromBackupRows(
      {
        brokers: [...rows.brokers, { brokerId: 'bad' }],
        topics: rows.topics,
        partitions: [...partitions, { ...partitions[0], topicName: 'ghost' }],
      },
      { timestampMs: h.now, sourceVersion: rows.version },
    );
    expect(plan.repairs).toEqual([
      expect.stringContaining('invalid broker row'),
      'partition ghost-0: dropped (no such topic, incarnation or partition)',
      'partition orders-0: dropped duplicate or unknown replicas',
      'partition orders-0: dropped ISR members that are not replicas',
      'partition orders-0: leader 42 not in the ISR, set to -1',
      'partition orders-2: missing, restored without replicas',
    ]);
    const fresh = new Harness();
    fresh.ok(plan.command);
    fresh.sm.assertInvariants();
    expect(fresh.part('orders', 2)).toMatchObject({ replicas: [], leader: -1 });
  });

  it('refuses to restore over a state that has brokers or topics, and inconsistent rows', () => {
    const h = source();
    const rows = h.sm.toBackupRows();
    const plan = restoreCommandFromBackupRows(rows, { timestampMs: h.now, sourceVersion: 1 });
    h.rejected(plan.command, ErrorCode.PRECONDITION_FAILED);
    const fresh = new Harness();
    const bad = (patch: Partial<typeof plan.command>) => ({ ...plan.command, ...patch });
    const [first] = plan.command.partitions;
    if (first === undefined) throw new Error('no partitions');
    fresh.rejected(
      bad({ brokers: [...plan.command.brokers, at(plan.command.brokers, 0)] }),
      ErrorCode.INVALID_REQUEST,
    );
    fresh.rejected(
      bad({ partitions: plan.command.partitions.slice(1) }),
      ErrorCode.INVALID_REQUEST,
    );
    fresh.rejected(
      bad({
        partitions: [
          { ...first, leaderId: at(first.replicaIds, 0), isrIds: [] },
          ...plan.command.partitions.slice(1),
        ],
      }),
      ErrorCode.INVALID_PARTITION_STATE,
    );
    fresh.rejected(
      bad({ partitions: [{ ...first, replicaIds: [77] }, ...plan.command.partitions.slice(1)] }),
      ErrorCode.INVALID_REQUEST,
    );
    const otherIncarnation = { ...first, topicId: '00000000-0000-4000-8000-000000000000' };
    fresh.rejected(
      bad({ partitions: [otherIncarnation, ...plan.command.partitions.slice(1)] }),
      ErrorCode.INVALID_REQUEST,
    );
  });

  it('gives the rows changed since a version, or everything when too old', () => {
    const h = new Harness({ changeLog: { maxEntries: 3 } });
    [1, 2].forEach((id) => h.register(id));
    h.createTopic('a', 1, 1);
    const aId = h.sm.topic('a')?.topicId;
    const since = h.index;
    h.createTopic('b', 2, 1);
    h.ok({ type: 'DeleteTopic', name: 'a' });
    const changes = h.sm.backupChangesSince(since);
    expect(changes).toMatchObject({
      full: false,
      sinceVersion: since,
      version: h.index,
      deletedTopics: [{ name: 'a', topicId: aId }],
      deletedBrokers: [],
      brokers: [],
    });
    expect(changes.topics.map((t) => t.name)).toEqual(['b']);
    expect(changes.partitions.map((p) => `${p.topicName}-${p.partitionId}`)).toEqual([
      'b-0',
      'b-1',
    ]);
    const full = h.sm.backupChangesSince(0);
    expect(full.full).toBe(true);
    expect(full.brokers).toHaveLength(2);
  });
});
