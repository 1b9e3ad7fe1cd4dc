import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from '../generated/prisma/client';
import { PersistenceError } from '../errors';
import type { Logger } from '../logger';
import { silentLogger } from '../logger';

/** The Prisma client of the backup database (generated from prisma/schema.prisma). */
export type BackupPrismaClient = PrismaClient;

/** Options of {@link createPrismaClient}. */
export interface CreatePrismaClientOptions {
  /** PostgreSQL URL, e.g. `postgresql://dmq_user:dmq_password@localhost:5432/dmq_metadata`. */
  databaseUrl: string;
  /** Most pooled connections. Default 5: the backup writer serialises its writes anyway. */
  maxConnections?: number;
  /** How long to wait for a new connection before failing the query. Default 5 000 ms. */
  connectionTimeoutMs?: number;
  /** Idle pooled connections are closed after this long. Default 30 000 ms. */
  idleTimeoutMs?: number;
  /** Receives pool errors (a dropped idle connection), which must never crash the process. */
  logger?: Logger;
}

/**
 * Builds the process's one Prisma client for the backup database, on `@prisma/adapter-pg`
 * (Prisma 7 runs without Rust engines). The app builds it once, injects it, and calls
 * `$disconnect()` on shutdown (after the backup worker and queue have closed).
 */
export function createPrismaClient(options: CreatePrismaClientOptions): BackupPrismaClient {
  const logger = options.logger ?? silentLogger;
  const maxConnections = options.maxConnections ?? 5;
  const connectionTimeoutMs = options.connectionTimeoutMs ?? 5_000;
  const idleTimeoutMs = options.idleTimeoutMs ?? 30_000;
  for (const [name, value] of Object.entries({
    maxConnections,
    connectionTimeoutMs,
    idleTimeoutMs,
  })) {
    if (!Number.isInteger(value) || value <= 0) {
      throw new PersistenceError(
        'persistence/invalid-options',
        `${name} must be a positive integer, got ${value}`,
      );
    }
  }
  if (!options.databaseUrl) {
    throw new PersistenceError('persistence/invalid-options', 'databaseUrl is required');
  }
  const adapter = new PrismaPg(
    {
      connectionString: options.databaseUrl,
      max: maxConnections,
      connectionTimeoutMillis: connectionTimeoutMs,
      idleTimeoutMillis: idleTimeoutMs,
    },
    {
      onPoolError: (error) =>
        logger.warn({ error: error.message }, 'Backup database pool connection failed'),
      onConnectionError: (error) =>
        logger.warn({ error: error.message }, 'Backup database connection failed'),
    },
  );
  return new PrismaClient({ adapter });
}
