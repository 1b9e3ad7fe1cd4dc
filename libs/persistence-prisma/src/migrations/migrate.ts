import { createHash, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { Client } from 'pg';
import type { DatabaseError } from 'pg';
import { PersistenceError } from '../errors';
import type { Logger } from '../logger';
import { silentLogger } from '../logger';

/**
 * The advisory-lock key of Prisma Migrate (schema-engine's postgres flavour). Using the same
 * key makes this runner and `prisma migrate deploy` exclude each other.
 */
export const PRISMA_MIGRATE_ADVISORY_LOCK_KEY = 72707369;

/** Prisma's own DDL for its history table (schema-engine, postgres flavour), verbatim. */
const CREATE_MIGRATIONS_TABLE = `CREATE TABLE _prisma_migrations (
    id                      VARCHAR(36) PRIMARY KEY NOT NULL,
    checksum                VARCHAR(64) NOT NULL,
    finished_at             TIMESTAMPTZ,
    migration_name          VARCHAR(255) NOT NULL,
    logs                    TEXT,
    rolled_back_at          TIMESTAMPTZ,
    started_at              TIMESTAMPTZ NOT NULL DEFAULT now(),
    applied_steps_count     INTEGER NOT NULL DEFAULT 0
);
`;

/** The repository's `prisma/migrations`, from `src/migrations` or `dist/migrations` alike. */
export const DEFAULT_MIGRATIONS_DIR = path.resolve(__dirname, '../../../../prisma/migrations');

/** Options of {@link migrate}. */
export interface MigrateOptions {
  /**
   * PostgreSQL URL, e.g. `postgresql://dmq_user:dmq_password@localhost:5432/dmq_metadata`.
   * Tables go to the connection's `current_schema()` (normally `public`); Prisma's `?schema=`
   * parameter is refused because raw SQL would not honour it (use
   * `?options=-c%20search_path%3D<name>` instead).
   */
  databaseUrl: string;
  /** A folder in Prisma's layout (`<name>/migration.sql`). Default: the repo's `prisma/migrations`. */
  migrationsDir?: string;
  /** How long to wait for another migrator to release the lock. Default: 10 000 ms (Prisma's). */
  lockTimeoutMs?: number;
  logger?: Logger;
}

/** What {@link migrate} did. */
export interface MigrateResult {
  /** Migrations applied by this call, in order. */
  applied: string[];
  /** Migrations found already applied, whose checksums were verified. */
  alreadyApplied: string[];
}

/** One migration folder of the migrations directory. */
export interface LocalMigration {
  name: string;
  script: string;
  /** Prisma's checksum of `script`: lowercase hex SHA-256 of its bytes. */
  checksum: string;
}

interface MigrationRecord {
  migration_name: string;
  checksum: string;
  finished_at: Date | null;
  rolled_back_at: Date | null;
  logs: string | null;
}

/** Prisma's checksum of a migration script: SHA-256 of its UTF-8 bytes, 64 lowercase hex digits. */
export function migrationChecksum(script: string): string {
  return createHash('sha256').update(script, 'utf8').digest('hex');
}

/**
 * Whether `script` matches a recorded checksum the way Prisma decides it: line endings do not
 * matter (a checkout on Windows), and old Prisma versions wrote hex digits without zero padding.
 */
export function scriptMatchesChecksum(script: string, checksum: string): boolean {
  const variants = [script, script.replace(/\r\n/g, '\n'), script.replace(/\n/g, '\r\n')];
  return variants.some((variant) => {
    const digest = createHash('sha256').update(variant, 'utf8').digest();
    const rendered =
      checksum.length === 64
        ? digest.toString('hex')
        : Array.from(digest, (byte) => byte.toString(16)).join('');
    return rendered === checksum;
  });
}

/** Reads the migrations of a Prisma migrations folder, sorted by name as Prisma sorts them. */
export async function readMigrations(migrationsDir: string): Promise<LocalMigration[]> {
  if (!existsSync(migrationsDir)) {
    throw new PersistenceError(
      'persistence/missing-migrations',
      `No migrations directory at ${migrationsDir}`,
    );
  }
  const lockFile = path.join(migrationsDir, 'migration_lock.toml');
  if (existsSync(lockFile)) {
    const provider = /^\s*provider\s*=\s*"([^"]*)"/m.exec(await readFile(lockFile, 'utf8'))?.[1];
    if (provider !== 'postgresql') {
      throw new PersistenceError(
        'persistence/missing-migrations',
        `${lockFile} names provider "${provider ?? ''}", not "postgresql"`,
      );
    }
  }
  const entries = await readdir(migrationsDir, { withFileTypes: true });
  const names = entries
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name)
    .sort();
  const migrations: LocalMigration[] = [];
  for (const name of names) {
    const file = path.join(migrationsDir, name, 'migration.sql');
    if (!existsSync(file)) continue; // Prisma ignores folders without a migration.sql too.
    const script = await readFile(file, 'utf8');
    migrations.push({ name, script, checksum: migrationChecksum(script) });
  }
  return migrations;
}

/**
 * Applies the pending migrations of a Prisma migrations folder to PostgreSQL, as
 * `prisma migrate deploy` would, without Prisma's schema engine (which this runtime cannot
 * download): same advisory lock, same `_prisma_migrations` table and rows, same checksums, so
 * `prisma migrate status/deploy/resolve` keep working on the database afterwards.
 *
 * Differences from Prisma, on purpose: each migration runs in one transaction with its history
 * row (so a failed migration leaves nothing half-applied), and the run is refused when an
 * applied migration's file has changed since (Prisma's deploy only warns).
 *
 * @throws {PersistenceError} `persistence/migration-checksum-mismatch` when an applied
 *   migration's file changed; `persistence/migration-failed-previously` when a failed migration
 *   is recorded and not resolved; `persistence/migration-failed` when a migration fails now (it
 *   is rolled back and recorded as failed); `persistence/migration-lock-timeout` when another
 *   migrator holds the lock longer than `lockTimeoutMs`; `persistence/missing-migrations` when
 *   the folder is missing or the database has tables but no migration history.
 */
export async function migrate(options: MigrateOptions): Promise<MigrateResult> {
  const logger = options.logger ?? silentLogger;
  const migrationsDir = options.migrationsDir ?? DEFAULT_MIGRATIONS_DIR;
  const lockTimeoutMs = options.lockTimeoutMs ?? 10_000;
  if (!Number.isInteger(lockTimeoutMs) || lockTimeoutMs <= 0) {
    throw new PersistenceError(
      'persistence/invalid-options',
      `lockTimeoutMs must be a positive integer, got ${lockTimeoutMs}`,
    );
  }
  assertNoSchemaParameter(options.databaseUrl);
  const local = await readMigrations(migrationsDir);

  const client = new Client({ connectionString: options.databaseUrl });
  await client.connect();
  try {
    await acquireLock(client, lockTimeoutMs);
    try {
      const records = await loadHistory(client, local.length > 0);
      const alreadyApplied = verifyHistory(local, records, logger);
      const appliedNames = new Set(alreadyApplied);
      const applied: string[] = [];
      for (const migration of local) {
        if (appliedNames.has(migration.name)) continue;
        await applyOne(client, migration, logger);
        applied.push(migration.name);
      }
      logger.info(
        { applied: applied.length, alreadyApplied: alreadyApplied.length },
        applied.length > 0 ? 'Database migrations applied' : 'Database schema is up to date',
      );
      return { applied, alreadyApplied };
    } finally {
      // Ending the session releases the lock anyway; unlocking first is only courtesy, and
      // its failure must not hide the error that got us here.
      await client
        .query('SELECT pg_advisory_unlock($1)', [PRISMA_MIGRATE_ADVISORY_LOCK_KEY])
        .catch(() => undefined);
    }
  } finally {
    await client.end();
  }
}

function assertNoSchemaParameter(databaseUrl: string): void {
  let url: URL;
  try {
    url = new URL(databaseUrl);
  } catch (error) {
    throw new PersistenceError('persistence/invalid-options', 'databaseUrl is not a valid URL', {
      cause: error,
    });
  }
  if (url.searchParams.has('schema')) {
    throw new PersistenceError(
      'persistence/invalid-options',
      'databaseUrl must not carry ?schema= (raw SQL ignores it); select a schema with ' +
        '?options=-c%20search_path%3D<name>',
    );
  }
}

async function acquireLock(client: Client, lockTimeoutMs: number): Promise<void> {
  // lock_timeout bounds the wait for the advisory lock (a heavyweight lock) without polling.
  await client.query(`SET lock_timeout = ${lockTimeoutMs}`);
  try {
    await client.query('SELECT pg_advisory_lock($1)', [PRISMA_MIGRATE_ADVISORY_LOCK_KEY]);
  } catch (error) {
    if ((error as DatabaseError).code === '55P03') {
      throw new PersistenceError(
        'persistence/migration-lock-timeout',
        `Another migrator held the migration lock for more than ${lockTimeoutMs} ms`,
        { cause: error },
      );
    }
    throw error;
  } finally {
    await client.query('RESET lock_timeout');
  }
}

/** Creates `_prisma_migrations` when absent (refusing a non-empty database without history). */
async function loadHistory(client: Client, haveMigrations: boolean): Promise<MigrationRecord[]> {
  const tables = await client.query<{ table_name: string }>(
    `SELECT table_name FROM information_schema.tables
     WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'`,
  );
  const names = tables.rows.map((row) => row.table_name);
  if (!names.includes('_prisma_migrations')) {
    if (names.length > 0 && haveMigrations) {
      throw new PersistenceError(
        'persistence/missing-migrations',
        `The database schema is not empty (${names.sort().join(', ')}) and has no migration ` +
          'history: baseline it first (`prisma migrate resolve --applied <name>`), as Prisma ' +
          'requires (P3005)',
      );
    }
    await client.query(CREATE_MIGRATIONS_TABLE);
    return [];
  }
  const result = await client.query<MigrationRecord>(
    `SELECT migration_name, checksum, finished_at, rolled_back_at, logs
     FROM _prisma_migrations ORDER BY started_at, migration_name`,
  );
  return result.rows;
}

/** Returns the names of the applied migrations; throws on a failed or modified one. */
function verifyHistory(
  local: readonly LocalMigration[],
  records: readonly MigrationRecord[],
  logger: Logger,
): string[] {
  const byName = new Map(local.map((migration) => [migration.name, migration]));
  // A rolled-back row is history only: the migration counts as not applied (Prisma's rule).
  const live = records.filter((record) => record.rolled_back_at === null);

  const failed = live.filter((record) => record.finished_at === null);
  if (failed.length > 0) {
    const details = failed
      .map((record) => `- ${record.migration_name}${record.logs ? `: ${record.logs}` : ''}`)
      .join('\n');
    throw new PersistenceError(
      'persistence/migration-failed-previously',
      `A failed migration is recorded in _prisma_migrations; no migration is applied until it ` +
        `is resolved:\n${details}\nFix the cause, then mark it with ` +
        '`npx prisma migrate resolve --rolled-back <name> --config prisma/prisma.config.ts` ' +
        '(this runner applies each migration in a transaction, so a failure leaves nothing ' +
        'behind) or `--applied <name>` if it was completed by hand.',
    );
  }

  const applied: string[] = [];
  for (const record of live) {
    const migration = byName.get(record.migration_name);
    if (!migration) {
      logger.warn(
        { migration: record.migration_name },
        'A migration applied to the database is missing from the migrations directory',
      );
      continue;
    }
    if (!scriptMatchesChecksum(migration.script, record.checksum)) {
      throw new PersistenceError(
        'persistence/migration-checksum-mismatch',
        `Migration ${record.migration_name} was modified after it was applied (recorded ` +
          `checksum ${record.checksum}, file checksum ${migration.checksum}). Applied ` +
          'migrations must never change: restore the file and add a new migration instead.',
      );
    }
    applied.push(record.migration_name);
  }
  return applied;
}

async function applyOne(client: Client, migration: LocalMigration, logger: Logger): Promise<void> {
  const id = randomUUID();
  logger.info({ migration: migration.name }, 'Applying database migration');
  await client.query('BEGIN');
  try {
    await client.query(migration.script);
    await client.query(
      `INSERT INTO _prisma_migrations
         (id, checksum, finished_at, migration_name, logs, rolled_back_at, started_at, applied_steps_count)
       VALUES ($1, $2, clock_timestamp(), $3, NULL, NULL, now(), 1)`,
      [id, migration.checksum, migration.name],
    );
    await client.query('COMMIT');
  } catch (error) {
    const logs = describeFailure(error);
    try {
      await client.query('ROLLBACK');
      // Recorded like Prisma records a failure, so `prisma migrate status` shows it and every
      // later run stops until an operator resolves it.
      await client.query(
        `INSERT INTO _prisma_migrations
           (id, checksum, finished_at, migration_name, logs, rolled_back_at, started_at, applied_steps_count)
         VALUES ($1, $2, NULL, $3, $4, NULL, now(), 0)`,
        [id, migration.checksum, migration.name, logs],
      );
    } catch (recordError) {
      // The connection is gone: the server rolled the transaction back by itself.
      logger.error(
        { migration: migration.name, error: describeFailure(recordError) },
        'Could not record the failed database migration',
      );
    }
    logger.error({ migration: migration.name, error: logs }, 'Database migration failed');
    throw new PersistenceError(
      'persistence/migration-failed',
      `Migration ${migration.name} failed and was rolled back: ${logs}`,
      { cause: error },
    );
  }
}

function describeFailure(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as Partial<DatabaseError>).code;
    const position = (error as Partial<DatabaseError>).position;
    return [
      code ? `Database error code: ${code}` : undefined,
      error.message,
      position ? `(at character ${position} of migration.sql)` : undefined,
    ]
      .filter((part) => part !== undefined)
      .join('\n');
  }
  return String(error);
}
