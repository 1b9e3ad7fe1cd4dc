import { createHash } from 'node:crypto';
import { cp, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import type { TestDatabase } from '../../test/test-database';
import { createTestDatabase, queryOnce } from '../../test/test-database';
import { PersistenceError } from '../errors';
import {
  DEFAULT_MIGRATIONS_DIR,
  PRISMA_MIGRATE_ADVISORY_LOCK_KEY,
  migrate,
  migrationChecksum,
  readMigrations,
  scriptMatchesChecksum,
} from './migrate';

interface HistoryRow extends Record<string, unknown> {
  id: string;
  checksum: string;
  finished_at: Date | null;
  migration_name: string;
  logs: string | null;
  rolled_back_at: Date | null;
  started_at: Date;
  applied_steps_count: number;
}

const history = (url: string) =>
  queryOnce<HistoryRow>(
    url,
    'SELECT * FROM _prisma_migrations ORDER BY started_at, migration_name',
  );

function firstOf(names: readonly string[]): string {
  const [first] = names;
  if (first === undefined) throw new Error('expected at least one migration');
  return first;
}

async function expectCode(promise: Promise<unknown>, code: string): Promise<PersistenceError> {
  const error = await promise.then(
    () => {
      throw new Error(`expected a rejection with ${code}`);
    },
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(PersistenceError);
  expect((error as PersistenceError).code).toBe(code);
  return error as PersistenceError;
}

describe('migrate', () => {
  let db: TestDatabase;
  let workDir: string;
  let migrationsDir: string;

  beforeEach(async () => {
    db = await createTestDatabase('migrate');
    workDir = await mkdtemp(path.join(os.tmpdir(), 'dmq-migrations-'));
    migrationsDir = path.join(workDir, 'migrations');
    await cp(DEFAULT_MIGRATIONS_DIR, migrationsDir, { recursive: true });
  });

  afterEach(async () => {
    await db.drop();
    await rm(workDir, { recursive: true, force: true });
  });

  async function addMigration(name: string, script: string): Promise<void> {
    await mkdir(path.join(migrationsDir, name));
    await writeFile(path.join(migrationsDir, name, 'migration.sql'), script);
  }

  it('applies the repository migrations to an empty database and records them as Prisma does', async () => {
    const local = await readMigrations(DEFAULT_MIGRATIONS_DIR);
    expect(local.length).toBeGreaterThan(0);

    const result = await migrate({ databaseUrl: db.url, migrationsDir });

    expect(result).toEqual({ applied: local.map((m) => m.name), alreadyApplied: [] });
    const rows = await history(db.url);
    expect(rows.map((row) => row.migration_name)).toEqual(local.map((m) => m.name));
    for (const [i, row] of rows.entries()) {
      const file = await readFile(path.join(migrationsDir, row.migration_name, 'migration.sql'));
      expect(row.checksum).toBe(createHash('sha256').update(file).digest('hex'));
      expect(row.checksum).toBe(local[i]?.checksum);
      expect(row.id).toMatch(
        /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
      );
      expect(row.finished_at).toBeInstanceOf(Date);
      expect(row.finished_at?.getTime()).toBeGreaterThanOrEqual(row.started_at.getTime());
      expect(row.rolled_back_at).toBeNull();
      expect(row.logs).toBeNull();
      expect(row.applied_steps_count).toBe(1);
    }
    const tables = await queryOnce<{ table_name: string }>(
      db.url,
      `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1`,
    );
    expect(tables.map((t) => t.table_name)).toEqual(
      expect.arrayContaining(['_prisma_migrations', 'brokers', 'topics', 'partitions']),
    );
  });

  it("creates _prisma_migrations with Prisma's exact columns", async () => {
    await migrate({ databaseUrl: db.url, migrationsDir });
    const columns = await queryOnce(
      db.url,
      `SELECT column_name, data_type, character_maximum_length AS length, is_nullable, column_default
       FROM information_schema.columns WHERE table_name = '_prisma_migrations'
       ORDER BY ordinal_position`,
    );
    expect(columns).toEqual([
      {
        column_name: 'id',
        data_type: 'character varying',
        length: 36,
        is_nullable: 'NO',
        column_default: null,
      },
      {
        column_name: 'checksum',
        data_type: 'character varying',
        length: 64,
        is_nullable: 'NO',
        column_default: null,
      },
      {
        column_name: 'finished_at',
        data_type: 'timestamp with time zone',
        length: null,
        is_nullable: 'YES',
        column_default: null,
      },
      {
        column_name: 'migration_name',
        data_type: 'character varying',
        length: 255,
        is_nullable: 'NO',
        column_default: null,
      },
      {
        column_name: 'logs',
        data_type: 'text',
        length: null,
        is_nullable: 'YES',
        column_default: null,
      },
      {
        column_name: 'rolled_back_at',
        data_type: 'timestamp with time zone',
        length: null,
        is_nullable: 'YES',
        column_default: null,
      },
      {
        column_name: 'started_at',
        data_type: 'timestamp with time zone',
        length: null,
        is_nullable: 'NO',
        column_default: 'now()',
      },
      {
        column_name: 'applied_steps_count',
        data_type: 'integer',
        length: null,
        is_nullable: 'NO',
        column_default: '0',
      },
    ]);
  });

  it('is idempotent: a second run applies nothing and records nothing', async () => {
    const first = await migrate({ databaseUrl: db.url, migrationsDir });
    const before = await history(db.url);

    const second = await migrate({ databaseUrl: db.url, migrationsDir });

    expect(second).toEqual({ applied: [], alreadyApplied: first.applied });
    expect(await history(db.url)).toEqual(before);
  });

  it('lets concurrent runners apply each migration exactly once (advisory lock)', async () => {
    const results = await Promise.all([
      migrate({ databaseUrl: db.url, migrationsDir }),
      migrate({ databaseUrl: db.url, migrationsDir }),
      migrate({ databaseUrl: db.url, migrationsDir }),
    ]);
    const local = await readMigrations(migrationsDir);
    const appliedEverywhere = results.flatMap((result) => result.applied).sort();
    expect(appliedEverywhere).toEqual(local.map((m) => m.name).sort());
    expect(await history(db.url)).toHaveLength(local.length);
  });

  it('applies only the new migrations, in name order', async () => {
    await migrate({ databaseUrl: db.url, migrationsDir });
    await addMigration('29990102000000_second', 'ALTER TABLE "brokers" ADD COLUMN "b" INTEGER;\n');
    await addMigration('29990101000000_first', 'ALTER TABLE "brokers" ADD COLUMN "a" INTEGER;\n');

    const result = await migrate({ databaseUrl: db.url, migrationsDir });

    expect(result.applied).toEqual(['29990101000000_first', '29990102000000_second']);
    const columns = await queryOnce<{ column_name: string }>(
      db.url,
      `SELECT column_name FROM information_schema.columns
       WHERE table_name = 'brokers' AND column_name IN ('a', 'b') ORDER BY ordinal_position`,
    );
    expect(columns.map((c) => c.column_name)).toEqual(['a', 'b']);
  });

  it('refuses to run when an applied migration was modified, and changes nothing', async () => {
    const { applied } = await migrate({ databaseUrl: db.url, migrationsDir });
    const name = firstOf(applied);
    const file = path.join(migrationsDir, name, 'migration.sql');
    await writeFile(file, `${await readFile(file, 'utf8')}-- an innocent-looking edit\n`);
    await addMigration('29990101000000_next', 'CREATE TABLE "must_not_exist" ("x" INTEGER);\n');
    const before = await history(db.url);

    const error = await expectCode(
      migrate({ databaseUrl: db.url, migrationsDir }),
      'persistence/migration-checksum-mismatch',
    );

    expect(error.message).toContain(name);
    expect(await history(db.url)).toEqual(before);
    expect(await queryOnce(db.url, `SELECT to_regclass('must_not_exist') AS t`)).toEqual([
      { t: null },
    ]);
  });

  it('accepts an applied migration whose only change is its line endings (as Prisma does)', async () => {
    const { applied } = await migrate({ databaseUrl: db.url, migrationsDir });
    const file = path.join(migrationsDir, firstOf(applied), 'migration.sql');
    await writeFile(file, (await readFile(file, 'utf8')).replace(/\n/g, '\r\n'));

    await expect(migrate({ databaseUrl: db.url, migrationsDir })).resolves.toEqual({
      applied: [],
      alreadyApplied: applied,
    });
  });

  it('rolls a failing migration back, records it as failed, and refuses later runs until resolved', async () => {
    await migrate({ databaseUrl: db.url, migrationsDir });
    const name = '29990101000000_broken';
    await addMigration(
      name,
      'CREATE TABLE "half_done" ("x" INTEGER);\nALTER TABLE "no_such_table" ADD COLUMN "y" INTEGER;\n',
    );

    const failure = await expectCode(
      migrate({ databaseUrl: db.url, migrationsDir }),
      'persistence/migration-failed',
    );
    expect(failure.message).toContain('no_such_table');

    // Nothing of it remains, and the failure is recorded the way Prisma records one.
    expect(await queryOnce(db.url, `SELECT to_regclass('half_done') AS t`)).toEqual([{ t: null }]);
    const failed = (await history(db.url)).find((row) => row.migration_name === name);
    expect(failed).toMatchObject({
      finished_at: null,
      rolled_back_at: null,
      applied_steps_count: 0,
    });
    expect(failed?.logs).toContain('no_such_table');

    // Fixing the file is not enough: an operator must resolve the recorded failure first.
    await writeFile(
      path.join(migrationsDir, name, 'migration.sql'),
      'CREATE TABLE "half_done" ("x" INTEGER);\n',
    );
    const refusal = await expectCode(
      migrate({ databaseUrl: db.url, migrationsDir }),
      'persistence/migration-failed-previously',
    );
    expect(refusal.message).toContain(name);
    expect(refusal.message).toContain('prisma migrate resolve --rolled-back');

    // What `prisma migrate resolve --rolled-back <name>` does:
    await queryOnce(
      db.url,
      'UPDATE _prisma_migrations SET rolled_back_at = now() WHERE migration_name = $1',
      [name],
    );
    await expect(migrate({ databaseUrl: db.url, migrationsDir })).resolves.toMatchObject({
      applied: [name],
    });
    expect(await queryOnce(db.url, `SELECT to_regclass('half_done')::text AS t`)).toEqual([
      { t: 'half_done' },
    ]);
  });

  it('gives up with a clear error when another migrator holds the lock', async () => {
    const holder = new Client({ connectionString: db.url });
    await holder.connect();
    try {
      await holder.query('SELECT pg_advisory_lock($1)', [PRISMA_MIGRATE_ADVISORY_LOCK_KEY]);
      await expectCode(
        migrate({ databaseUrl: db.url, migrationsDir, lockTimeoutMs: 200 }),
        'persistence/migration-lock-timeout',
      );
      expect(await queryOnce(db.url, `SELECT to_regclass('_prisma_migrations') AS t`)).toEqual([
        { t: null },
      ]);
    } finally {
      await holder.end();
    }
    await expect(migrate({ databaseUrl: db.url, migrationsDir })).resolves.toMatchObject({
      alreadyApplied: [],
    });
  });

  it('refuses a non-empty database that has no migration history (Prisma P3005)', async () => {
    await queryOnce(db.url, 'CREATE TABLE "brokers" ("id" INTEGER)');
    const error = await expectCode(
      migrate({ databaseUrl: db.url, migrationsDir }),
      'persistence/missing-migrations',
    );
    expect(error.message).toContain('brokers');
  });

  it('refuses a missing migrations directory and a ?schema= URL', async () => {
    await expectCode(
      migrate({ databaseUrl: db.url, migrationsDir: path.join(workDir, 'nope') }),
      'persistence/missing-migrations',
    );
    await expectCode(
      migrate({ databaseUrl: `${db.url}?schema=other`, migrationsDir }),
      'persistence/invalid-options',
    );
  });

  it('ships a migration_lock.toml for postgresql next to the migrations', async () => {
    const entries = await readdir(DEFAULT_MIGRATIONS_DIR);
    expect(entries).toContain('migration_lock.toml');
    expect(
      await readFile(path.join(DEFAULT_MIGRATIONS_DIR, 'migration_lock.toml'), 'utf8'),
    ).toMatch(/^provider = "postgresql"$/m);
  });
});

describe('migration checksums', () => {
  it("match Prisma's: lowercase, zero-padded hex SHA-256", () => {
    // The vector of schema-engine's own checksum test.
    expect(migrationChecksum('hello')).toBe(
      '2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824',
    );
  });

  it('compare like Prisma: line endings and unpadded legacy checksums do not matter', () => {
    const unix = 'ab\ncd\n';
    const windows = 'ab\r\ncd\r\n';
    expect(scriptMatchesChecksum(windows, migrationChecksum(unix))).toBe(true);
    expect(scriptMatchesChecksum(unix, migrationChecksum(windows))).toBe(true);
    expect(scriptMatchesChecksum('abc', migrationChecksum('abcd'))).toBe(false);

    const digest = createHash('sha256').update('hello').digest();
    const legacy = Array.from(digest, (byte) => byte.toString(16)).join('');
    expect(legacy.length).toBeLessThan(64);
    expect(scriptMatchesChecksum('hello', legacy)).toBe(true);
  });
});
