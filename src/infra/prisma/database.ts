import pg from 'pg';

/**
 * Helpers around a PostgreSQL connection URL, shared by the Prisma client, the migration runner and
 * the tests. A URL may isolate by database name (`…/fc_test_x`) and/or by schema
 * (`…/firstcome?schema=test_x`, Prisma's convention); `pg` itself knows no `schema` parameter, so
 * it is taken out of the URL and turned into a `search_path` for every connection.
 */

export interface DatabaseTarget {
  /** database name from the URL path */
  database: string;
  /** `?schema=` of the URL, or undefined (then the server's search_path applies, i.e. `public`) */
  schema: string | undefined;
  /** the URL without the `schema` parameter: what `pg` should get */
  connectionString: string;
}

const IDENT = /^[A-Za-z_][A-Za-z0-9_$-]{0,62}$/;

export function parseDatabaseUrl(url: string): DatabaseTarget {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error('DATABASE_URL is not a valid URL');
  }
  if (u.protocol !== 'postgresql:' && u.protocol !== 'postgres:') {
    throw new Error(`DATABASE_URL must be a postgresql:// URL, got ${u.protocol}//…`);
  }
  const database = decodeURIComponent(u.pathname.replace(/^\//, ''));
  if (!database) throw new Error('DATABASE_URL names no database');
  const schema = u.searchParams.get('schema') ?? undefined;
  if (schema !== undefined && !IDENT.test(schema)) {
    throw new Error(`DATABASE_URL ?schema=${schema} is not a plain identifier`);
  }
  u.searchParams.delete('schema');
  return { database, schema: schema || undefined, connectionString: u.toString() };
}

/** Double-quotes an SQL identifier. */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/**
 * `pg` pool/client config for a URL: the `schema` parameter becomes the connection's search_path
 * (as Prisma's own engine does), so raw SQL and the migration runner find the tables too.
 */
export function pgConfig(url: string, extra: pg.PoolConfig = {}): pg.PoolConfig {
  const t = parseDatabaseUrl(url);
  const config: pg.PoolConfig = { connectionString: t.connectionString, ...extra };
  if (t.schema) config.options = `-c search_path=${t.schema}`;
  return config;
}

/** The same server's maintenance database, to create or drop `url`'s database from. */
function adminUrl(url: string, adminDb: string): string {
  const u = new URL(parseDatabaseUrl(url).connectionString);
  u.pathname = `/${adminDb}`;
  return u.toString();
}

async function withAdmin<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  let lastError: unknown;
  for (const db of ['postgres', 'template1']) {
    const client = new pg.Client({ connectionString: adminUrl(url, db) });
    try {
      await client.connect();
    } catch (err) {
      lastError = err;
      await client.end().catch(() => {});
      continue;
    }
    try {
      return await fn(client);
    } finally {
      await client.end().catch(() => {});
    }
  }
  throw lastError;
}

function pgCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : undefined;
}

/**
 * Creates the URL's database when it does not exist yet (through the server's `postgres`
 * database). Safe to call from several processes at once. Returns true when it created it.
 */
export async function ensureDatabase(url: string): Promise<boolean> {
  const { database } = parseDatabaseUrl(url);
  // The common case first: the database is there and we may connect to it.
  const probe = new pg.Client({ connectionString: parseDatabaseUrl(url).connectionString });
  try {
    await probe.connect();
    return false;
  } catch (err) {
    if (pgCode(err) !== '3D000') throw err; // 3D000 invalid_catalog_name: database does not exist
  } finally {
    await probe.end().catch(() => {});
  }
  return withAdmin(url, async (admin) => {
    const found = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (found.rowCount) return false;
    try {
      await admin.query(`CREATE DATABASE ${quoteIdent(database)}`);
      return true;
    } catch (err) {
      // Someone else created it between our check and our CREATE.
      if (pgCode(err) === '42P04' || pgCode(err) === '23505') return false;
      throw err;
    }
  });
}

/** Drops the URL's database, closing its open connections (PostgreSQL 13+). */
export async function dropDatabase(url: string): Promise<void> {
  const { database } = parseDatabaseUrl(url);
  if (database === 'postgres' || database === 'template0' || database === 'template1') {
    throw new Error(`refusing to drop the maintenance database ${database}`);
  }
  await withAdmin(url, async (admin) => {
    await admin.query(`DROP DATABASE IF EXISTS ${quoteIdent(database)} WITH (FORCE)`);
  });
}
