import { randomBytes } from 'node:crypto';
import { Client } from 'pg';

/**
 * The PostgreSQL that tests use to create throwaway databases: `DMQ_TEST_DATABASE_URL`, else
 * `DATABASE_URL`, else the contract's default. Its role needs CREATEDB.
 */
export const ADMIN_DATABASE_URL =
  process.env['DMQ_TEST_DATABASE_URL'] ??
  process.env['DATABASE_URL'] ??
  'postgresql://dmq_user:dmq_password@localhost:5432/dmq_metadata';

/** The Redis that queue tests use (unique queue names per test keep them apart). */
export const TEST_REDIS_URL = process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379';

/** A database created for one test file, dropped by {@link TestDatabase.drop}. */
export interface TestDatabase {
  name: string;
  url: string;
  drop(): Promise<void>;
}

async function withAdmin<T>(run: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: ADMIN_DATABASE_URL });
  await client.connect();
  try {
    return await run(client);
  } finally {
    await client.end();
  }
}

/**
 * Creates an empty database with a unique name (`dmq_test_<label>_<random>`), so test files
 * can run in parallel against one server.
 */
export async function createTestDatabase(label: string): Promise<TestDatabase> {
  const safeLabel = label
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .slice(0, 30);
  const name = `dmq_test_${safeLabel}_${randomBytes(5).toString('hex')}`;
  await withAdmin((client) => client.query(`CREATE DATABASE "${name}"`));
  const url = new URL(ADMIN_DATABASE_URL);
  url.pathname = `/${name}`;
  return {
    name,
    url: url.toString(),
    drop: () =>
      withAdmin(async (client) => {
        await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      }),
  };
}

/** Runs one query on `url` in a short-lived connection. */
export async function queryOnce<Row extends Record<string, unknown>>(
  url: string,
  sql: string,
  params: unknown[] = [],
): Promise<Row[]> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<Row>(sql, params)).rows;
  } finally {
    await client.end();
  }
}
