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
 *
 * It also checks that the tables the applied migrations created are there. When one is missing
 * (dropped by hand, a restore that left it out) the read side is created anew: every table of the
 * migrations is dropped, their `_prisma_migrations` rows are marked rolled back (as `prisma migrate
 * resolve --rolled-back` would) and the migrations run again. Every one of these tables is a
 * projection of the log or made by a job from it, so the projector refills them from offset 0 (its
 * checkpoints went with them); a campaign's report is made again on request. Re-running only the
 * statements of the lost table is not possible in general, and the rows of the tables still there
 * would not agree with it anyway.
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
  /** tables found missing, for which the read side was created anew (empty when none were) */
  recreated: string[];
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

/**
 * The tables a sequence of migrations leaves behind, as Prisma writes its DDL
 * (`CREATE TABLE "name"`, `DROP TABLE "name"`, `ALTER TABLE "a" RENAME TO "b"`).
 */
export function tablesOf(sqls: readonly string[]): string[] {
  const ident = String.raw`(?:"?[A-Za-z_][\w$]*"?\.)?"?([A-Za-z_][\w$]*)"?`;
  const statement = new RegExp(
    String.raw`CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?${ident}|DROP\s+TABLE\s+(?:IF\s+EXISTS\s+)?${ident}|ALTER\s+TABLE\s+(?:IF\s+EXISTS\s+)?${ident}\s+RENAME\s+TO\s+${ident}`,
    'gi',
  );
  const tables = new Set<string>();
  for (const sql of sqls) {
    const code = sql.replace(/--[^\n]*/g, '').replace(/\/\*[\s\S]*?\*\//g, '');
    for (const m of code.matchAll(statement)) {
      if (m[1]) tables.add(m[1]);
      else if (m[2]) tables.delete(m[2]);
      else if (m[3] && m[4] && tables.delete(m[3])) tables.add(m[4]);
    }
  }
  return [...tables];
}

async function missingTables(client: pg.Client, tables: readonly string[]): Promise<string[]> {
  if (tables.length === 0) return [];
  const { rows } = await client.query<{ t: string; found: string | null }>(
    'SELECT t, to_regclass(quote_ident(t))::text AS found FROM unnest($1::text[]) AS t',
    [tables],
  );
  return rows.filter((r) => r.found === null).map((r) => r.t);
}

export interface SchemaStatus {
  databaseExists: boolean;
  /** migrations of the directory not applied to the database, in order */
  pending: string[];
  /** tables that applied migrations created and that are gone */
  missingTables: string[];
}

/** Where the database stands against the migrations directory, changing nothing (for DB_MIGRATE=off). */
export async function schemaStatus(databaseUrl: string, opts: Pick<MigrateOptions, 'migrationsDir'> = {}): Promise<SchemaStatus> {
  const local = await readMigrations(opts.migrationsDir ?? DEFAULT_MIGRATIONS_DIR);
  const client = new pg.Client(pgConfig(databaseUrl));
  try {
    await client.connect();
  } catch (err) {
    await client.end().catch(() => {});
    if ((err as { code?: string }).code === '3D000') return { databaseExists: false, pending: local.map((m) => m.name), missingTables: [] };
    throw err;
  }
  try {
    const { rows } = await client.query<{ t: string | null }>(`SELECT to_regclass('"_prisma_migrations"')::text AS t`);
    const done = new Set<string>();
    if (rows[0]?.t) {
      const applied = await client.query<{ migration_name: string }>(
        `SELECT migration_name FROM "_prisma_migrations" WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL`,
      );
      for (const r of applied.rows) done.add(r.migration_name);
    }
    const applied = local.filter((m) => done.has(m.name));
    return {
      databaseExists: true,
      pending: local.filter((m) => !done.has(m.name)).map((m) => m.name),
      missingTables: await missingTables(client, tablesOf(applied.map((m) => m.sql))),
    };
  } finally {
    await client.end().catch(() => {});
  }
}

export async function migrate(databaseUrl: string, opts: MigrateOptions = {}): Promise<MigrateResult> {
  const log = opts.log ?? (() => {});
  const local = await readMigrations(opts.migrationsDir ?? DEFAULT_MIGRATIONS_DIR);
  const { schema } = parseDatabaseUrl(databaseUrl);

  if (await ensureDatabase(databaseUrl)) log(`created database ${parseDatabaseUrl(databaseUrl).database}`);

  const client = new pg.Client(pgConfig(databaseUrl));
  await client.connect();
  const result: MigrateResult = { applied: [], skipped: [], recreated: [] };
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

    const done = local.filter((m) => applied.has(m.name));
    const tables = tablesOf(done.map((m) => m.sql));
    const missing = await missingTables(client, tables);
    if (missing.length > 0) {
      log(
        `missing tables ${missing.join(', ')} although their migrations are recorded as applied: creating the read side anew (the projector refills it from the log)`,
      );
      await recreate(
        client,
        tables,
        done.map((m) => m.name),
        missing,
      );
      for (const m of done) applied.delete(m.name);
      result.recreated = missing;
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

/** Drops what is left of the migrations' tables and marks them not applied, in one transaction. */
async function recreate(client: pg.Client, tables: readonly string[], names: readonly string[], missing: readonly string[]): Promise<void> {
  try {
    await client.query('BEGIN');
    for (const t of tables) await client.query(`DROP TABLE IF EXISTS ${quoteIdent(t)} CASCADE`);
    await client.query(
      `UPDATE "_prisma_migrations" SET rolled_back_at = now(), logs = $2
        WHERE migration_name = ANY($1::text[]) AND rolled_back_at IS NULL`,
      [names, `rolled back by the migration runner: tables ${missing.join(', ')} were missing; applied anew`],
    );
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw new MigrationError(`could not create the read side anew: ${(err as Error).message}`, { cause: err });
  }
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
    await client.query(`UPDATE "_prisma_migrations" SET finished_at = now(), applied_steps_count = 1 WHERE id = $1`, [id]);
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    const message = err instanceof Error ? err.message : String(err);
    await client.query(`UPDATE "_prisma_migrations" SET logs = $2, rolled_back_at = now() WHERE id = $1`, [id, message]).catch(() => {});
    throw new MigrationError(`migration ${m.name} failed and was rolled back: ${message}`, { cause: err });
  }
}
