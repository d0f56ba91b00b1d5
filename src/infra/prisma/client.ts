import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from '../../generated/prisma/client.js';
import { parseDatabaseUrl, pgConfig } from './database.js';

/**
 * The Prisma client of the read model. Prisma 7 has no Rust query engine: the client compiles
 * queries in WebAssembly and runs them through the `pg` driver adapter, so nothing native is needed.
 * Generate it first with `npm run db:generate` (into src/generated/prisma, git-ignored).
 */

export * from '../../generated/prisma/client.js';

export interface CreatePrismaOptions {
  /** maximum connections of the adapter's pg pool (pg's default: 10) */
  poolSize?: number;
}

/**
 * A client for `databaseUrl`. Isolation by database name works as is; isolation by schema uses
 * Prisma's `?schema=name` URL parameter: the adapter then qualifies every table with the schema and
 * each pooled connection gets it as its search_path (so `$queryRaw` finds the tables too).
 * Call `$disconnect()` when done: it ends the pool.
 */
export function createPrisma(databaseUrl: string, options: CreatePrismaOptions = {}): PrismaClient {
  const { schema } = parseDatabaseUrl(databaseUrl);
  const config = pgConfig(databaseUrl, options.poolSize ? { max: options.poolSize } : {});
  const adapter = new PrismaPg(config, schema ? { schema } : undefined);
  return new PrismaClient({ adapter });
}
