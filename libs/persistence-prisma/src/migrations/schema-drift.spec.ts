import type { TestDatabase } from '../../test/test-database';
import { createTestDatabase, queryOnce } from '../../test/test-database';
import { actualFacts, describeDrift, expectedFacts, loadDatamodel } from '../../test/schema-drift';
import { migrate } from './migrate';

describe('schema.prisma and prisma/migrations', () => {
  let db: TestDatabase;

  beforeAll(async () => {
    db = await createTestDatabase('drift');
    await migrate({ databaseUrl: db.url });
  });

  afterAll(async () => {
    await db.drop();
  });

  it('describe the same database: tables, columns, types, nullability, defaults, keys, indexes', async () => {
    const expected = expectedFacts(await loadDatamodel());
    const actual = await actualFacts(db.url);

    expect(describeDrift(expected, actual)).toBe('');
    // Guard against a vacuous pass: every model's table and columns were compared.
    expect(expected).toEqual(
      expect.arrayContaining([
        'table partitions',
        'column partitions.replica_ids integer[]',
        'column partitions.raft_index bigint NOT NULL',
        'column topics.created_at timestamp(6) with time zone NOT NULL',
        'index partitions_topic_name_partition_id_key UNIQUE ON partitions (topic_name, partition_id)',
        'index backup_state_pkey PRIMARY KEY ON backup_state (id)',
      ]),
    );
  });

  it('would report a drifted database, naming what differs', async () => {
    const drifted = await createTestDatabase('drift_neg');
    try {
      await migrate({ databaseUrl: drifted.url });
      await queryOnce(
        drifted.url,
        `ALTER TABLE partitions ALTER COLUMN leader_epoch DROP DEFAULT;
         ALTER TABLE brokers ADD COLUMN zone TEXT;
         DROP INDEX topics_topic_id_key;`,
      );

      const report = describeDrift(
        expectedFacts(await loadDatamodel()),
        await actualFacts(drifted.url),
      );

      expect(report).toContain('  - column partitions.leader_epoch integer NOT NULL DEFAULT 0');
      expect(report).toContain('  + column partitions.leader_epoch integer NOT NULL');
      expect(report).toContain('  + column brokers.zone text');
      expect(report).toContain('  - index topics_topic_id_key UNIQUE ON topics (topic_id)');
    } finally {
      await drifted.drop();
    }
  });
});
