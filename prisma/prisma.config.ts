// Prisma CLI configuration (Prisma 7). Paths are relative to this file. Use it with
// `npx prisma <command> --config prisma/prisma.config.ts`. `prisma generate` needs no database;
// `migrate status|deploy|resolve` use DATABASE_URL (default: the contract's URL) and need
// Prisma's schema engine, which is downloaded on first use (not possible offline: there,
// libs/persistence-prisma's migrate() applies the migrations instead).
import { defineConfig } from 'prisma/config';

export default defineConfig({
  schema: 'schema.prisma',
  migrations: { path: 'migrations' },
  datasource: {
    url:
      process.env['DATABASE_URL'] ??
      'postgresql://dmq_user:dmq_password@localhost:5432/dmq_metadata',
  },
});
