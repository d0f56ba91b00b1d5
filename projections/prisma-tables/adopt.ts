import type { PrismaClient } from '../../src/infra/prisma/client.js';
import { REWIND_CHANNEL } from './rewinds.js';

/**
 * The read model's side of `npm run adopt-log`: every table that follows the log is emptied in one
 * transaction (rows, checkpoints, the recorded identity), so the projectors rebuild it from offset
 * 0 of the log this process follows and record that log with their first write. The jobs queued for
 * the old log's campaigns (Agenda's table, when there is one) go too: a close or report job of a
 * campaign the new log never had must not append to it.
 *
 * With `keepOld`, each table is first copied to `<archivePrefix>_<table>` (the same columns, no
 * indexes), in the same transaction: what the old log alone knew stays readable with SQL.
 */
export const READ_MODEL_TABLES = [
  'campaigns',
  'entries',
  'winners',
  'gifticons',
  'line_heads',
  'campaign_reports',
  'parked_records',
  'projection_checkpoints',
  'log_identities',
] as const;
const JOBS_TABLE = 'agenda_jobs';

export interface ResetResult {
  /** table → rows removed */
  removed: Map<string, number>;
  /** the archive tables created (keepOld) */
  archived: string[];
}

export async function resetReadModel(
  prisma: PrismaClient,
  topic: string,
  opts: { keepOld: boolean; archivePrefix: string },
): Promise<ResetResult> {
  if (!/^[a-z][a-z0-9_]{0,40}$/.test(opts.archivePrefix)) throw new Error(`archive prefix ${opts.archivePrefix} is not a plain table name`);
  return prisma.$transaction(
    async (tx) => {
      const jobs = await tx.$queryRaw<{ present: boolean }[]>`SELECT to_regclass(${JOBS_TABLE}) IS NOT NULL AS present`;
      const tables: string[] = [...READ_MODEL_TABLES, ...(jobs[0]?.present ? [JOBS_TABLE] : [])];
      const removed = new Map<string, number>();
      const archived: string[] = [];
      for (const t of tables) {
        const [{ n }] = await tx.$queryRawUnsafe<[{ n: number }]>(`SELECT count(*)::int AS n FROM "${t}"`);
        removed.set(t, n);
        if (opts.keepOld) {
          const to = `${opts.archivePrefix}_${t}`;
          await tx.$executeRawUnsafe(`CREATE TABLE "${to}" AS TABLE "${t}"`);
          archived.push(to);
        }
      }
      await tx.$executeRawUnsafe(`TRUNCATE ${tables.map((t) => `"${t}"`).join(', ')}`);
      // a projector that runs (it should not: it was refused) seeks to the emptied checkpoints at once
      await tx.$executeRaw`SELECT pg_notify(${REWIND_CHANNEL}, ${topic})`;
      return { removed, archived };
    },
    { timeout: 300_000, maxWait: 30_000 },
  );
}
