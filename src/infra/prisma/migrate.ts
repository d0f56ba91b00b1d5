import { createHash, randomUUID } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { ensureDatabase, parseDatabaseUrl, pgConfig, quoteIdent } from './database.js';

/**
 * Applies prisma/migrations/<name>/migration.sql the way `prisma migrate deploy` does, without
 * Prisma's native schema engine (which cannot be downloaded on our build machines).
 *
 * It keeps `_prisma_migrations` exactly as Prisma does (same table, same sha256 checksums, same
 * advisory lock), so a machine that has the engine sees these migrations as applied. One
 * difference: each migration runs inside a transaction, so a failed one leaves no half-applied
 * schema; its row is then marked rolled back (as `prisma migrate resolve --rolled-back` would) and
 * the next run tries it again. Hence no `CREATE INDEX CONCURRENTLY` in migrations.
 */

export const DEFAULT_MIGRATIONS_DIR = fileURLToPath(new URL('../../../prisma/migrations', import.meta.url));

/** The advisory lock key Prisma's schema engine takes on PostgreSQL: we exclude each other too. */
const PRISMA_ADVISORY_LOCK_KEY = 72707369;

/** Prisma's own DDL for its bookkeeping table (schema-engine, PostgreSQL flavour). */
const CREATE_MIGRATIONS_TABLE = `CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
    "id"                    VARCHAR(36) PRIMARY KEY NOT NULL,
    "checksum"              VARCHAR(64) NOT NULL,
    "finished_at"           TIMESTAMPTZ,
    "migration_name"        VARCHAR(255) NOT NULL,
    "logs"                  TEXT,
    "rolled_back_at"        TIMESTAMPTZ,
    "started_at"            TIMESTAMPTZ NOT NULL DEFAULT now(),
    "applied_steps_count"   INTEGER NOT NULL DEFAULT 0
)`;

export interface MigrateOptions {
  /** receives one human-readable line per migration (applied / already applied / warnings) */
  log?: (line: string) => void;
  /** defaults to the repository's prisma/migrations */
  migrationsDir?: string;
}

export interface MigrateResult {
  /** names of the migrations applied by this call, in order */
  applied: string[];
  /** names of the migrations that were already applied */
  skipped: string[];
}

export class MigrationError extends Error {}

interface LocalMigration {
  name: string;
  sql: string;
  checksum: string;
}

interface AppliedRow {
  migration_name: string;
  checksum: string;
  finished_at: Date | null;
  rolled_back_at: Date | null;
}

function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Prisma accepts a file whose line endings changed (CRLF <-> LF) since it was applied. */
function checksumMatches(file: Buffer, stored: string): boolean {
  if (sha256(file) === stored) return true;
  const text = file.toString('utf8');
  const lf = text.replace(/\r\n/g, '\n');
  return sha256(lf) === stored || sha256(lf.replace(/\n/g, '\r\n')) === stored;
}

async function readMigrations(dir: string): Promise<Array<LocalMigration & { bytes: Buffer }>> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    throw new MigrationError(`cannot read migrations directory ${dir}: ${(err as Error).message}`);
  }
  const out: Array<LocalMigration & { bytes: Buffer }> = [];
  for (const name of names.sort()) {
    const folder = path.join(dir, name);
    if (!(await stat(folder)).isDirectory()) continue; // migration_lock.toml
    const file = path.join(folder, 'migration.sql');
    let bytes: Buffer;
    try {
      bytes = await readFile(file);
    } catch {
      throw new MigrationError(`migration ${name} has no migration.sql`);
    }
    out.push({ name, bytes, sql: bytes.toString('utf8'), checksum: sha256(bytes) });
  }
  return out;
}

export async function migrate(databaseUrl: string, opts: MigrateOptions = {}): Promise<MigrateResult> {
  const log = opts.log ?? (() => {});
  const local = await readMigrations(opts.migrationsDir ?? DEFAULT_MIGRATIONS_DIR);
  const { schema } = parseDatabaseUrl(databaseUrl);

  if (await ensureDatabase(databaseUrl)) log(`created database ${parseDatabaseUrl(databaseUrl).database}`);

  const client = new pg.Client(pgConfig(databaseUrl));
  await client.connect();
  const result: MigrateResult = { applied: [], skipped: [] };
  let locked = false;
  try {
    await client.query('SELECT pg_advisory_lock($1)', [PRISMA_ADVISORY_LOCK_KEY]);
    locked = true;
    if (schema) await client.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)}`);
    await client.query(CREATE_MIGRATIONS_TABLE);

    const rows = (
      await client.query<AppliedRow>(
        `SELECT migration_name, checksum, finished_at, rolled_back_at
           FROM "_prisma_migrations" ORDER BY started_at`,
      )
    ).rows;
    const applied = new Map<string, AppliedRow>();
    for (const r of rows) {
      if (r.rolled_back_at !== null) continue;
      if (r.finished_at === null) {
        throw new MigrationError(
          `migration ${r.migration_name} started but did not finish (a failed \`prisma migrate deploy\`?). ` +
            'Inspect the database, then run `prisma migrate resolve --rolled-back` or mark its ' +
            '_prisma_migrations row rolled back before migrating again.',
        );
      }
      applied.set(r.migration_name, r);
    }

    const localNames = new Set(local.map((m) => m.name));
    for (const name of applied.keys()) {
      if (!localNames.has(name)) log(`warning: ${name} is applied to the database but missing from the migrations directory`);
    }

    for (const m of local) {
      const done = applied.get(m.name);
      if (done) {
        if (!checksumMatches(m.bytes, done.checksum)) {
          throw new MigrationError(
            `migration ${m.name} was modified after it was applied: the checksum of its migration.sql ` +
              `(${m.checksum}) differs from the one recorded in _prisma_migrations (${done.checksum}). ` +
              'Never edit an applied migration: revert the file and add a new migration instead.',
          );
        }
        result.skipped.push(m.name);
        log(`already applied  ${m.name}`);
        continue;
      }
      await applyOne(client, m);
      result.applied.push(m.name);
      log(`applied          ${m.name}`);
    }
  } finally {
    if (locked) await client.query('SELECT pg_advisory_unlock($1)', [PRISMA_ADVISORY_LOCK_KEY]).catch(() => {});
    await client.end().catch(() => {});
  }
  return result;
}

async function applyOne(client: pg.Client, m: LocalMigration): Promise<void> {
  const id = randomUUID();
  await client.query(
    `INSERT INTO "_prisma_migrations" (id, checksum, migration_name, started_at, applied_steps_count)
     VALUES ($1, $2, $3, now(), 0)`,
    [id, m.checksum, m.name],
  );
  try {
    await client.query('BEGIN');
    await client.query(m.sql); // simple query protocol: runs the whole multi-statement script
    await client.query(
      `UPDATE "_prisma_migrations" SET finished_at = now(), applied_steps_count = 1 WHERE id = $1`,
      [id],
    );
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    const message = err instanceof Error ? err.message : String(err);
    await client
      .query(`UPDATE "_prisma_migrations" SET logs = $2, rolled_back_at = now() WHERE id = $1`, [id, message])
      .catch(() => {});
    throw new MigrationError(`migration ${m.name} failed and was rolled back: ${message}`, { cause: err });
  }
}
