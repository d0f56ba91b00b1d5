// Prisma 7 CLI configuration. Prisma 7 no longer reads `url` from schema.prisma nor loads `.env`
// by itself: the datasource URL comes from DATABASE_URL here (same default as src/config.ts).
//
// On machines without Prisma's native schema engine (see /work/shared/FACTS.md) only
// `PRISMA_SCHEMA_ENGINE_BINARY=/bin/false prisma generate` works (`npm run db:generate`);
// migrations are applied by `npm run db:migrate` (src/infra/prisma/migrate.ts), which keeps
// `_prisma_migrations` compatible with `prisma migrate deploy`.
import { defineConfig } from 'prisma/config';

export default defineConfig({
  schema: 'prisma/schema.prisma',
  migrations: { path: 'prisma/migrations' },
  datasource: {
    url: process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/firstcome',
  },
});
