import fc from 'fast-check';
import { ErrorCode } from '@dmq/api-contracts';
import {
  restoreCommandFromBackupRows,
  splitRestoreCommand,
  type BackupChanges,
  type BrokerRow,
  type PartitionRow,
  type TopicRow,
} from './backup-rows';
import type { RestoreFromBackupValue } from './apply-result';
import { at, Harness, snapshotText, T0 } from './harness.test-util';
import { crc32 } from './crc32';
import { MetadataStateMachine } from './metadata-state-machine';
import { materialize, sequenceArbitrary } from './property.test-util';

const keys = (changes: BackupChanges) =>
  changes.partitions.map((p) => `${p.topicName}-${p.partitionId}`);

/**
 * The backup tables as a writer applying `BackupChanges` in order keeps them: what is stored
 * after each batch must be what the state machine holds at the batch's version.
 */
class TableModel {
  readonly brokers = new Map<number, BrokerRow>();
  readonly topics = new Map<string, TopicRow>();
  readonly partitions = new Map<string, PartitionRow>();

  apply(changes: BackupChanges): void {
    if (changes.full) {
      this.brokers.clear();
      this.topics.clear();
      this.partitions.clear();
    }
    for (const { name, topicId } of changes.deletedTopics) {
      if (this.topics.get(name)?.topicId === topicId) this.topics.delete(name);
      for (const [key, row] of this.partitions) {
        if (row.topicName === name && row.topicId === topicId) this.partitions.delete(key);
      }
    }
    for (const id of changes.deletedBrokers) this.brokers.delete(id);
    for (const row of changes.brokers) this.brokers.set(row.brokerId, row);
    for (const row of changes.topics) {
      this.topics.set(row.name, row);
      for (const [key, stored] of this.partitions) {
        if (stored.topicName === row.name && stored.topicId !== row.topicId) {
          this.partitions.delete(key);
        }
      }
    }
    for (const row of changes.partitions) {
      this.partitions.set(`${row.topicName}\u0000${row.partitionId}`, row);
    }
  }

  rows() {
    return {
      brokers: [...this.brokers.values()].sort((a, b) => a.brokerId - b.brokerId),
      topics: [...this.topics.values()].sort((a, b) => (a.name < b.name ? -1 : 1)),
      partitions: [...this.partitions.values()].sort((a, b) =>
        a.topicName === b.topicName
          ? a.partitionId - b.partitionId
          : a.topicName < b.topicName
            ? -1
            : 1,
      ),
    };
  }
}

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
    expect(value).toEqual({
      brokers: 3,
      topics: 2,
      partitions: 5,
      part: 1,
      parts: 1,
      complete: true,
    });
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

  it('gives the restored cluster the next backup generation, kept in snapshots', () => {
    const h = source();
    expect(h.sm.backupGeneration()).toBe(0);
    expect(h.sm.toBackupRows().generation).toBe(0);
    const rows = h.sm.toBackupRows();
    const plan = restoreCommandFromBackupRows(rows, {
      timestampMs: h.now,
      sourceVersion: rows.version,
      sourceGeneration: 2,
    });
    expect(plan.command.backupGeneration).toBe(3);
    const fresh = new Harness();
    fresh.ok(plan.command);
    expect(fresh.sm.backupGeneration()).toBe(3);
    expect(fresh.sm.toBackupRows().generation).toBe(3);
    fresh.ok({ type: 'UpdateTopicConfig', name: 'logs', config: { 'retention.ms': '9' } });
    expect(fresh.sm.backupChangesSince(fresh.index - 1).generation).toBe(3);
    expect(MetadataStateMachine.restore(fresh.sm.snapshot()).backupGeneration()).toBe(3);

    // A command from before generations existed restores generation 1; a snapshot from before
    // them reads as generation 0.
    const { backupGeneration: _omitted, ...legacyCommand } = plan.command;
    const old = new Harness();
    old.ok(legacyCommand);
    expect(old.sm.backupGeneration()).toBe(1);
    const lines = snapshotText(fresh.sm)
      .replace('"backupGeneration":3,', '')
      .split('\n')
      .slice(0, -2);
    expect(lines.join('\n')).not.toContain('backupGeneration');
    const body = new TextEncoder().encode(lines.map((line) => `${line}\n`).join(''));
    const trailer = JSON.stringify({ t: 'end', lines: lines.length, crc32: crc32(body) });
    const legacy = MetadataStateMachine.restore([body, new TextEncoder().encode(`${trailer}\n`)]);
    expect(legacy.backupGeneration()).toBe(0);
    expect(legacy.counts()).toEqual(fresh.sm.counts());
  });

  it('restores in parts of whole topics: equal to one command, nothing else accepted meanwhile', () => {
    const h = source();
    for (let t = 0; t < 6; t++) h.createTopic(`many-${t}`, 3, 2);
    const rows = h.sm.toBackupRows();
    const plan = restoreCommandFromBackupRows(rows, { timestampMs: h.now, sourceVersion: 9 });
    const whole = new Harness();
    whole.ok(plan.command);

    const parts = splitRestoreCommand(plan.command, 5);
    expect(parts.length).toBeGreaterThan(3);
    expect(parts.map((p) => p.part)).toEqual(
      parts.map((_, index) => ({ index, count: parts.length })),
    );
    expect(parts.slice(1).every((p) => p.brokers.length === 0)).toBe(true);
    for (const part of parts) {
      const names = new Set(part.topics.map((t) => t.name));
      expect(part.partitions.every((p) => names.has(p.topicName))).toBe(true);
    }
    const fresh = new Harness();
    // Out of order: refused, nothing changes.
    fresh.rejected(at(parts, 1), ErrorCode.PRECONDITION_FAILED);
    const first = fresh.ok<RestoreFromBackupValue>(at(parts, 0));
    expect(first).toMatchObject({ part: 1, parts: parts.length, complete: false });
    expect(fresh.sm.restoreInProgress()).toEqual({ nextPart: 1, parts: parts.length });
    // Meanwhile every other command is refused, and so is a part out of order or repeated.
    fresh.rejected(
      { type: 'RegisterBroker', brokerId: 9, host: 'h', port: 1 },
      ErrorCode.PRECONDITION_FAILED,
    );
    fresh.rejected(at(parts, 0), ErrorCode.PRECONDITION_FAILED);
    fresh.rejected(at(parts, 2), ErrorCode.PRECONDITION_FAILED);
    // It survives a snapshot in the middle.
    const restarted = MetadataStateMachine.restore(fresh.sm.snapshot());
    expect(restarted.restoreInProgress()).toEqual({ nextPart: 1, parts: parts.length });
    let last: RestoreFromBackupValue | undefined;
    for (const part of parts.slice(1)) last = fresh.ok<RestoreFromBackupValue>(part);
    expect(last).toMatchObject({ complete: true, topics: rows.topics.length });
    expect(fresh.sm.restoreInProgress()).toBeUndefined();
    fresh.sm.assertInvariants();
    expect(fresh.sm.metadata().topics).toEqual(whole.sm.metadata().topics);
    expect(fresh.sm.brokers()).toEqual(whole.sm.brokers());
    expect(fresh.sm.backupGeneration()).toBe(whole.sm.backupGeneration());
    // A small restore stays one command.
    expect(splitRestoreCommand(plan.command)).toEqual([plan.command]);
  });

  it('aborts a restore left in the middle: empty again, and it can start over', () => {
    const h = source();
    const plan = restoreCommandFromBackupRows(h.sm.toBackupRows(), {
      timestampMs: h.now,
      sourceVersion: 3,
    });
    const parts = splitRestoreCommand(plan.command, 2);
    const fresh = new Harness();
    fresh.rejected({ type: 'AbortRestoreFromBackup' }, ErrorCode.PRECONDITION_FAILED);
    fresh.ok(at(parts, 0));
    const since = fresh.index;
    expect(fresh.ok({ type: 'AbortRestoreFromBackup' })).toEqual({
      brokers: 3,
      topics: 1,
      partitions: 2,
    });
    expect(fresh.sm.counts()).toMatchObject({ brokers: 0, topics: 0, partitions: 0 });
    expect(fresh.sm.restoreInProgress()).toBeUndefined();
    // The backup is told to delete what the first part had written.
    expect(fresh.sm.backupChangesSince(since).deletedTopics.map((t) => t.name)).toEqual(['logs']);
    for (const part of parts) fresh.ok(part);
    fresh.sm.assertInvariants();
    expect(fresh.sm.counts()).toMatchObject({ brokers: 3, topics: 2, partitions: 5 });
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

  it('sends only the partitions that changed, and none for a topic config change', () => {
    const h = source();
    h.createTopic('wide', 100, 2);
    const since = h.index;
    h.ok({ type: 'UpdateTopicConfig', name: 'wide', config: { 'retention.ms': '5' } });
    const config = h.sm.backupChangesSince(since);
    expect(config.topics.map((t) => [t.name, t.config])).toEqual([
      ['wide', { 'retention.ms': '5' }],
    ]);
    expect(config.partitions).toEqual([]);

    // An offset report changes one partition row (and its topic's).
    const leader = h.part('wide', 7).leader;
    const sinceConfig = h.index;
    h.ok({
      type: 'BrokerHeartbeat',
      brokerId: leader,
      brokerEpoch: h.epochOf(leader),
      offsets: [{ topic: 'wide', partition: 7, startOffset: 1, endOffset: 9 }],
    });
    expect(keys(h.sm.backupChangesSince(sinceConfig))).toEqual(['wide-7']);

    // Fencing a broker changes exactly the partitions it was a replica of whose state moved.
    const sinceHeartbeat = h.index;
    const onBroker = h.sm.partitionsOnBroker(3).map((p) => `${p.topic}-${p.partition}`);
    h.ok({ type: 'FenceBroker', brokerId: 3 });
    const fenced = h.sm.backupChangesSince(sinceHeartbeat);
    expect(keys(fenced).sort()).toEqual([...onBroker].sort());
    expect(fenced.brokers.map((b) => [b.brokerId, b.status])).toEqual([[3, 'FENCED']]);
    // Over both windows the changes merge.
    expect(keys(h.sm.backupChangesSince(sinceConfig)).sort()).toEqual(
      [...new Set([...onBroker, 'wide-7'])].sort(),
    );
  });

  it('sends every partition of a topic deleted and re-created in the window, and the old id', () => {
    const h = source();
    h.createTopic('wide', 4, 1);
    const oldId = h.sm.topic('wide')?.topicId;
    const since = h.index;
    h.ok({ type: 'UpdateTopicConfig', name: 'wide', config: { 'retention.ms': '5' } });
    h.ok({ type: 'DeleteTopic', name: 'wide' });
    h.createTopic('wide', 2, 1);
    const changes = h.sm.backupChangesSince(since);
    expect(changes.deletedTopics).toEqual([{ name: 'wide', topicId: oldId }]);
    expect(changes.topics.map((t) => [t.name, t.topicId])).toEqual([
      ['wide', h.sm.topic('wide')?.topicId],
    ]);
    expect(keys(changes)).toEqual(['wide-0', 'wide-1']);
  });

  it('keeps a table model equal to the state when applying the changes batch after batch (property)', () => {
    fc.assert(
      fc.property(
        sequenceArbitrary,
        fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 1, maxLength: 40 }),
        fc.integer({ min: 2, max: 50 }),
        (intents, gaps, maxEntries) => {
          const sm = new MetadataStateMachine({ changeLog: { maxEntries } });
          const model = new TableModel();
          let sent = 0;
          let nextFlush = 0;
          intents.forEach((intent, i) => {
            const command = materialize(intent, sm, T0 + i * 1000);
            sm.apply(i + 1, command ?? new TextEncoder().encode('{"v":1,"type":"Nope"}'));
            if (i + 1 < nextFlush && i + 1 < intents.length) return;
            const changes = sm.backupChangesSince(sent);
            model.apply(changes);
            sent = changes.version;
            nextFlush = i + 1 + (gaps[i % gaps.length] ?? 1);
            const { version: _version, generation: _generation, ...expected } = sm.toBackupRows();
            expect(model.rows()).toEqual(expected);
          });
        },
      ),
      { numRuns: 150 },
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
