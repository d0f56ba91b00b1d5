import type { Config } from '../../config.js';
import type { HealthReporter } from '../../health.js';
import type { Logger } from '../../logger.js';
import { backoffMs, RepeatedErrors } from '../../retrying.js';
import { parseDatabaseUrl } from './database.js';
import { migrate, MigrationError, schemaStatus, type SchemaStatus } from './migrate.js';

/** The database is behind the migrations and DB_MIGRATE=off: the server must not start. */
export class DatabaseBehindError extends Error {}

/** One line that says what is missing and what to run. */
export function behindMessage(database: string, s: SchemaStatus): string | null {
  const fix = 'run `npm run db:migrate` (DB_MIGRATE=off: this server does not migrate)';
  const list = (names: string[]) => `${names.length} migration${names.length === 1 ? '' : 's'} not applied (${names.join(', ')})`;
  if (!s.databaseExists) return `database ${database} does not exist, ${list(s.pending)}: ${fix}`;
  if (s.pending.length > 0) return `database ${database} is behind, ${list(s.pending)}: ${fix}`;
  if (s.missingTables.length > 0) return `database ${database} lacks tables its migrations created (${s.missingTables.join(', ')}): ${fix}`;
  return null;
}

/**
 * Before any role touches Postgres: DB_MIGRATE=on applies the pending migrations (under the runner's
 * advisory lock, so processes starting together are safe and the later ones find the work done);
 * DB_MIGRATE=off only checks, and a database behind throws DatabaseBehindError.
 *
 * While Postgres cannot be reached this waits, with a backoff, reporting the error to `health`
 * (/readyz names it). A migration that fails, or a database behind, is not waited out: it throws.
 */
export async function prepareDatabase(
  config: Pick<Config, 'DATABASE_URL' | 'DB_MIGRATE'>,
  health: HealthReporter,
  log: Logger,
): Promise<void> {
  const repeats = new RepeatedErrors(log, 'warn');
  for (let failures = 1; ; failures++) {
    try {
      if (config.DB_MIGRATE === 'on') {
        const r = await migrate(config.DATABASE_URL, { log: (line) => log.info(line) });
        if (r.applied.length > 0) log.info({ applied: r.applied }, `database migrated: ${r.applied.length} migration(s) applied`);
      } else {
        const behind = behindMessage(parseDatabaseUrl(config.DATABASE_URL).database, await schemaStatus(config.DATABASE_URL));
        if (behind) throw new DatabaseBehindError(behind);
      }
      health.ok();
      repeats.recovered('Postgres answers: database ready');
      return;
    } catch (err) {
      if (err instanceof MigrationError || err instanceof DatabaseBehindError) throw err;
      health.failing(err);
      const wait = backoffMs(failures);
      repeats.error(err, 'Postgres cannot be reached: waiting for it before starting the roles', { retryInMs: wait });
      await new Promise((r) => setTimeout(r, wait));
    }
  }
}
