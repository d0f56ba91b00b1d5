import { randomBytes } from 'node:crypto';
import { dropDatabase, ensureDatabase } from '../../src/infra/prisma/database.js';
import { migrate } from '../../src/infra/prisma/migrate.js';

/**
 * A throw-away, fully migrated database for an integration test:
 *
 *   const db = await freshDatabase('projector');   // fc_test_projector_<random>
 *   const prisma = createPrisma(db.url);
 *   …
 *   await prisma.$disconnect(); await db.drop();
 *
 * It lives on the server of DATABASE_URL (default: the local PostgreSQL, user postgres).
 */
export interface FreshDatabase {
  /** postgresql:// URL of the new database */
  url: string;
  /** its name */
  name: string;
  /** drops it, closing any connection still open (idempotent) */
  drop(): Promise<void>;
}

const BASE_URL = 'postgresql://postgres@127.0.0.1:5432/firstcome';

function newDatabaseUrl(name: string): { url: string; dbName: string } {
  const slug =
    name
      .toLowerCase()
      .replace(/[^a-z0-9_]+/g, '_')
      .replace(/^_+|_+$/g, '')
      .slice(0, 32) || 'db';
  const dbName = `fc_test_${slug}_${randomBytes(5).toString('hex')}`;
  const u = new URL(process.env.DATABASE_URL || BASE_URL);
  u.pathname = `/${dbName}`;
  u.searchParams.delete('schema');
  return { url: u.toString(), dbName };
}

/** A new database with nothing in it, as `createdb` (or `stack:up`) leaves one: no migration applied. */
export async function emptyDatabase(name: string): Promise<FreshDatabase> {
  const { url, dbName } = newDatabaseUrl(name);
  await ensureDatabase(url);
  return { url, name: dbName, drop: () => dropDatabase(url) };
}

export async function freshDatabase(name: string): Promise<FreshDatabase> {
  const { url, dbName } = newDatabaseUrl(name);
  const drop = (): Promise<void> => dropDatabase(url);
  try {
    await migrate(url);
  } catch (err) {
    await drop().catch(() => {});
    throw err;
  }
  return { url, name: dbName, drop };
}
