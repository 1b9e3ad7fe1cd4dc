// Applies the pending migrations of prisma/migrations to the backup database:
//
//   tsx libs/persistence-prisma/src/migrations/cli.ts [--database-url <url>] [--migrations-dir <dir>]
//
// The URL comes from --database-url, else DATABASE_URL, else the contract's default. Logs are
// JSON lines on stdout; the exit code is 0 on success, 1 on any failure (with the reason).
// This file is an executable entry point like the app's main.ts, not library code: it is the
// one place of this library that reads the environment.
import type { Logger } from '../logger';
import { isPersistenceError } from '../errors';
import { migrate } from './migrate';

const DEFAULT_DATABASE_URL = 'postgresql://dmq_user:dmq_password@localhost:5432/dmq_metadata';

const USAGE =
  'usage: tsx libs/persistence-prisma/src/migrations/cli.ts ' +
  '[--database-url <url>] [--migrations-dir <dir>]';

interface CliArguments {
  databaseUrl?: string;
  migrationsDir?: string;
}

function parseArguments(argv: readonly string[]): CliArguments {
  const parsed: CliArguments = {};
  for (let i = 0; i < argv.length; i += 1) {
    const flag = argv[i];
    const value = argv[i + 1];
    if ((flag === '--database-url' || flag === '--migrations-dir') && value !== undefined) {
      if (flag === '--database-url') parsed.databaseUrl = value;
      else parsed.migrationsDir = value;
      i += 1;
    } else {
      throw new Error(`unexpected argument ${JSON.stringify(flag)}\n${USAGE}`);
    }
  }
  return parsed;
}

function jsonLineLogger(stream: NodeJS.WritableStream): Logger {
  const write =
    (level: string) =>
    (fields: Record<string, unknown>, message: string): void => {
      stream.write(
        `${JSON.stringify({ level, time: new Date().toISOString(), ...fields, msg: message })}\n`,
      );
    };
  return { debug: write('debug'), info: write('info'), warn: write('warn'), error: write('error') };
}

/** Redacts the password of a URL for logs. */
function redact(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '<unparsable URL>';
  }
}

async function main(): Promise<number> {
  const logger = jsonLineLogger(process.stdout);
  let args: CliArguments;
  try {
    args = parseArguments(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n`);
    return 2;
  }
  const databaseUrl =
    args.databaseUrl ??
    // eslint-disable-next-line no-restricted-properties -- executable entry point (see top)
    process.env['DATABASE_URL'] ??
    DEFAULT_DATABASE_URL;
  logger.info({ database: redact(databaseUrl) }, 'Migrating the backup database');
  try {
    await migrate({
      databaseUrl,
      logger,
      ...(args.migrationsDir === undefined ? {} : { migrationsDir: args.migrationsDir }),
    });
    return 0;
  } catch (error) {
    const code = isPersistenceError(error) ? error.code : undefined;
    logger.error(
      { code, error: error instanceof Error ? error.message : String(error) },
      'Migration failed',
    );
    return 1;
  }
}

void main().then((exitCode) => {
  process.exitCode = exitCode;
});
