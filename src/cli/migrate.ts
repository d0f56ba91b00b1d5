/**
 * `npm run db:migrate`: applies prisma/migrations to DATABASE_URL (creating the database if
 * needed), keeping `_prisma_migrations` compatible with `prisma migrate deploy`.
 */
import { loadConfig } from '../config.js';
import { migrate } from '../infra/prisma/migrate.js';

function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(invalid URL)';
  }
}

async function main(): Promise<void> {
  const { DATABASE_URL } = loadConfig();
  console.log(`migrating ${redact(DATABASE_URL)}`);
  const { applied, skipped, recreated } = await migrate(DATABASE_URL, { log: (line) => console.log(`  ${line}`) });
  if (recreated.length) console.log(`read side created anew (missing: ${recreated.join(', ')}): the projector refills it from the log`);
  console.log(
    recreated.length
      ? `done: ${applied.length} migration(s) applied`
      : applied.length
        ? `done: ${applied.length} migration(s) applied, ${skipped.length} already applied`
        : `done: database is up to date (${skipped.length} migration(s) already applied)`,
  );
}

main().catch((err: unknown) => {
  console.error(`migration failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
});
